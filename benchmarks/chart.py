"""Draw the chart: req/s and CPU µs/request of each configuration relative to the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

PANELS = (
    ("rps", "req/s ÷ baseline (higher is better)"),
    ("cpu_us_per_req", "CPU µs/request ÷ baseline (lower is better)"),
)


def draw(result: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars, one group per workload, one bar per configuration; None if no data."""
    workloads = [w for w in result["workloads"] if w["configs"]]
    configs: list[str] = []
    for workload in workloads:
        configs += [name for name in workload["configs"] if name not in configs]
    if not workloads or not configs:
        return None
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(max(8, 1.6 * len(workloads)), 8))
    width = 0.8 / len(configs)
    colours = plt.get_cmap("tab10")
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        for index, name in enumerate(configs):
            xs, heights = [], []
            for position, workload in enumerate(workloads):
                ratio = workload["configs"].get(name, {}).get("ratios", {}).get(key)
                if ratio is not None:
                    xs.append(position - 0.4 + width * (index + 0.5))
                    heights.append(ratio)
            axis.bar(xs, heights, width, label=name, color=colours(index % 10))
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_title(title)
        axis.set_xticks(range(len(workloads)))
        axis.set_xticklabels([f"{w['name']}\n(vs {w['baseline']})" for w in workloads])
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(ncol=min(len(configs), 4), fontsize="small")
    figure.suptitle(f"Benchmarks {result['date']}: ratio to baseline, medians of rounds")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
