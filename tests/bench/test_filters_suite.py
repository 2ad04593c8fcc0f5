"""`lookalike bench --filters`: the suite runs end to end (lookalike's side; the peer needs chromadb) and measures
the page's class filter over a real server."""

from __future__ import annotations

import json

from lookalike.bench.filters import measure_page_filter
from lookalike.cli import main


def test_the_suite_measures_every_kind_of_filter(tmp_path, capsys):
    assert main(["bench", "--filters", "3000:16", "--queries", "40", "--out", str(tmp_path)]) == 0
    assert "equal 10%" in capsys.readouterr().out
    results = json.loads(next(tmp_path.glob("filters-*.json")).read_text())
    rows = next(value for name, value in results.items() if name.startswith("lookalike"))
    assert set(rows) == {"none", "equal 50%", "equal 10%", "equal 1%", "range 5%"}
    for name, row in rows.items():
        assert row["us_per_query"] > 0 and row["x_unfiltered"] > 0
        assert 0.9 <= row["recall"] <= 1.0, name  # filtered answers are checked against exact filtered search
    assert rows["none"]["x_unfiltered"] == 1.0


def test_the_page_filter_is_timed_through_a_real_server(small_catalog):
    row = measure_page_filter(small_catalog, "fashion-mnist", n_queries=20, progress=lambda _: None)
    assert row["queries"] == 20
    for side in ("no_filter_ms", "class_filter_ms"):
        assert 0 < row[side]["p50"] <= row[side]["p99"]
    assert row["ratio_p50"] > 0
