"""Start `lookalike serve` in a subprocess for a benchmark and wait until it answers (shared by the scripts):
the package's one way, ``lookalike.bench.serving``."""

from __future__ import annotations

from lookalike.bench.serving import BLAS_SLOWDOWNS, start_lookalike


def start_server(db: str, port: int, *, workers: int = 1, api_key: str | None = None):
    try:
        return start_lookalike(db, port, workers=workers, api_key=api_key)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


__all__ = ["BLAS_SLOWDOWNS", "start_server"]
