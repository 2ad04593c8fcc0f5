"""`lookalike bench --load`: a real `lookalike serve` on loopback driven at rising concurrency (what
bench/load_test.py measured), with and without rebuilds going on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike import Database
from lookalike.bench.load import check_loopback
from lookalike.cli import main
from lookalike.errors import InvalidParameterError


def test_levels_are_measured_without_errors(tmp_path, capsys):
    db = tmp_path / "db"
    with Database(db) as database:
        col = database.create_collection("items", dim=16)
        col.add(list(range(2000)), np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32))
    assert main(["bench", "--load", f"{db}:items", "--load-levels", "1,4", "--load-requests", "60",
                 "--load-modes", "vector", "--load-mixed", "--out", str(tmp_path / "out")]) == 0
    assert "c=  4 mixed" in capsys.readouterr().out
    summary = json.loads(next((tmp_path / "out").glob("load-*.json")).read_text())
    assert [(row["concurrency"], row["mixed_writes"]) for row in summary["levels"]] == [
        (1, False), (1, True), (4, False), (4, True)]
    assert summary["total_errors"] == 0 and summary["total_requests"] == 240
    assert all(row["qps"] > 0 and row["p99_ms"] >= row["p50_ms"] for row in summary["levels"])
    assert summary["rss_end_mb"] > 0


def test_only_loopback_is_loaded():
    check_loopback("http://127.0.0.1:8000")
    with pytest.raises(InvalidParameterError, match="loopback"):
        check_loopback("http://10.1.2.3:8000")
