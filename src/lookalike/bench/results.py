"""Result files and the terminal table.

One JSON file per run (``BenchResult``): the data set, the settings, the environment, one ``RunRecord`` per
(algorithm, build arguments, query arguments) point, and the algorithms that were skipped with why.  The schema
is documented in docs/bench.md; ``BenchResult.from_dict(result.to_dict())`` gives back an equal object.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StorageFormatError
from .measures import pareto_mask

SCHEMA = "lookalike-bench-result"
SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    """One point of the recall / QPS plane."""

    algorithm: str  # definition name: "lookalike-hnsw", "faiss-hnsw", ...
    library: str  # "lookalike", "faiss", "hnswlib", "annoy"
    index: str | None  # lookalike registry name or faiss kind; None for hnswlib / annoy
    build_args: dict[str, Any]
    query_args: dict[str, Any]
    recall: float  # mean recall@k over the queries, ties tolerated
    qps: float  # queries per second of the best run
    best_search_time_s: float  # seconds per query of the best run (1 / qps)
    build_time_s: float  # seconds to construct and fit the index (shared by the points of one build)
    latency_ms: dict[str, float] | None = None  # p50 / p95 / p99 / mean of the best run; single-query mode only
    index_size_bytes: int | None = None  # bytes written by save() to a temp dir
    memory_bytes: int | None = None  # resident-set growth (psutil RSS) across the build; None without psutil
    distance_computations: float | None = None  # per query, when the index counts them
    n_queries: int = 0

    @property
    def label(self) -> str:
        return describe_args(self.build_args, self.query_args)


@dataclass
class BenchResult:
    dataset: dict[str, Any]  # name, source, metric, distance, n_train, n_test, dim, ground_truth
    settings: dict[str, Any]  # k, runs, mode, threads, warmup, epsilon, sweep, seed
    environment: dict[str, Any] = field(default_factory=dict)  # python, platform, cpu_count, versions
    runs: list[RunRecord] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"algorithm", "reason"}
    created: str = ""  # ISO 8601 UTC
    elapsed_s: float = 0.0  # wall time of the whole benchmark
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchResult":
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise StorageFormatError(f"not a {SCHEMA} file")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StorageFormatError(
                f"result schema_version {data.get('schema_version')}, this lookalike reads {SCHEMA_VERSION}"
            )
        known = {f.name for f in fields(RunRecord)}
        try:
            runs = [RunRecord(**{k: v for k, v in run.items() if k in known}) for run in data.get("runs", [])]
            kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "runs"}
            return cls(runs=runs, **kwargs)
        except TypeError as exc:
            raise StorageFormatError(f"malformed result file: {exc}") from None

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BenchResult":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise StorageFormatError(f"cannot read result file {path}: {exc}") from None
        return cls.from_dict(data)

    # ------------------------------------------------------------------ views
    def algorithms(self) -> list[str]:
        """Algorithm names in the order they ran."""
        return list(dict.fromkeys(run.algorithm for run in self.runs))

    def frontier(self, algorithm: str | None = None) -> list[RunRecord]:
        """Pareto-optimal points (of one algorithm, or of all), by increasing recall."""
        runs = [r for r in self.runs if algorithm is None or r.algorithm == algorithm]
        if not runs:
            return []
        keep = pareto_mask([r.recall for r in runs], [r.qps for r in runs])
        return sorted((r for r, k in zip(runs, keep) if k), key=lambda r: (r.recall, -r.qps))


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python numbers, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def describe_args(build_args: dict[str, Any], query_args: dict[str, Any]) -> str:
    build = ",".join(f"{k}={v}" for k, v in build_args.items())
    query = ",".join(f"{k}={v}" for k, v in query_args.items())
    return " | ".join(part for part in (build, query) if part) or "-"


# ---------------------------------------------------------------------------------------------- terminal table
def _fmt(value: float | int | None, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def format_table(result: BenchResult, recall_target: float = 0.9) -> str:
    """The Pareto table: each algorithm's Pareto-optimal points (``*`` marks the global frontier), then the best
    QPS each algorithm reaches at recall >= ``recall_target``."""
    ds, st = result.dataset, result.settings
    lines = [
        f"{ds.get('name')}: {ds.get('n_train')} points x {ds.get('dim')} dims, {ds.get('n_test')} queries, "
        f"{ds.get('distance')}; k={st.get('k')}, mode={st.get('mode')}, threads={st.get('threads')}, "
        f"best of {st.get('runs')} runs"
    ]
    global_best = {id(r) for r in result.frontier()}
    header = ["", "algorithm", "parameters", "recall", "QPS", "p50 ms", "p99 ms", "build s", "size MB", "mem MB",
              "dist/q"]
    rows = []
    for algorithm in result.algorithms():
        for r in result.frontier(algorithm):
            lat = r.latency_ms or {}
            rows.append([
                "*" if id(r) in global_best else "", r.algorithm, r.label, f"{r.recall:.3f}", f"{r.qps:,.0f}",
                _fmt(lat.get("p50"), ".3f"), _fmt(lat.get("p99"), ".3f"), f"{r.build_time_s:.2f}",
                _fmt(r.index_size_bytes, ".1f", 1e6), _fmt(r.memory_bytes, ".1f", 1e6),
                _fmt(r.distance_computations, ",.0f"),
            ])
    lines += _grid_text(header, rows, right=range(3, len(header)))
    summary = summarize(result, recall_target)
    if summary:
        lines.append("")
        lines.append(f"best QPS at recall >= {recall_target:.2f} (x: relative to the fastest)")
        rows = [[name, "-" if qps is None else f"{qps:,.0f}", "-" if rel is None else f"{rel:.2f}x", why]
                for name, qps, rel, why in summary]
        lines += _grid_text(["algorithm", "QPS", "x", "at"], rows, right=(1, 2))
    if result.skipped:
        lines.append("")
        lines += [f"skipped {s['algorithm']}: {s['reason']}" for s in result.skipped]
    return "\n".join(lines)


def summarize(result: BenchResult, recall_target: float) -> list[tuple[str, float | None, float | None, str]]:
    """(algorithm, best QPS at recall >= target or None, ratio to the fastest, the parameters that reach it)."""
    best = {}
    for algorithm in result.algorithms():
        good = [r for r in result.runs if r.algorithm == algorithm and r.recall >= recall_target]
        top = max(good, key=lambda r: r.qps) if good else None
        best[algorithm] = top
    fastest = max((r.qps for r in best.values() if r is not None), default=None)
    return [
        (name, r.qps if r else None, r.qps / fastest if r and fastest else None,
         f"recall {r.recall:.3f}, {r.label}" if r else "never reached")
        for name, r in best.items()
    ]


def _grid_text(header: list[str], rows: list[list[str]], right) -> list[str]:
    """Plain-text columns; the columns listed in ``right`` (numbers) are right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
