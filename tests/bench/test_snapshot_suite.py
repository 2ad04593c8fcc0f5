"""`lookalike bench --snapshot`: a snapshot beside a writer and a searcher, end to end on a small database."""

from __future__ import annotations

import json

from lookalike.cli import main


def test_a_snapshot_under_load_is_measured(tmp_path, capsys):
    assert main(["bench", "--snapshot", "synthetic:3000:16", "--out", str(tmp_path)]) == 0
    assert "during the snapshot" in capsys.readouterr().out
    figures = json.loads(next(tmp_path.glob("snapshot-*.json")).read_text())
    assert figures["snapshot"]["seconds"] > 0 and figures["snapshot"]["bytes"] > 3000 * 16 * 4
    for phase in ("during", "alone"):
        for side in ("writes", "searches"):
            row = figures[phase][side]
            assert row["n"] >= 1 and 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]


def test_the_snapshot_alone_of_an_existing_database(tmp_path, capsys):
    import lookalike

    with lookalike.Database(tmp_path / "db") as db:
        db.create_collection("c", dim=4).add([1, 2], [[1, 0, 0, 0], [0, 1, 0, 0]])
    assert main(["bench", "--snapshot", str(tmp_path / "db"), "--snapshot-no-load", "--out", str(tmp_path / "o")]) == 0
    figures = json.loads(next((tmp_path / "o").glob("snapshot-*.json")).read_text())
    assert set(figures) == {"source", "snapshot"}
    assert (tmp_path / "db" / "collections" / "c").is_dir()  # the original is left as it was
