"""`lookalike bench --scaling`: ingest, builds and QPS at recall 0.95 beside faiss and hnswlib, a fresh process's
memory, disk and the capacity plan (what bench/bench_scaling.py measured), on a small set."""

from __future__ import annotations

import json

from lookalike.cli import main


def test_every_step_is_measured(tmp_path, capsys):
    assert main(["bench", "--scaling", "6000:16", "--queries", "100", "--scaling-nlist", "32", "--scaling-m", "4",
                 "--scaling-batch", "2000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "capacity plan" in out and "RSS growth" in out
    figures = json.loads(next(tmp_path.glob("scaling-*.json")).read_text())
    assert figures["ingest"]["vectors_per_s"] > 0
    for name in ("ivf", "ivfpq", "hnsw"):
        ours, peer = figures["lookalike"][name], figures["peers"][name]
        assert ours["build_s"] > 0 and ours["qps"] > 0 and ours["disk_bytes"] > 0 and peer["qps"] > 0
        assert ours["recall"] >= 0.95 or ours["params"] in ({"nprobe": 128}, {"ef": 384})  # the grid's end
    assert [step[0] for step in figures["memory_all"]["steps"]] == ["flat", "ivf", "ivfpq"]
