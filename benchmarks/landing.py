"""The README's benchmark table, generated from one result file, and the check that the README
carries it as generated.

    python -m benchmarks.landing benchmarks/results/2026-12-05.json          # print it
    python -m benchmarks.landing benchmarks/results/2026-12-05.json --write README.md
    python -m benchmarks.landing --check README.md   # the README's table is its file's

The table sits in the README between two comment lines; the first names the result file, so
the check needs nothing else. Each cell is gaw's figure divided by the baseline's in the same
round, the median over the rounds and its interval: the report's per-round ratios
(`report.per_round`, `paired.median_range`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import GLANCE_METRICS, per_round, range_cell

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = "gaw"
BEGIN = "<!-- benchmark table: python -m benchmarks.landing {source} --write README.md -->"
END = "<!-- end of benchmark table -->"
BEGIN_RE = re.compile(r"<!-- benchmark table: python -m benchmarks\.landing (\S+) --write "
                      r"README\.md -->")


def _clock(stamp: str) -> str:
    return stamp[11:16]


def _zone(stamp: str) -> str:
    return "UTC" if stamp.endswith("+00:00") else f"UTC{stamp[19:]}"


def _connections(workloads: list[dict[str, Any]]) -> str:
    """How many connections the load kept open (and the idle ones some workloads add)."""
    counts = sorted({w["connections"] for w in workloads})
    text = " or ".join(f"{n:,}" for n in counts) + " keep-alive connections"
    idle = [f"{w['name']}: {w['idle_connections']:,} idle ones besides" for w in workloads
            if w.get("idle_connections")]
    return text + (f" ({'; '.join(idle)})" if idle else "")


def sentence(result: dict[str, Any]) -> str:
    """When, where and how the run was made, from its own record."""
    machine, settings = result["machine"], result["settings"]
    versions = machine["versions"]
    pinned = "server pinned to one CPU, load generator to the other"
    if not str(settings.get("pinning", "")).startswith("server process tree"):
        pinned = "unpinned"
    mode = ", every round's servers at once on one core (contended)" if settings.get(
        "contended") else ""
    coverage = ""
    gaw = [per_round(w, CONFIG)["rps"] for w in result["workloads"] if CONFIG in w["configs"]]
    shown = {round(100 * r.interval.coverage) for r in gaw if r and r.interval}
    if len(shown) == 1:
        coverage = f" with {shown.pop()} % probability"
        if settings["rounds"] < 6:
            coverage += (f" ({settings['rounds']} rounds: from the lowest ratio to the highest; "
                         "6 rounds or more give 95 %)")
    return (
        f"Run of {result['date']}, {_clock(result['started_at'])}–"
        f"{_clock(result['finished_at'])} {_zone(result['started_at'])}, revision "
        f"`{machine['git']}`, on {machine['nproc']} CPUs ({machine['cpu_model']}), Python "
        f"{machine['python']}, gunicorn {versions['gunicorn']}, uvicorn-worker "
        f"{versions['uvicorn-worker']}: one worker process per server, {pinned}, "
        f"{_connections(result['workloads'])}, {settings['rounds']} rounds of "
        f"{settings['duration_s']:g} s"
        f"{mode}. Each cell: gaw's figure ÷ the baseline's in the same round, the median over "
        f"the rounds, and in brackets the interval that holds the true median{coverage}. In "
        "the ws-* rows a request is one echoed WebSocket message."
    )


def table(result: dict[str, Any]) -> list[str]:
    """One row per workload gaw ran: the baseline, then req/s, CPU per request and p99."""
    lines = ["| workload | gaw ÷ | req/s | CPU per request | p99 latency |",
             "|---|---|---|---|---|"]
    for workload in result["workloads"]:
        if CONFIG not in workload["configs"] or workload["baseline"] == CONFIG:
            continue
        ratios = per_round(workload, CONFIG)
        cells = [range_cell(ratios[key]) for key in GLANCE_METRICS]
        lines.append(f"| {workload['name']} | {workload['baseline']} | " + " | ".join(cells)
                     + " |")
    return lines


def block(source: str) -> str:
    """The README's lines for the result file at `source` (relative to the repo root)."""
    result = json.loads((REPO_ROOT / source).read_text())
    return "\n".join([BEGIN.format(source=source), sentence(result), "", *table(result), "",
                      END])


def current(readme: str) -> tuple[str, str] | None:
    """The README's block and the result file it names, or None when it has none."""
    match = BEGIN_RE.search(readme)
    end = readme.find(END, match.end()) if match else -1
    if match is None or end < 0:
        return None
    return readme[match.start():end + len(END)], match.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.landing",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("result", nargs="?", help="result JSON, relative to the repo root")
    parser.add_argument("--write", type=Path, metavar="README",
                        help="replace the README's table with this result's")
    parser.add_argument("--check", type=Path, metavar="README",
                        help="exit 1 unless the README's table is what its result file gives")
    args = parser.parse_args(argv)
    if args.check:
        found = current(args.check.read_text())
        if found is None:
            print(f"{args.check}: no benchmark table", file=sys.stderr)
            return 1
        if found[0] != block(found[1]):
            print(f"{args.check}: the benchmark table is not what {found[1]} gives; run "
                  f"python -m benchmarks.landing {found[1]} --write {args.check}",
                  file=sys.stderr)
            return 1
        return 0
    if not args.result:
        parser.error("give a result file, or --check README")
    text = block(args.result)
    if args.write:
        readme = args.write.read_text()
        found = current(readme)
        if found is None:
            parser.error(f"{args.write} has no benchmark table to replace")
        args.write.write_text(readme.replace(found[0], text))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
