"""A collection larger than the memory its process may use still answers: the vector log is memory-mapped, so
its pages are read as searches touch them and evicted under pressure.  A process in a cgroup (v1) limited to
256 MB opens a collection of 410 MB of vectors, evicted from the page cache first, and answers IVF-PQ queries
(codes in memory, re-ranking reads only the candidates' rows) and exact queries (reading every row through the
page cache) as a process without the limit does."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike.bench.datasets import synthetic

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
LIMIT = 256 << 20
N, DIM = 400_000, 256
ROOT = Path(__file__).parent.parent.parent

CHILD = r"""
import json, sys, numpy as np, lookalike
db, queries = sys.argv[1], np.load(sys.argv[2])
col = lookalike.Database(db).get_collection("big")
pq = col.query(queries, k=10, index="ivfpq", nprobe=32, rerank=200).ids.tolist()
exact = col.query(queries[:3], k=10, index="flat").ids.tolist()
rss = max(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024
print(json.dumps({"ivfpq": pq, "exact": exact, "peak_rss": rss}))
"""


def _cgroup() -> Path:
    if not os.access(CGROUP_ROOT, os.W_OK):
        pytest.skip(f"{CGROUP_ROOT} is not writable here (cgroup v1 memory controller)")
    group = CGROUP_ROOT / f"lookalike-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(LIMIT))
    return group


def _evict(directory: Path) -> None:
    """Drop the log's clean pages from the page cache, so the limited process reads them from disk itself."""
    for path in directory.rglob("vectors/*"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def test_a_collection_larger_than_the_memory_limit_answers(tmp_path):
    group = _cgroup()
    try:
        data = synthetic(N, DIM, clusters=200, n_queries=20, seed=3)
        with lookalike.Database(tmp_path / "db") as db:
            col = db.create_collection("big", DIM, "cosine")
            for s in range(0, N, 50_000):
                col.add(list(range(s, s + 50_000)), data.train[s:s + 50_000])
            col.create_index("ivfpq", nlist=256, m=32)
            truth = col.query(data.test, k=10, index="flat").ids.tolist()
            col.query(data.test[:2], k=10, index="ivfpq", nprobe=32, rerank=200)  # its kernels compiled (and
            # cached) here, not in the limited process, where the compiler's memory would count
        assert N * DIM * 4 > 1.5 * LIMIT
        np.save(tmp_path / "queries.npy", data.test)
        del col, db, data
        gc.collect()  # this process maps the log no more: its pages can leave the page cache
        _evict(tmp_path / "db")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        procs = str(group / "cgroup.procs")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "db"), str(tmp_path / "queries.npy")], env=env,
            preexec_fn=lambda: Path(procs).write_text(str(os.getpid())), capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"the limited process failed (killed by the OOM killer?): {out.stderr[-2000:]}"
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["exact"] == truth[:3]
        recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(got["ivfpq"], truth)])
        assert recall >= 0.9
        assert int((group / "memory.max_usage_in_bytes").read_text()) <= LIMIT
        assert int((group / "memory.failcnt").read_text()) > 0, "the limit was never reached: nothing was shown"
    finally:
        try:
            group.rmdir()
        except OSError:
            pass
