"""Starting a server for a benchmark, the one way every suite and script does it: ``lookalike serve`` on
127.0.0.1 in a subprocess, with the environment users run with (these machines' BLAS slow-downs unset),
returned once it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

BLAS_SLOWDOWNS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # set on these machines, not on users': unset


def user_env() -> dict[str, str]:
    """The environment users run with: this process's, without these machines' BLAS slow-downs."""
    return {k: v for k, v in os.environ.items() if k not in BLAS_SLOWDOWNS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    """Poll ``ready()`` (exceptions count as not yet) until it holds; the process dying or the time running out
    raises RuntimeError."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - connection refused and the like: not up yet
            pass
        if proc.poll() is not None:
            err = ""
            log = getattr(proc, "log_file", None)
            if log is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{what} exited: {err}")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{what} did not come up in {timeout:.0f} s")


def start_lookalike(db: str | Path, port: int, *, workers: int | None = None,
                    api_key: str | None = None) -> subprocess.Popen:
    """`lookalike serve --db DB --port PORT` on 127.0.0.1, returned once /api/health answers and its processes
    are settled; ``workers`` None serves as a user's plain `lookalike serve` does (its default --workers)."""
    import httpx

    env = user_env()
    if api_key:
        env["LOOKALIKE_API_KEY"] = api_key
    command = [sys.executable, "-m", "lookalike.cli", "serve", "--db", str(db), "--host", "127.0.0.1",
               "--port", str(port)] + ([] if workers is None else ["--workers", str(workers)])
    # its log (one line per request) goes to a file: a pipe nobody reads would fill up and stall the server
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log_file = log
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200, proc,
               "lookalike serve")
    wait_settled(proc)
    return proc


def start_zero_work(answers_file: str | Path, port: int) -> subprocess.Popen:
    """The zero-work reference server (``zero_work_server``) on 127.0.0.1, returned once it answers."""
    import httpx

    command = [sys.executable, "-m", "lookalike.bench.zero_work_server", str(port), str(answers_file)]
    proc = subprocess.Popen(command, env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200, proc,
               "the zero-work server")
    wait_settled(proc)
    return proc


def wait_settled(proc: subprocess.Popen, quiet_cpu_s: float = 0.05, interval: float = 0.5,
                 timeout: float = 120.0) -> None:
    """Wait until the server's processes use (almost) no CPU: with ``--workers N`` the first worker to be warm
    answers the health check while the others are still loading and compiling, which would take a core from
    whatever is measured next."""
    import psutil

    def cpu_seconds() -> float:
        total = 0.0
        try:
            root = psutil.Process(proc.pid)
            for process in (root, *root.children(recursive=True)):
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:  # a process that ended meanwhile
            pass
        return total

    deadline = time.time() + timeout
    before = cpu_seconds()
    while time.time() < deadline and proc.poll() is None:
        time.sleep(interval)
        now = cpu_seconds()
        if now - before < quiet_cpu_s:
            return
        before = now
