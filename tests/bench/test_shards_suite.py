"""`lookalike bench --shards`: one local Database and each shard count on a real local Ray (what
bench/bench_shards.py measured)."""

from __future__ import annotations

import json

from lookalike.cli import main


def test_every_setup_is_measured(tmp_path, capsys):
    assert main(["bench", "--shards", "3000:16", "--shards-counts", "1,2", "--queries", "50",
                 "--out", str(tmp_path)]) == 0
    assert "| 2 shard(s) |" in capsys.readouterr().out
    figures = json.loads(next(tmp_path.glob("shards-*.json")).read_text())
    setups = [row["setup"] for row in figures["rows"]]
    assert setups[2:] == ["1 shard(s)", "2 shard(s)"] and setups[0].startswith("local")
    for row in figures["rows"]:
        assert row["add_per_s"] > 0 and row["flat"]["batch_qps"] > 0 and row["ivf"]["single_qps"] > 0
        assert 0.5 <= row["ivf"]["recall"] <= 1.0
    assert all(row["ingest_per_s"] > 0 for row in figures["rows"][2:])
