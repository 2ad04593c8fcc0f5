"""Snapshots: the whole database in one file while a writer goes on, restored with identical answers and ready
indexes; truncated, altered, newer or misplaced snapshots refused with nothing left behind."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import threading

import numpy as np
import pytest

import lookalike
from lookalike.cli import main
from lookalike.errors import StorageFormatError
from tests.conftest import clustered

BATCH = 100


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "db"
    data = clustered(3000, 16, 8, seed=1)
    with lookalike.Database(path) as db:
        col = db.create_collection("items", dim=16, metric="cosine")
        col.add([f"item-{i}" for i in range(3000)], data, [{"n": i} for i in range(3000)])
        col.create_index("ivf", nlist=16)
        db.create_collection("empty", dim=4)
    return path, data


def test_restored_database_answers_as_the_original(source, tmp_path, caplog):
    path, data = source
    with lookalike.Database(path) as db:
        report = db.snapshot(tmp_path / "snap.tar")
        want = db.get_collection("items").query(data[:20], k=5, nprobe=4)
    assert report["name"] == "snap.tar" and report["size"] == (tmp_path / "snap.tar").stat().st_size
    with caplog.at_level(logging.INFO, logger="lookalike"):
        restored = lookalike.Database.restore(tmp_path / "snap.tar", tmp_path / "restored")
        got = restored.get_collection("items").query(data[:20], k=5, nprobe=4)
    assert np.array_equal(got.ids, want.ids) and np.allclose(got.distances, want.distances)
    assert got.metadatas == want.metadatas and sorted(restored.list_collections()) == ["empty", "items"]
    assert not [r for r in caplog.records if "rebuilding" in r.getMessage()]  # indexes ready, no rebuild
    restored.close()


def test_a_snapshot_taken_while_a_writer_writes_holds_whole_batches(source, tmp_path):
    path, _ = source
    rng = np.random.default_rng(2)
    started = threading.Event()

    def write():
        with lookalike.Database(path) as db:
            col = db.get_collection("items")
            for b in range(60):
                col.add([f"new-{b}-{i}" for i in range(BATCH)], rng.standard_normal((BATCH, 16)).astype(np.float32))
                if b == 5:
                    started.set()
        started.set()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(60)
    with lookalike.Database(path) as db:
        db.snapshot(tmp_path / "live.tar")
    writer.join()
    restored = lookalike.Database.restore(tmp_path / "live.tar", tmp_path / "restored")
    col = restored.get_collection("items")
    new = len(col) - 3000
    assert new % BATCH == 0 and new >= 6 * BATCH  # whole acknowledged batches only, taken while writing
    batches = new // BATCH
    assert all(col.has([f"new-{b}-{i}" for b in range(batches) for i in range(BATCH)]))
    assert not any(col.has([f"new-{batches}-0"]))
    exact = col.query(col.get_vectors()[:5], k=3, index="flat")
    approximate = col.query(col.get_vectors()[:5], k=3, index="ivf", nprobe=16)
    assert np.array_equal(exact.ids, approximate.ids)  # the index caught up with the snapshot's points
    restored.close()


def _rewrite(snapshot, out, change):
    """A copy of a snapshot with ``change(name, bytes) -> bytes`` applied to each member."""
    with tarfile.open(snapshot) as tar, tarfile.open(out, "w") as copy:
        for member in tar.getmembers():
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))


def test_bad_snapshots_are_refused_and_leave_nothing(source, tmp_path):
    path, _ = source
    with lookalike.Database(path) as db:
        db.snapshot(tmp_path / "good.tar")
    good = (tmp_path / "good.tar").read_bytes()
    (tmp_path / "truncated.tar").write_bytes(good[: len(good) // 2])

    def flip(name, data):
        return data[:-10] + bytes(b ^ 1 for b in data[-10:]) if name.endswith(".sqlite") else data

    def newer(name, data):
        if name != "snapshot.json":
            return data
        manifest = json.loads(data)
        manifest["format_version"] = 99
        return json.dumps(manifest).encode()

    _rewrite(tmp_path / "good.tar", tmp_path / "altered.tar", flip)
    _rewrite(tmp_path / "good.tar", tmp_path / "newer.tar", newer)
    (tmp_path / "foreign.tar").write_bytes(b"not a tar file at all" * 100)
    for name, words in (("truncated", "truncated or corrupt"), ("altered", "checksum"),
                        ("newer", "format_version 99"), ("foreign", "not a whole lookalike snapshot")):
        target = tmp_path / f"into-{name}"
        with pytest.raises(StorageFormatError, match=words):
            lookalike.Database.restore(tmp_path / f"{name}.tar", target)
        assert not target.exists()
        assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]  # no half-written database
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(StorageFormatError, match="not empty"):
        lookalike.Database.restore(tmp_path / "good.tar", occupied)
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]


def test_snapshot_and_restore_from_the_command_line(source, tmp_path, capsys):
    path, data = source
    assert main(["snapshot", str(tmp_path / "cli.tar"), "--db", str(path)]) == 0
    assert "snapshot" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "cli.tar"), "--db", str(tmp_path / "back")]) == 0
    assert "items" in capsys.readouterr().out
    with lookalike.Database(tmp_path / "back") as db:
        assert len(db.get_collection("items")) == 3000
    assert main(["restore", str(tmp_path / "cli.tar"), "--db", str(tmp_path / "back")]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
