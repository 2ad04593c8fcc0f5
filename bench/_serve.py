"""Start `lookalike serve` in a subprocess for a benchmark and wait until it answers (shared by the scripts)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

BLAS_SLOWDOWNS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # set on these machines, not on users': unset


def start_server(db: str, port: int, *, workers: int = 1, api_key: str | None = None) -> subprocess.Popen:
    """`lookalike serve --db DB --port PORT` on 127.0.0.1, returned once /api/health answers (120 s at most)."""
    import httpx

    env = {k: v for k, v in os.environ.items() if k not in BLAS_SLOWDOWNS}
    if api_key:
        env["LOOKALIKE_API_KEY"] = api_key
    command = [sys.executable, "-m", "lookalike.cli", "serve", "--db", str(db), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
    proc.kill()
    raise SystemExit("server did not come up in 120 s")
