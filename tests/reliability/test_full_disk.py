"""A full disk loses nothing committed: the failing write is rolled back with StorageFullError, earlier writes
stay, and a derived file that cannot be written is only a warning (it is a cache)."""

from __future__ import annotations

import errno
import subprocess
import uuid

import numpy as np
import pytest

import lookalike
from lookalike.errors import StorageFullError

pytestmark = pytest.mark.reliability


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_sqlite_full_disk_rolls_back_and_keeps_what_returned(small_disk):
    db = lookalike.Database(small_disk / "db")
    col = db.create_collection("c", dim=64, metric="l2")
    rng = np.random.default_rng(0)
    stored: dict[str, np.ndarray] = {}
    with pytest.raises(StorageFullError):
        for batch in range(1000):  # 1000 x 200 x 256 B = 50 MB: far more than the disk
            ids = [f"b{batch}-{i}" for i in range(200)]
            vectors = rng.normal(size=(200, 64)).astype(np.float32)
            col.add(ids, vectors)
            stored.update(zip(ids, vectors))
    assert len(col) == len(stored) > 0
    col._store.close()
    reopened = lookalike.Database(small_disk / "db").get_collection("c")
    ids = sorted(stored)
    assert len(reopened) == len(stored)
    np.testing.assert_array_equal(reopened.get(ids).vectors, np.array([stored[i] for i in ids]))
    assert reopened.query(stored[ids[0]], k=1).ids[0, 0] == ids[0]


def test_derived_file_write_failure_is_only_a_warning(tmp_path, monkeypatch, caplog):
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", dim=4, metric="l2")
    col.add([1, 2], np.eye(2, 4))
    col.create_index("hnsw", M=4)
    col.add([3], np.ones((1, 4)))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lookalike.index.base._write_npy", no_space)
    col.optimize()  # indexes the new point and saves: the save fails
    assert "could not save index" in caplog.text
    monkeypatch.undo()
    db.close()
    again = lookalike.Database(tmp_path / "db").get_collection("c")
    assert len(again) == 3 and again.query(np.eye(1, 4), k=1).ids[0, 0] == 1
