"""The lookalike command: each subcommand end to end on a real database, and one-line errors with exit != 0."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from lookalike.cli import main
from tests.conftest import clustered

pytestmark = pytest.mark.cli


@pytest.fixture
def dbdir(tmp_path):
    return str(tmp_path / "db")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_add_query_info_delete(capsys, dbdir, tmp_path):
    data = clustered(500, 16, 5, seed=0)
    np.save(tmp_path / "v.npy", data)
    assert run(capsys, "create", "items", "--dim", "16", "--metric", "l2", "--db", dbdir)[0] == 0
    code, out, _ = run(capsys, "add", "items", str(tmp_path / "v.npy"), "--db", dbdir)
    assert code == 0 and "added 500" in out
    code, out, _ = run(capsys, "query", "items", "--file", str(tmp_path / "v.npy"), "--rows", "3", "-k", "3",
                       "--with-recall", "--json", "--db", dbdir)
    assert code == 0
    answer = json.loads(out)
    assert answer[0]["hits"][0]["id"] == 3 and answer[0]["recall"] == 1.0
    code, out, _ = run(capsys, "info", "items", "--json", "--db", dbdir)
    assert json.loads(out)["count"] == 500
    code, out, _ = run(capsys, "delete", "items", "3", "4", "--db", dbdir)
    assert code == 0 and "deleted 2" in out
    code, out, _ = run(capsys, "query", "items", "--vector", json.dumps(data[3].tolist()), "-k", "5", "--db", dbdir)
    assert code == 0 and "  1. 3 " not in out


def test_add_csv_jsonl_hdf5(capsys, dbdir, tmp_path):
    (tmp_path / "v.csv").write_text("id,v0,v1,colour\na,1,0,red\nb,0,1,blue\n")
    (tmp_path / "v.jsonl").write_text('{"id": "c", "vector": [1, 1], "metadata": {"colour": "red"}}\n')
    with h5py.File(tmp_path / "v.hdf5", "w") as f:
        f["train"] = np.eye(2, dtype=np.float32) * 3
        f["test"] = np.ones((1, 2), dtype=np.float32)
    run(capsys, "create", "s", "--dim", "2", "--db", dbdir)
    for name in ("v.csv", "v.jsonl"):
        assert run(capsys, "add", "s", str(tmp_path / name), "--db", dbdir)[0] == 0
    assert run(capsys, "add", "s", str(tmp_path / "v.hdf5"), "--start-id", "100", "--db", dbdir)[0] == 0
    code, out, _ = run(capsys, "query", "s", "--vector", "[1, 0.1]", "-k", "5", "--where", '{"colour": "red"}',
                       "--json", "--db", dbdir)
    assert [h["id"] for h in json.loads(out)[0]["hits"]] == ["a", "c"]
    code, out, _ = run(capsys, "query", "s", "--file", str(tmp_path / "v.hdf5"), "-k", "1", "--json", "--db", dbdir)
    assert json.loads(out)[0]["hits"][0]["id"] == "c"


def test_index_build(capsys, dbdir, tmp_path):
    pytest.importorskip("lookalike.index.ivf")
    np.save(tmp_path / "v.npy", clustered(2000, 8, 10, seed=0))
    run(capsys, "add", "c", str(tmp_path / "v.npy"), "--create", "l2", "--db", dbdir)
    code, out, _ = run(capsys, "index", "build", "c", "--type", "ivf", "--nlist", "16", "--db", dbdir)
    assert code == 0 and "built ivf" in out
    code, out, _ = run(capsys, "query", "c", "--file", str(tmp_path / "v.npy"), "--rows", "0:3", "--param", "nprobe=16",
                       "--with-recall", "--db", dbdir)
    assert code == 0 and "index=ivf" in out and "recall@10=1.00" in out


@pytest.mark.parametrize("argv, fragment", [
    (["query", "missing", "--vector", "[1]"], "CollectionNotFoundError"),
    (["create", "bad/name", "--dim", "3"], "InvalidNameError"),
    (["create", "ok", "--dim", "3", "--metric", "nope"], "UnknownMetricError"),
    (["index", "build", "x", "--type", "magic"], "CollectionNotFoundError"),
])
def test_errors_are_one_line_with_nonzero_exit(capsys, dbdir, argv, fragment):
    code, out, err = run(capsys, *argv, "--db", dbdir)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_bad_vector_and_k(capsys, dbdir):
    run(capsys, "create", "c", "--dim", "3", "--db", dbdir)
    code, _, err = run(capsys, "query", "c", "--vector", "[1, 2]", "--db", dbdir)
    assert code == 2 and "DimensionMismatchError" in err
    code, _, err = run(capsys, "query", "c", "--vector", "[1, 2, 3]", "-k", "0", "--db", dbdir)
    assert code == 2 and "InvalidKError" in err
    code, _, err = run(capsys, "query", "c", "--vector", "[1, 2", "--db", dbdir)
    assert code == 2 and "not valid JSON" in err


def test_console_script_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "info", "--db", str(tmp_path / "db")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "0 collection(s)" in out.stdout
