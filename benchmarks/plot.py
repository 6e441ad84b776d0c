"""Plot recall@10 against queries/s for every measured method (matplotlib is optional).

``python -m benchmarks`` draws the plot after its run; ``python -m benchmarks.plot`` redraws it
from the ``points.json`` that run wrote beside it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Measurement

RESULTS_DIR = Path(__file__).resolve().parent / "results"

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

    figure, axes = plt.subplots(figsize=(12, 6.5))
    # tab20 has 20 colours in light/dark pairs; the dark ones come first so that neighbouring
    # series differ. The default cycle repeats after 10 series.
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[0::2] + tab20[1::2]
    for number, (label, members) in enumerate(series.items()):
        members = sorted(members, key=lambda p: p.recall)
        recalls = [p.recall for p in members]
        qps = [p.qps for p in members]
        markers_only = members[0].section in POINT_SECTIONS or "filtered" in label
        if markers_only:
            style = "x"
        elif len(members) > 1:
            style = "o"
        else:
            style = "s"
        linestyle = "--" if members[0].is_peer else "-"
        axes.plot(recalls, qps, style, label=label, color=colours[number % len(colours)],
                  linestyle="none" if markers_only else linestyle, markersize=5)
    axes.set_yscale("log")
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries/s (1 search thread, log scale)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return f"wrote {path}"


def save_points(points: Sequence[Measurement], title: str, path: Path) -> None:
    """Write the plot's points and title as JSON, so that the plot can be redrawn."""
    records = [dataclasses.asdict(point) for point in points]
    path.write_text(json.dumps({"title": title, "points": records}, indent=1))


def main() -> None:
    saved = json.loads((RESULTS_DIR / "points.json").read_text())
    points = [Measurement(**record) for record in saved["points"]]
    print(plot_recall_qps(points, RESULTS_DIR / "recall_qps.png", saved["title"]))


if __name__ == "__main__":
    main()
