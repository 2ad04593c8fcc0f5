"""Databases written by the previous release (format 1: vectors as SQLite blobs) open and answer as before; the
migration is idempotent and also a command; a database of a newer format is refused, untouched; `lookalike check`
finds a damaged log."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike.cli import main
from lookalike.errors import StorageFormatError

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def old_db(tmp_path) -> Path:
    """The database tests/data/make_database_v1.py wrote with the previous release (its answers beside it)."""
    with tarfile.open(DATA / "database_v1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "v1db"


def expected() -> dict:
    return json.loads((DATA / "database_v1_answers.json").read_text())


def test_a_previous_release_database_opens_and_answers_as_before(old_db, caplog):
    assert json.loads((old_db / "lookalike.json").read_text())["format_version"] == 1
    want = expected()
    with caplog.at_level("INFO", logger="lookalike.collection"):
        db = lookalike.Database(old_db)
        for key, answer in want.items():
            if key.count("/") != 1 or key == "shop/p1":
                continue
            name, index = key.split("/")
            got = db.get_collection(name).query(np.array(answer["queries"], np.float32), k=5, index=index)
            assert got.ids.tolist() == answer["ids"], key
            np.testing.assert_allclose(got.distances, np.array(answer["distances"]), rtol=1e-5, atol=1e-6)
    assert not [r for r in caplog.records if "rebuild" in r.getMessage()], "saved indexes were not kept"
    p1 = db.get_collection("shop").get(["p1"])
    np.testing.assert_allclose(p1.vectors[0], want["shop/p1"]["vector"], rtol=1e-6)
    assert p1.metadatas[0] == want["shop/p1"]["metadata"]
    assert {n: len(db.get_collection(n)) for n in db.list_collections()} == want["counts"]
    shop = db.get_collection("shop")
    shop.add(["after"], np.ones((1, 8), np.float32))  # and takes writes in the new layout
    assert shop.query(np.ones(8), k=1, index="hnsw").ids[0, 0] == "after"
    db.close()
    assert json.loads((old_db / "lookalike.json").read_text())["format_version"] == lookalike.database.FORMAT_VERSION
    assert not list(old_db.rglob("derived/flat"))  # the second copy of the vectors is gone
    assert main(["check", "--db", str(old_db)]) == 0


def test_migrate_command_is_idempotent(old_db, capsys):
    assert main(["migrate", "--db", str(old_db)]) == 0
    assert "migrated empty, plain, shop" in capsys.readouterr().out
    assert main(["migrate", "--db", str(old_db)]) == 0
    assert "already" in capsys.readouterr().out
    db = lookalike.Database(old_db)
    assert len(db.get_collection("shop")) == expected()["counts"]["shop"]
    db.close()


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_a_newer_format_is_refused_and_left_untouched(tmp_path, capsys):
    db = lookalike.Database(tmp_path / "db")
    db.create_collection("c", dim=3).add([1], [[1.0, 2.0, 3.0]])
    db.close()
    marker = tmp_path / "db" / "lookalike.json"
    marker.write_text(json.dumps({"format": "lookalike-database", "format_version": 99}))
    before = _digest(tmp_path / "db")
    with pytest.raises(StorageFormatError, match="newer"):
        lookalike.Database(tmp_path / "db")
    assert main(["migrate", "--db", str(tmp_path / "db")]) == 2
    assert "newer" in capsys.readouterr().err
    assert _digest(tmp_path / "db") == before


def test_check_names_the_damaged_rows(tmp_path, capsys):
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", dim=4, metric="l2")
    for b in range(3):
        col.add([f"{b}-{i}" for i in range(100)], np.full((100, 4), b, np.float32))
    db.close()
    assert main(["check", "--db", str(tmp_path / "db")]) == 0
    assert "300 rows in 3 batches" in capsys.readouterr().out
    log = next((tmp_path / "db").rglob("vectors/*.f32"))
    with open(log, "r+b") as fh:
        fh.seek(150 * 16)
        fh.write(b"\x00\x00\x80\x7f")
    assert main(["check", "--db", str(tmp_path / "db")]) == 2
    assert "rows 100..200" in capsys.readouterr().err
