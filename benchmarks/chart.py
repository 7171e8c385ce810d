"""Draw the chart: req/s, CPU µs/request and p99 of each configuration relative to the baseline.

For the WebSocket workloads (ws-*) a request is one echoed message: msg/s and CPU µs/message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PANELS = (
    ("rps", "req/s (ws-*: messages/s) ÷ baseline (higher is better)"),
    ("cpu_us_per_req", "CPU µs/request (ws-*: per message) ÷ baseline (lower is better)"),
    ("p99_ms", "p99 latency (ws-*: message round trip) ÷ baseline (lower is better)"),
)


def _present(workload: dict[str, Any], configs: list[str]) -> list[str]:
    """The non-baseline configurations measured on this workload, in chart order."""
    return [n for n in configs if n in workload["configs"] and n != workload["baseline"]]


def draw(result: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars, one group per workload, one bar per configuration; None if no data.

    Each group holds only the configurations measured on that workload (the WSGI workloads
    have fewer peers), centred on the workload's tick; a configuration keeps its colour.
    """
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
    widest = max(len(_present(w, configs)) for w in workloads) or 1
    figure, axes = plt.subplots(
        len(PANELS), 1, figsize=(max(8, 1.6 * len(workloads)), 3.8 * len(PANELS))
    )
    width = 0.8 / widest
    order = list(result.get("configurations", {}))  # stable colours across runs
    colours = plt.get_cmap("tab10")
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        extremes: list[float] = [1.0]
        for index, name in enumerate(configs):
            xs, heights = [], []
            for position, workload in enumerate(workloads):
                present = _present(workload, configs)
                if name not in present:
                    continue  # not measured here, or the baseline (the 1× line)
                ratio = workload["configs"][name].get("ratios", {}).get(key)
                if ratio is not None:
                    slot = present.index(name) - (len(present) - 1) / 2
                    xs.append(position + slot * width)
                    heights.append(ratio)
            # bars start at the baseline (1×) and go up or down to the ratio
            axis.bar(
                xs,
                [h - 1.0 for h in heights],
                width,
                bottom=1.0,
                label=(result.get("labels") or {}).get(name, name),
                color=colours(order.index(name) % 10 if name in order else index % 10),
            )
            extremes += heights
        axis.axhline(1.0, color="black", linewidth=0.8)
        # a thin line where the baseline changes (ASGI workloads | WSGI workloads), a dotted
        # one where the protocol does (HTTP | WebSocket)
        for position in range(1, len(workloads)):
            here, before = workloads[position], workloads[position - 1]
            if here["baseline"] != before["baseline"]:
                axis.axvline(position - 0.5, color="grey", linewidth=0.8, linestyle="--")
            elif here.get("protocol", "http") != before.get("protocol", "http"):
                axis.axvline(position - 0.5, color="grey", linewidth=0.8, linestyle=":")
        # log scale: 2× and 0.5× sit at the same distance from the baseline
        axis.set_yscale("log", base=2)
        axis.set_ylim(min(extremes) / 1.25, max(extremes) * 1.25)
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
        axis.set_title(title)
        axis.set_xticks(range(len(workloads)))
        axis.set_xticklabels([f"{w['name']}\n(vs {w['baseline']})" for w in workloads])
        axis.set_xlim(-0.5, len(workloads) - 0.5)
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(configs), fontsize="small")
    figure.suptitle(f"Benchmarks {result['date']}: median ratio to the baseline (the 1× line)")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
