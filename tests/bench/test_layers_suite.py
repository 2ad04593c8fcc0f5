"""`lookalike bench --layers`: every layer of a small data set, through a real server on loopback."""

from __future__ import annotations

import json

from lookalike.cli import main


def test_every_layer_is_measured(tmp_path, capsys):
    assert main(["bench", "--layers", "synthetic:3000:16", "--queries", "40", "--runs", "1", "--layers-window", "1",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "collection costs" in out and "reading every hit's metadata too" in out and "the server adds" in out
    (result,) = json.loads(next(tmp_path.glob("layers-*.json")).read_text())
    for system in ("lookalike hnsw", "lookalike ivf"):
        row = result["rows"][system]
        assert row["recall"] >= 0.95  # each system runs at the smallest parameter reaching 0.95
        for layer in ("index single", "index batch", "collection single", "collection batch", "coll single+meta",
                      "coll batch+meta", "http-1", "http-4", "http-1 1w", "http-4 1w"):
            assert row[layer] > 0, (system, layer)
    reference = result["rows"]["zero-work server"]  # the clients' own limit, measured beside
    assert reference["http-1"] > 0 and reference["http-4"] > 0 and "zero-work server" in out
