"""The recall / queries-per-second plot, in the ann-benchmarks style: recall on x, QPS on a log y axis (up and
to the right is better), one line per algorithm through its Pareto frontier, dominated points as faint dots.
Drawn with matplotlib's Agg backend (no display needed), written as PNG and SVG."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .results import BenchResult

_MARKERS = "os^Dv<>phX*P"


@dataclass
class Curve:
    """One line of a recall-QPS plot: its points (recall, QPS) in order, and the faint points beside it."""

    label: str
    recall: list[float]
    qps: list[float]
    solid: bool = True  # lookalike's lines are solid, the peers' dashed
    faint_recall: list[float] = field(default_factory=list)
    faint_qps: list[float] = field(default_factory=list)


def plot_recall_qps(result: BenchResult, out_base: str | os.PathLike, formats: tuple[str, ...] = ("png", "svg"),
                    ) -> list[Path]:
    """Write ``<out_base>.png`` and ``<out_base>.svg`` of a harness result; returns the paths written."""
    curves = []
    for algorithm in result.algorithms():
        runs = [r for r in result.runs if r.algorithm == algorithm]
        front = result.frontier(algorithm)
        curves.append(Curve(algorithm, [r.recall for r in front], [r.qps for r in front],
                            runs[0].library == "lookalike", [r.recall for r in runs], [r.qps for r in runs]))
    ds, st = result.dataset, result.settings
    title = (f"{ds.get('name')} ({ds.get('n_train')} x {ds.get('dim')}, {ds.get('distance')}), "
             f"{st.get('mode')} queries, {st.get('threads')} thread(s)")
    return draw_recall_qps(curves, out_base, title, f"Recall@{st.get('k')}", formats=formats)


def draw_recall_qps(curves: list[Curve], out_base: str | os.PathLike, title: str, xlabel: str,
                    ylabel: str = "Queries per second (1/s), log scale",
                    formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """The one plot style of ``lookalike bench``: recall on x, QPS on a log y axis, a colour and a marker per
    curve; every suite that plots recall against speed draws through here."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    colors = plt.get_cmap("tab10")
    for i, curve in enumerate(curves):
        color, marker = colors(i % 10), _MARKERS[i % len(_MARKERS)]
        if curve.faint_recall:
            ax.scatter(curve.faint_recall, curve.faint_qps, color=color, alpha=0.25, s=14, marker=marker)
        ax.plot(curve.recall, curve.qps, color=color, marker=marker, markersize=5,
                linewidth=2.2 if curve.solid else 1.4, linestyle="-" if curve.solid else "--", label=curve.label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    recalls = [r for curve in curves for r in curve.recall + curve.faint_recall]
    ax.set_xlim(max(0.0, min(recalls, default=0.0) - 0.05), 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_base.with_name(f"{out_base.name}.{fmt}")
        fig.savefig(path, format=fmt)
        written.append(path)
    plt.close(fig)
    return written
