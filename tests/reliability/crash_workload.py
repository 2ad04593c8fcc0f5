"""A deterministic write workload for the crash harness, and a model of what it should leave behind.

``operations(seed, n)`` is the same list in the writer process and in the checker: the checker replays the
operations the writer reported as returned, and accepts for the one in flight either all of it or none of it.
Run as a script, it is the writer: ``python crash_workload.py DB SEED N JOURNAL``.
"""

from __future__ import annotations

import os
import sys

import numpy as np

DIM = 8
COLLECTION = "crash"


def operations(seed: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    alive: list[str] = []
    ops: list[tuple] = []
    next_id = 0
    for i in range(n):
        kind = rng.choice(["add", "add", "upsert", "delete", "index"], p=[0.35, 0.15, 0.2, 0.2, 0.1])
        if kind == "add" or (kind in ("upsert", "delete") and len(alive) < 5):
            size = int(rng.integers(1, 200))
            ids = [f"p{next_id + j}" for j in range(size)]
            next_id += size
            ops.append(("add", ids, rng.normal(size=(size, DIM)).astype(np.float32)))
            alive += ids
        elif kind == "upsert":
            old = list(rng.choice(alive, size=min(len(alive), int(rng.integers(1, 20))), replace=False))
            new = [f"p{next_id + j}" for j in range(int(rng.integers(0, 20)))]
            next_id += len(new)
            ids = old + new
            ops.append(("upsert", ids, rng.normal(size=(len(ids), DIM)).astype(np.float32)))
            alive += new
        elif kind == "delete":
            gone = list(rng.choice(alive, size=min(len(alive) - 1, int(rng.integers(1, 30))), replace=False))
            ops.append(("delete", gone, None))
            alive = [a for a in alive if a not in set(gone)]
        else:
            ops.append(("index", ["ivf", "flat"][int(rng.integers(0, 2))], None))
    return ops


def apply(model: dict, op: tuple) -> None:
    kind, ids, vectors = op
    if kind in ("add", "upsert"):
        for i, v in zip(ids, vectors):
            model[i] = v
    elif kind == "delete":
        for i in ids:
            del model[i]


def run_writer(db_path: str, seed: int, n: int, journal: str) -> None:
    import lookalike

    db = lookalike.Database(db_path)
    col = db.get_or_create_collection(COLLECTION, dim=DIM, metric="l2")
    with open(journal, "a") as log:
        for i, op in enumerate(operations(seed, n)):
            kind, ids, vectors = op
            if kind == "add":
                col.add(ids, vectors)
            elif kind == "upsert":
                col.upsert(ids, vectors)
            elif kind == "delete":
                col.delete(ids)
            elif ids == "ivf":
                col.create_index("ivf", nlist=8)
            else:
                col.flush()  # write the derived files: a kill may land in the middle of it
            log.write(f"{i}\n")  # written only after the call returned
            log.flush()
            os.fsync(log.fileno())


if __name__ == "__main__":
    run_writer(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
