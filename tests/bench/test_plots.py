"""One plot style: the harness's recall-QPS plot and the modalities suite's draw through plots.draw_recall_qps."""

from __future__ import annotations

from lookalike.bench.modality import plot
from lookalike.bench.plots import Curve, draw_recall_qps


def test_curves_are_drawn_as_png_and_svg(tmp_path):
    written = draw_recall_qps([Curve("ours", [0.8, 0.95], [2000.0, 900.0]),
                               Curve("peer", [0.9], [500.0], solid=False, faint_recall=[0.7], faint_qps=[800.0])],
                              tmp_path / "plot", "a title", "recall@10")
    assert [path.suffix for path in written] == [".png", ".svg"]
    assert written[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in written[1].read_bytes()[:400]


def test_the_modalities_plot_uses_the_same_style(tmp_path, capsys):
    point = {"recall": 0.9, "qps": 1000.0, "nprobe": 4, "min_recall": 0.5}
    plot({("ivf", "photo"): [point], ("ivf", "text"): [{**point, "recall": 0.8}]}, str(tmp_path / "m"), "catalog")
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "m.svg").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out
