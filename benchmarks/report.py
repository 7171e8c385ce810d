"""Write a run's results as JSON and Markdown (dated files plus latest.*)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks.summary import IDLE_METRICS, METRICS

_FORMATS = {
    "rps": "{:,.0f}",
    "cpu_us_per_req": "{:.1f}",
    "p50_ms": "{:.2f}",
    "p99_ms": "{:.2f}",
    "rss_mib": "{:.1f}",
    "rss_idle_mib": "{:.1f}",
    "idle_open_after": "{:.0f}",
}


def _figure(figures: dict[str, Any], key: str) -> str:
    spread = figures.get(key)
    if not spread:
        return "n/a"
    fmt = _FORMATS[key]
    median = fmt.format(spread["median"])
    if spread["n"] < 2:
        return median
    return f"{median} ({fmt.format(spread['min'])}–{fmt.format(spread['max'])})"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def workload_table(workload: dict[str, Any]) -> list[str]:
    """The Markdown table of one workload: median (min–max) and ratio per figure."""
    keys = list(METRICS) + (list(IDLE_METRICS) if workload["idle_connections"] else [])
    labels = {**METRICS, **IDLE_METRICS}
    header = ["configuration"]
    for key in keys:
        header += [labels[key][0], "×base"]
    header += ["errors", "other load %", "rounds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in workload["configs"].items():
        row = [f"**{name}**" if name == workload["baseline"] else name]
        for key in keys:
            row += [_figure(summary["figures"], key), _ratio(summary["ratios"].get(key))]
        rounds = f"{summary['rounds_ok']}/{summary['rounds_ok'] + summary['rounds_failed']}"
        other = summary.get("other_load_max_pct")
        row += [str(summary["errors"]), "n/a" if other is None else f"{other:.0f}", rounds]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(result: dict[str, Any], chart_name: str | None) -> str:
    """The whole Markdown report."""
    machine = result["machine"]
    settings = result["settings"]
    lines = [
        f"# Benchmark results, {result['date']}",
        "",
        f"Run from {result['started_at']} to {result['finished_at']} "
        f"({result['wall_minutes']:.1f} min), repo revision `{machine['git']}`.",
        "",
        "## Machine",
        "",
        f"- nproc: {machine['nproc']}",
        f"- CPU: {machine['cpu_model']}",
        f"- memory: {machine['memory']}, kernel {machine['kernel']}",
        f"- Python: {machine['python']} ({machine['python_implementation']})",
        f"- pinning: {settings['pinning']}",
        "",
        "| package | version |",
        "|---|---|",
        *(f"| {name} | {version} |" for name, version in machine["versions"].items()),
        "",
        "## Settings",
        "",
        f"- rounds: {settings['rounds']}, measured run: {settings['duration_s']:g} s, "
        f"warm-up: {settings['warmup_s']:g} s before each run, a fresh server per run",
        "- wrk: `wrk -t1 -c<connections> -d<duration> --latency` (keep-alive), "
        "64 connections unless stated",
        "- configurations, one worker process each, access logs off:",
        "",
        "| configuration | command |",
        "|---|---|",
        *(f"| {name} | `{command}` |" for name, command in result["configurations"].items()),
        "",
        "## How to read the tables",
        "",
        "Each cell is the median over the rounds with the spread (min–max) in brackets. "
        "`×base` is the ratio of that median to the baseline's median from this same run "
        "(the bold row: uvicorn-worker, or gthread for the WSGI workload). For req/s a ratio "
        "above 1 is better; for CPU µs/req, latency and RSS a ratio below 1 is better. "
        "CPU µs/req is the server tree's utime+stime during the measured run divided by the "
        "requests wrk completed; RSS is the sum of VmRSS over the server's process tree "
        "after the run. `errors` counts wrk socket errors plus non-2xx responses over all "
        "rounds. `other load %` is the highest share, over the rounds, of the server core's "
        "task time (user, system, steal; interrupts left out) not spent by the server's "
        "processes, i.e. other programs: figures from runs where it is high are disturbed.",
        "",
        f"Load average at the start: {settings['loadavg_start']}, at the end: "
        f"{settings['loadavg_end']}.",
        "",
    ]
    if chart_name:
        lines += [f"![req/s and CPU per request relative to the baseline]({chart_name})", ""]
    for workload in result["workloads"]:
        lines += [
            f"## {workload['name']}",
            "",
            f"{workload['description']}; {workload['connections']} connections; "
            f"baseline {workload['baseline']}.",
            "",
        ]
        if workload["configs"]:
            lines += workload_table(workload)
        else:
            lines.append("Nothing measured.")
        if workload["idle_connections"]:
            lines += [
                "",
                "`RSS idle MiB`: tree RSS with the idle connections open, before wrk; "
                "`RSS MiB`: after the wrk run alongside them; `idle open`: idle "
                "connections the server still held open after the run.",
            ]
        lines.append("")
    if result["skipped"]:
        lines += ["## Skipped", "", "| configuration | workload | reason |", "|---|---|---|"]
        for item in result["skipped"]:
            reason = item["reason"].replace("|", "\\|")
            lines.append(f"| {item['config']} | {item['workload']} | {reason} |")
        lines.append("")
    failures = [
        (workload["name"], name, failure)
        for workload in result["workloads"]
        for name, summary in workload["configs"].items()
        for failure in summary["failures"]
    ]
    if failures:
        lines += ["## Failed runs", "", "| workload | configuration | error |", "|---|---|---|"]
        for workload_name, name, failure in failures:
            error = failure.replace("|", "\\|")
            lines.append(f"| {workload_name} | {name} | {error} |")
        lines.append("")
    return "\n".join(lines)


def write(result: dict[str, Any], out_dir: Path, chart: Path | None) -> list[Path]:
    """Write <date>.json/.md and latest.json/.md into out_dir; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dated_json = out_dir / f"{result['date']}.json"
    dated_md = out_dir / f"{result['date']}.md"
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    dated_json.write_text(text)
    dated_md.write_text(markdown(result, None))
    latest_json = out_dir / "latest.json"
    latest_md = out_dir / "latest.md"
    shutil.copyfile(dated_json, latest_json)
    latest_md.write_text(markdown(result, chart.name if chart else None))
    return [dated_json, dated_md, latest_json, latest_md]
