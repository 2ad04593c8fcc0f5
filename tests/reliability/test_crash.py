"""Crash safety: a writer killed with SIGKILL at random moments loses nothing that returned, a batch is atomic,
deleted ids stay deleted, stale or half-written index files are rebuilt, and queries equal a fresh exact search."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lookalike
from tests.reliability.crash_workload import COLLECTION, DIM, apply, operations

N_OPS = 400
HERE = Path(__file__).parent


def crash_once(tmp_path: Path, trial: int) -> dict:
    rng = np.random.default_rng(trial)
    db_path, journal = tmp_path / f"db{trial}", tmp_path / f"journal{trial}"
    journal.touch()
    seed = 1000 + trial
    # the writer goes on after a kill: a second and third life continue the same workload where it stopped
    for life in range(3):
        done = [int(line) for line in journal.read_text().split()]
        start = (done[-1] + 1) if done else 0
        if start >= N_OPS:
            break
        env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(
            [sys.executable, "-c", _RESUME, str(db_path), str(seed), str(N_OPS), str(journal), str(start)], env=env
        )
        time.sleep(float(rng.uniform(0.3, 2.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(db_path, journal, seed)
    derived = db_path / "collections" / COLLECTION / "derived"
    if derived.exists():  # the next save sweeps what a killed save left behind
        col = lookalike.Database(db_path).get_collection(COLLECTION)
        col.optimize()
        for synced in col._indexes.values():
            synced.saved_version = -1
        col.flush()
        assert not [p for p in derived.glob(".*") if p.is_dir()], "leftover temporary directories"
        col._store.close()
    return {"ops_done": len(journal.read_text().split())}


_RESUME = """
import sys
from tests.reliability import crash_workload as w
db, seed, n, journal, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ops = w.operations(seed, n)
w.operations = lambda s, n: ops  # same list; skip what the journal says returned
import lookalike
database = lookalike.Database(db)
col = database.get_or_create_collection(w.COLLECTION, dim=w.DIM, metric="l2")
# an operation that was in flight at the last kill may or may not have landed: find out, and redo it if not
with open(journal, "a") as log:
    for i in range(start, n):
        kind, ids, vectors = ops[i]
        if kind == "add":
            present = col.has(ids)
            if all(present):
                pass
            else:
                assert not any(present), "a batch landed partly"
                col.add(ids, vectors)
        elif kind == "upsert":
            col.upsert(ids, vectors)
        elif kind == "delete":
            present = col.has(ids)
            assert all(present) or not any(present), "a delete landed partly"
            if all(present):
                col.delete(ids)
        elif ids == "ivf":
            col.create_index("ivf", nlist=8)
        else:
            col.flush()
        log.write(f"{i}\\n"); log.flush()
        import os; os.fsync(log.fileno())
"""


def check(db_path: Path, journal: Path, seed: int) -> None:
    done = [int(line) for line in journal.read_text().split()]
    ops = operations(seed, N_OPS)
    model: dict = {}
    for i in range(len(done)):
        apply(model, ops[i])
    in_flight = ops[len(done)] if len(done) < N_OPS else None
    if not db_path.exists() or not (db_path / "collections" / COLLECTION).exists():
        assert not model
        return
    col = lookalike.Database(db_path).get_collection(COLLECTION)
    stored_ids = set(col.ids())
    candidates = [model]
    if in_flight is not None:
        after = dict(model)
        apply(after, in_flight)
        candidates.append(after)
    matches = [m for m in candidates if set(m) == stored_ids]
    assert matches, f"stored ids match neither the returned writes nor them plus the batch in flight (op {len(done)})"
    expected = matches[-1] if len(matches) == 2 and in_flight[0] == "upsert" and _upsert_landed(col, in_flight) else matches[0]
    if stored_ids:
        ids = sorted(stored_ids)
        np.testing.assert_array_equal(col.get(ids).vectors, np.array([expected[i] for i in ids]))
        queries = np.random.default_rng(seed).normal(size=(5, DIM)).astype(np.float32)
        k = min(10, len(ids))
        for index in col.indexes:
            got = col.query(queries, k=k, index=index, **({"nprobe": 8} if index == "ivf" else {}))
            assert set(got.ids.ravel()) <= stored_ids | {None}, "a deleted id came back"
        exact = col.query(queries, k=k, index="flat")
        vecs = np.array([expected[i] for i in ids])
        want = np.sort(np.sqrt(((vecs[None] - queries[:, None]) ** 2).sum(-1)), axis=1)[:, :k]
        np.testing.assert_allclose(exact.distances, want, rtol=1e-4, atol=1e-4)
    col._store.close()


def _upsert_landed(col, op) -> bool:
    _, ids, vectors = op
    return bool(np.allclose(col.get([ids[0]]).vectors[0], vectors[0]))


pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("trial", range(4))
def test_sigkill_loses_nothing(tmp_path, trial):
    crash_once(tmp_path, trial)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(4, 74))
def test_sigkill_loses_nothing_many_times(tmp_path, trial):
    crash_once(tmp_path, trial)
