"""Crash trials of the write path: a process appending batches (1 point to 1M) to the vector log while its
background indexer folds them into an HNSW index and saves it is killed with SIGKILL at random moments, again and
again.  After each kill the reopened collection holds every acknowledged batch whole, at most the batch in flight
(whole or not at all) and nothing else; the log's checksums hold; the index answers as exact search does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike.database import check

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).parent.parent.parent
DIM = 8

WRITER = """
import os, sys, numpy as np, lookalike
from tests.reliability.test_log_crash import batch
db, journal, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
current = None  # the batch the last life was writing when it died
for line in open(journal).read().split():
    current = int(line[1:]) if line.startswith("-") else int(line) + 1
col = lookalike.Database(db).get_collection("c")
col.start_indexing()  # kills land in indexing steps and index saves too
first = 0 if current is None else current + 1  # the batch in flight at the last kill is never written again
with open(journal, "a") as log:
    log.write(f"-{first}\\n"); log.flush(); os.fsync(log.fileno())  # this life starts at batch `first`
    for b in range(first, len(sizes)):
        ids, vectors = batch(b, sizes[b])
        col.add(ids, vectors, [{"b": b}] * len(ids))
        log.write(f"{b}\\n"); log.flush(); os.fsync(log.fileno())
"""


def batch(b: int, n: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(b)
    return [f"b{b}-{i}" for i in range(n)], rng.normal(size=(n, DIM)).astype(np.float32)


def run_trials(tmp_path: Path, sizes: list[int], lives: int, seed: int, max_sleep: float) -> int:
    db_path, journal = tmp_path / "db", tmp_path / "journal"
    journal.touch()
    db = lookalike.Database(db_path)
    col = db.create_collection("c", dim=DIM, metric="cosine")
    col.add(*batch(10_000, 200))
    col.create_index("hnsw", M=8, ef_construction=40)
    db.close()
    rng = np.random.default_rng(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    kills = 0
    for _ in range(lives):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(journal), ",".join(map(str, sizes))],
                                env=env)
        try:
            assert proc.wait(timeout=float(rng.uniform(0.3, max_sleep))) == 0, "the writer failed"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        verify(db_path, journal, sizes)
        if _acknowledged(journal)[-1:] == [len(sizes) - 1]:
            break
    return kills


def _acknowledged(journal: Path) -> list[int]:
    return [int(line) for line in journal.read_text().split() if not line.startswith("-")]


def verify(db_path: Path, journal: Path, sizes: list[int]) -> None:
    lines = journal.read_text().split()
    acknowledged = set(_acknowledged(journal))
    # the batch each life was writing when it died: the one after its last acknowledged batch
    in_flight, current = set(), None
    for line in lines:
        if line.startswith("-"):
            if current is not None:
                in_flight.add(current)
            current = int(line[1:])
        else:
            current = int(line) + 1
    if current is not None and current < len(sizes):
        in_flight.add(current)
    db = lookalike.Database(db_path)
    col = db.get_collection("c")
    stored: dict[int, int] = {}
    for ext in col.ids():
        if not ext.startswith("b10000-"):
            b = int(ext[1:].split("-")[0])
            stored[b] = stored.get(b, 0) + 1
    for b in acknowledged:
        assert stored.get(b) == sizes[b], f"acknowledged batch {b} has {stored.get(b)} of {sizes[b]} points"
    for b, n in stored.items():
        assert b in acknowledged or b in in_flight, f"batch {b} was never written, yet {n} of its points are there"
        assert n == sizes[b], f"batch {b} landed partly: {n} of {sizes[b]} points"
    assert check(db_path)["c"]["rows"] >= len(col)
    probes = [b for b in sorted(stored) if sizes[b] > 0][-3:]
    for b in probes:
        ids, vectors = batch(b, sizes[b])
        picked = np.linspace(0, len(ids) - 1, min(4, len(ids))).astype(int)
        got = col.get([ids[i] for i in picked])
        np.testing.assert_allclose(got.vectors, vectors[picked], rtol=1e-5, atol=1e-6)
        hits = col.query(vectors[picked], k=1, index="hnsw", ef=64)
        assert [h[0] for h in hits.ids.tolist()] == [ids[i] for i in picked], "a stored point is not found first"
    q = np.random.default_rng(1).normal(size=(5, DIM)).astype(np.float32)
    exact = col.query(q, k=10, index="flat")
    approx = col.query(q, k=10, index="hnsw", ef=400)
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.ids.tolist(), exact.ids.tolist())]) >= 0.9
    db.close()


def test_kills_during_appends_indexing_and_saves_lose_no_acknowledged_batch(tmp_path):
    sizes = [1, 3, 50, 700, 2, 4000, 1, 9000, 300, 20000, 5, 1200, 60, 15000, 7, 2500, 60000, 3, 80000] * 8
    kills = run_trials(tmp_path, sizes, lives=8, seed=0, max_sleep=2.0)
    assert kills >= 3


@pytest.mark.slow
def test_kills_with_batches_up_to_a_million_points(tmp_path):
    sizes = [10, 250_000, 3, 1_000_000, 40_000, 1, 1_000_000, 7, 500_000]
    kills = run_trials(tmp_path, sizes, lives=10, seed=1, max_sleep=3.0)
    assert kills >= 2
