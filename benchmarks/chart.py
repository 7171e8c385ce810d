"""Draw the chart: req/s and CPU µs/request of each configuration relative to the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PANELS = (
    ("rps", "req/s ÷ baseline (higher is better)"),
    ("cpu_us_per_req", "CPU µs/request ÷ baseline (lower is better)"),
)


def draw(result: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars, one group per workload, one bar per configuration; None if no data."""
    workloads = [w for w in result["workloads"] if w["configs"]]
    configs: list[str] = []
    for workload in workloads:
        configs += [
            name
            for name in workload["configs"]
            if name not in configs and name != workload["baseline"]
        ]
    if not workloads or not configs:
        return None
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(max(8, 1.6 * len(workloads)), 8))
    width = 0.8 / len(configs)
    order = list(result.get("configurations", {}))  # stable colours across runs
    colours = plt.get_cmap("tab10")
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        extremes: list[float] = [1.0]
        for index, name in enumerate(configs):
            xs, heights = [], []
            for position, workload in enumerate(workloads):
                if name == workload["baseline"]:
                    continue  # the baseline is the 1× line
                ratio = workload["configs"].get(name, {}).get("ratios", {}).get(key)
                if ratio is not None:
                    xs.append(position - 0.4 + width * (index + 0.5))
                    heights.append(ratio)
            # bars start at the baseline (1×) and go up or down to the ratio
            axis.bar(
                xs,
                [h - 1.0 for h in heights],
                width,
                bottom=1.0,
                label=name,
                color=colours(order.index(name) % 10 if name in order else index % 10),
            )
            extremes += heights
        axis.axhline(1.0, color="black", linewidth=0.8)
        # log scale: 2× and 0.5× sit at the same distance from the baseline
        axis.set_yscale("log", base=2)
        axis.set_ylim(min(extremes) / 1.25, max(extremes) * 1.25)
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
        axis.set_title(title)
        axis.set_xticks(range(len(workloads)))
        axis.set_xticklabels([f"{w['name']}\n(vs {w['baseline']})" for w in workloads])
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(configs), fontsize="small")
    figure.suptitle(f"Benchmarks {result['date']}: median ratio to the baseline (the 1× line)")
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
