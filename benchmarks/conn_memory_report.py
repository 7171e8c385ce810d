"""Summarise and write a `benchmarks.conn_memory` run: medians, spreads, ratios, Markdown, JSON."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

from benchmarks.paired import paired

METRICS = ("rss", "pss", "uss")
BASELINE = "uvicorn-worker"
KIND_TITLES = {
    "http": "HTTP keep-alive, idle after one request",
    "ws": "WebSocket, no extension",
    "ws-deflate": "WebSocket with permessage-deflate",
}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def summarise(records: list[dict[str, Any]], kinds: tuple[str, ...] | list[str],
              configs: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per kind and server: each metric's median bytes per connection with its min–max, the
    ratio of medians to the baseline's and the per-round (paired) ratios' median and spread."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in kinds:
        of_kind = [r for r in records if r["kind"] == kind]
        by_config = {name: [r for r in of_kind if r["config"] == name] for name in configs}
        base = by_config.get(BASELINE, [])
        summary[kind] = {}
        for name, mine in by_config.items():
            ok = [r for r in mine if r["ok"]]
            entry: dict[str, Any] = {"rounds_ok": len(ok), "rounds": len(mine),
                                     "negotiated": sorted({r.get("negotiated", "") for r in ok})}
            for metric in METRICS:
                key = f"{metric}_per_conn"
                entry[metric] = _spread([r[key] for r in ok])
                theirs = [r[key] for r in base if r["ok"]]
                if name != BASELINE and ok and theirs and statistics.median(theirs) > 0:
                    entry[f"{metric}_ratio"] = (statistics.median(r[key] for r in ok)
                                                / statistics.median(theirs))
                    rounds = paired(mine, base, key)
                    if rounds is not None:
                        entry[f"{metric}_round_ratios"] = _spread(list(rounds.ratios))
            summary[kind][name] = entry
    return summary


def verdict(entry: dict[str, Any]) -> str:
    """Whether a server's RSS per connection is no larger than the baseline's: by the ratio
    of medians and, beside it, by every round's paired ratio."""
    ratio = entry.get("rss_ratio")
    if ratio is None:
        return "n/a"
    rounds = entry.get("rss_round_ratios")
    if ratio > 1:
        return "**larger**"
    if rounds is not None and rounds["max"] > 1:
        return "no larger (not in every round)"
    return "no larger"


def _bytes(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "n/a"
    text = f"{spread['median']:,.0f}"
    if spread["n"] > 1:
        text += f" ({spread['min']:,.0f}–{spread['max']:,.0f})"
    return text


def _ratio(entry: dict[str, Any], metric: str) -> str:
    ratio = entry.get(f"{metric}_ratio")
    return "**base**" if ratio is None else f"{ratio:.2f}×"


def tables(result: dict[str, Any]) -> list[str]:
    """One Markdown table per kind of connection."""
    lines: list[str] = []
    summary = result["summary"]
    connections = result["settings"]["connections"]
    for kind, by_config in summary.items():
        lines += [f"### {KIND_TITLES[kind]} ({connections:,} connections)", "",
                  "| server | RSS B/conn | ×base | PSS B/conn | ×base | USS B/conn | ×base "
                  "| rounds | RSS vs uvicorn-worker |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, entry in by_config.items():
            cells = [name if name != BASELINE else f"**{name}**"]
            for metric in METRICS:
                cells += [_bytes(entry[metric]), _ratio(entry, metric)]
            cells += [f"{entry['rounds_ok']}/{entry['rounds']}",
                      "" if name == BASELINE else verdict(entry)]
            lines.append("| " + " | ".join(cells) + " |")
        negotiated = {e for entry in by_config.values() for e in entry["negotiated"] if e}
        if negotiated:
            lines += ["", "Negotiated: " + "; ".join(
                f"{name}: `{', '.join(entry['negotiated'])}`" for name, entry in by_config.items()
                if entry["negotiated"])]
        lines.append("")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The whole report."""
    facts, settings = result["machine"], result["settings"]
    versions = ", ".join(f"{name} {version}" for name, version in facts["versions"].items()
                         if name not in ("wrk", "nginx") and version != "not installed")
    lines = [
        f"# Memory per idle connection, {result['date']}", "",
        f"- command: `{result['command']}`",
        f"- started {result['started_at']}, finished {result['finished_at']}",
        f"- machine: {facts['nproc']} CPUs, {facts['cpu_model']}, {facts['memory']}, "
        f"kernel {facts['kernel']}, {facts['python_implementation']} {facts['python']}",
        f"- revision: {facts['git']}",
        f"- versions: {versions}",
        f"- {settings['connections']:,} idle connections per measurement, {settings['rounds']} "
        f"rounds (interleaved, rotated order), opened at most {settings['rate']:,.0f}/s with "
        f"{settings['concurrency']} in flight after {settings['warmup_connections']} warm-up "
        f"connections; `worker_connections` {settings['worker_connections']:,}; "
        f"RLIMIT_NOFILE {settings['fd_limit']:,}; pinning: {settings['pinning']}",
        "",
        "Bytes per connection: the growth of the worker process's memory "
        "(`/proc/<pid>/smaps_rollup`: RSS; PSS, shared pages divided among the processes "
        "mapping them; USS, pages only the worker maps) while it holds the connections, "
        "divided by their number. Median over the rounds, min–max in brackets; ×base is the "
        f"ratio of medians to **{BASELINE}**, measured in the same run. The verdict column "
        "says whether the RSS median is no larger than the baseline's and whether every "
        "round's own ratio agrees.", "",
        *tables(result),
        "## Server commands", "",
        *(f"- {name}: `{command}`" for name, command in result["commands"].items()), "",
    ]
    failed = [r for r in result["records"] if not r["ok"]]
    if failed:
        lines += ["## Failed measurements", ""]
        lines += [f"- round {r['round']} {r['kind']} {r['config']}: {r.get('error')}"
                  for r in failed]
        lines.append("")
    return "\n".join(lines)


def write(result: dict[str, Any], out_dir: Path, stamp: str) -> list[Path]:
    """`<stamp>.json` and `.md` in out_dir, copied to latest.json and latest.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stamp}.json", out_dir / f"{stamp}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown(result))
    shutil.copyfile(json_path, out_dir / "latest.json")
    shutil.copyfile(md_path, out_dir / "latest.md")
    return [json_path, md_path, out_dir / "latest.json", out_dir / "latest.md"]
