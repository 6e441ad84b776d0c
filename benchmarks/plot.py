"""Plot recall@10 against queries/s for every measured method (matplotlib is optional)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Measurement

# Filtered runs give one point per filter, not a curve, so they are drawn as markers only.
POINT_SECTIONS = {"filtered"}


def series_label(point: Measurement) -> str:
    if point.section == "filtered":
        return "vsql SQL, filtered (one point per filter)"
    if point.section == "vss" and point.method.startswith("DuckDB vss filtered"):
        return "DuckDB vss, filtered (one point per filter)"
    return point.method


def plot_recall_qps(points: Sequence[Measurement], path: Path, title: str) -> str:
    """Write the plot to ``path``; return a line saying what was written or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: skipped the plot (pip install matplotlib)"

    series: dict[str, list[Measurement]] = defaultdict(list)
    for point in points:
        if point.recall is not None and point.qps is not None:
            series[series_label(point)].append(point)

    figure, axes = plt.subplots(figsize=(10, 6.5))
    for label, members in series.items():
        members = sorted(members, key=lambda p: p.recall)
        recalls = [p.recall for p in members]
        qps = [p.qps for p in members]
        markers_only = members[0].section in POINT_SECTIONS or "filtered" in label
        style = "x" if markers_only else ("o-" if len(members) > 1 else "s")
        linestyle = "--" if members[0].is_peer else "-"
        axes.plot(recalls, qps, style, label=label, linestyle="none" if markers_only else linestyle,
                  markersize=5)
    axes.set_yscale("log")
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries/s (1 search thread, log scale)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return f"wrote {path}"
