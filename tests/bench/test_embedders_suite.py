"""`lookalike bench --embedders`: catalog rate, alignment, shoppers' words and languages, latency, per embedder
(what bench_embed.py and bench_text_route.py measured), on the offline embedder over a slice of the catalog."""

from __future__ import annotations

import json

from lookalike.bench.embedders import query_sets
from lookalike.cli import main


def test_every_figure_is_measured_per_embedder(tmp_path, capsys):
    assert main(["bench", "--embedders", "minilm-fmnist-described+use-m", "--queries", "200", "--runs", "10",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dev languages" in out and "one 600x800 photo" in out
    figures = json.loads(next(tmp_path.glob("embedders-*.json")).read_text())
    assert figures["catalog_images"] == 400
    row = figures["embedders"]["minilm-fmnist-described+use-m"]
    assert row["dim"] > 0 and row["catalog_images_per_s"] > 0
    assert set(row["text_queries"]) == set(query_sets())
    assert row["text_queries"]["class names"]["right"] >= 8  # the class names find their class, even on a slice
    assert 0.5 <= row["alignment"]["zero_shot_class_names"] <= 1.0
    assert all(cell["p50"] > 0 and cell["p95"] >= cell["p50"] for cell in row["latency_ms"].values())
