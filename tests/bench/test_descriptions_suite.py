"""`lookalike bench --descriptions`: the suite runs end to end on a small real catalog and refuses other ones."""

from __future__ import annotations

import json


from lookalike.cli import main


def test_the_suite_measures_every_figure(small_catalog, tmp_path, capsys):
    assert main(["bench", "--descriptions", str(small_catalog), "--queries", "100", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hits' within-class percentile" in out and "photo precision@10" in out
    figures = json.loads(next(tmp_path.glob("descriptions-*.json")).read_text())
    assert figures["embedder"] == "minilm-fmnist-described+use-m"
    goals = figures["goals"]
    assert {"white", "black", "patterned", "plain", "long dress", "short dress", "high shoes", "low shoes",
            "right class", "photo p@10 stored", "photo p@10 as product photos"} <= set(goals)
    assert goals["white"]["value"] > goals["black"]["value"] + 40  # even on 1,200 products the words are read
    assert goals["patterned"]["value"] > goals["plain"]["value"] + 30


def test_the_suite_refuses_a_collection_that_is_no_fashion_catalog(small_catalog, tmp_path, capsys):
    assert main(["bench", "--descriptions", f"{small_catalog}:vectors", "--out", str(tmp_path)]) == 2
    assert "not a Fashion-MNIST catalog" in capsys.readouterr().err
