"""The recall / queries-per-second plot, in the ann-benchmarks style: recall on x, QPS on a log y axis (up and
to the right is better), one line per algorithm through its Pareto frontier, dominated points as faint dots.
Drawn with matplotlib's Agg backend (no display needed), written as PNG and SVG."""

from __future__ import annotations

import os
from pathlib import Path

from .results import BenchResult

_MARKERS = "os^Dv<>phX*P"


def plot_recall_qps(result: BenchResult, out_base: str | os.PathLike, formats: tuple[str, ...] = ("png", "svg"),
                    ) -> list[Path]:
    """Write ``<out_base>.png`` and ``<out_base>.svg``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    colors = plt.get_cmap("tab10")
    for i, algorithm in enumerate(result.algorithms()):
        color, marker = colors(i % 10), _MARKERS[i % len(_MARKERS)]
        runs = [r for r in result.runs if r.algorithm == algorithm]
        front = result.frontier(algorithm)
        ax.scatter([r.recall for r in runs], [r.qps for r in runs], color=color, alpha=0.25, s=14, marker=marker)
        lookalike = runs[0].library == "lookalike"
        ax.plot([r.recall for r in front], [r.qps for r in front], color=color, marker=marker, markersize=5,
                linewidth=2.2 if lookalike else 1.4, linestyle="-" if lookalike else "--", label=algorithm)
    ax.set_yscale("log")
    ax.set_xlabel(f"Recall@{result.settings.get('k')}")
    ax.set_ylabel("Queries per second (1/s), log scale")
    recalls = [r.recall for r in result.runs]
    ax.set_xlim(max(0.0, min(recalls, default=0.0) - 0.05), 1.02)
    ds, st = result.dataset, result.settings
    ax.set_title(
        f"{ds.get('name')} ({ds.get('n_train')} x {ds.get('dim')}, {ds.get('distance')}), "
        f"{st.get('mode')} queries, {st.get('threads')} thread(s)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    if result.runs:
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
