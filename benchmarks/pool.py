"""The targets judged over the rounds of several runs at once.

One run's interval is wide when the machine drifts; several runs of the same code, each
round still paired within its own run, narrow it. Pooling every run made, not a chosen few,
is what keeps the answer honest, so this prints which runs went in (time, revision, rounds,
mode), and refuses a run given twice. Runs one after another and contended runs measure
different things (a core of its own, a shared core) and are never pooled together.

    python -m benchmarks.pool RUN1.json RUN2.json ... [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.paired import PairedRatios, median_interval, round_ratios
from benchmarks.report import (
    TARGETS,
    Target,
    interval_cell,
    labels,
    target_rounds,
    target_verdict,
    target_versus,
)


def pooled_ratios(results: list[dict[str, Any]], target: Target) -> PairedRatios | None:
    """The target's per-round ratios of every run that measured both sides, pooled (each
    round paired within its own run); None when no run did."""
    ratios: list[float] = []
    for result in results:
        for workload in result["workloads"]:
            sides = target_rounds(workload, target) if workload["name"] == target.workload else None
            if sides:
                ratios += round_ratios(*sides, target.metric)
    return median_interval(ratios) if ratios else None


def pooled_report(results: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Markdown: the runs pooled, then one row per target that any of them measured."""
    modes = {bool(r["settings"].get("contended")) for r in results}
    if len(modes) > 1:
        raise ValueError("contended runs and runs one after another measure different "
                         "things: pool each kind on its own")
    starts = [r["started_at"] for r in results]
    if len(set(starts)) < len(starts):
        raise ValueError("the same run is given twice: its rounds would count twice")
    lines = ["| run | revision | mode | rounds × s |", "|---|---|---|---|"]
    for name, result in zip(names, results, strict=True):
        settings = result["settings"]
        lines.append(
            f"| {name} ({result['started_at']}) | `{result['machine']['git']}` | "
            f"{'contended' if settings.get('contended') else 'one after another'} | "
            f"{settings['rounds']} × {settings['duration_s']:g} |")
    lines += ["", "| workload | configuration | ratio | goal | pooled per round: median "
              "[interval] | |", "|---|---|---|---|---|---|"]
    for target in TARGETS:
        rounds = pooled_ratios(results, target)
        if rounds is None:
            continue
        workload = next(w for r in results for w in r["workloads"]
                        if w["name"] == target.workload)
        versus = target_versus(workload, target)
        kind = "stretch" if target.stretch else "target"
        lines.append(
            f"| {target.workload} | {target.config} | {labels(workload)[target.metric]} ÷ "
            f"{versus} | {kind}: {target.relation} {target.threshold:g}× | "
            f"{interval_cell(rounds)} | {target_verdict(rounds.median, rounds, target)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="result JSON files")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    results = [json.loads(path.read_text()) for path in args.results]
    try:
        text = "\n".join(pooled_report(results, [path.name for path in args.results])) + "\n"
    except ValueError as exc:
        parser.error(str(exc))
    print(text, end="")
    if args.out:
        command = " ".join(["python -m benchmarks.pool", *map(str, args.results)])
        args.out.write_text(f"# Runs pooled\n\n`{command}`\n\n{text}")


if __name__ == "__main__":
    main()
