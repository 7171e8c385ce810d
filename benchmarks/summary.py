"""Reduce rounds to medians and min–max spreads, and express each as a ratio to the baseline."""

from __future__ import annotations

import statistics
from typing import Any

# metric key -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "rps": ("req/s", "", True),
    "cpu_us_per_req": ("CPU µs/req", "µs", False),
    "p50_ms": ("p50 ms", "ms", False),
    "p99_ms": ("p99 ms", "ms", False),
    "rss_mib": ("RSS MiB", "MiB", False),
}
IDLE_METRICS: dict[str, tuple[str, str, bool]] = {
    "rss_idle_mib": ("RSS idle MiB", "MiB", False),
    "idle_open_after": ("idle open", "", True),
}


def spread(values: list[float]) -> dict[str, float] | None:
    """median, min and max of the values (None when there are none)."""
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarise_config(records: list[dict], metric_keys: list[str]) -> dict[str, Any]:
    """Per metric: median/min/max over the successful rounds; plus error counts."""
    good = [r for r in records if r.get("ok")]
    figures: dict[str, Any] = {}
    for key in metric_keys:
        values = [float(r[key]) for r in good if r.get(key) is not None]
        figures[key] = spread(values)
    return {
        "rounds_ok": len(good),
        "rounds_failed": len(records) - len(good),
        "failures": [r.get("error", "") for r in records if not r.get("ok")],
        "errors": sum(sum(r["socket_errors"].values()) + r["non_2xx"] for r in good),
        "other_load_max_pct": max(
            (
                r["other_load_on_server_core_pct"]
                for r in good
                if "other_load_on_server_core_pct" in r
            ),
            default=None,
        ),
        "figures": figures,
        # h2load's counts (h2 workloads): `errors` above is their failed; each round with a
        # failed request is listed so that the report can flag it
        **(
            {
                "failed": sum(r["failed"] for r in good),
                "errored": sum(r["errored"] for r in good),
                "failed_rounds": [
                    {key: r[key] for key in ("round", "failed", "errored", "timeout")}
                    for r in good
                    if r["failed"]
                ],
            }
            if any("failed" in r for r in good)
            else {}
        ),
    }


def summarise_workload(
    by_config: dict[str, list[dict]], baseline: str, idle: bool
) -> dict[str, dict[str, Any]]:
    """Summaries for every configuration of one workload, with ratios of medians to baseline."""
    keys = list(METRICS) + (list(IDLE_METRICS) if idle else [])
    summaries = {name: summarise_config(records, keys) for name, records in by_config.items()}
    base = summaries.get(baseline)
    for summary in summaries.values():
        ratios: dict[str, float | None] = {}
        for key in keys:
            mine = summary["figures"].get(key)
            theirs = base["figures"].get(key) if base else None
            ratios[key] = (
                mine["median"] / theirs["median"] if mine and theirs and theirs["median"] else None
            )
        summary["ratios"] = ratios
    return summaries
