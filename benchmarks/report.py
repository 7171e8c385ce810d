"""Write a run's results as JSON and Markdown (dated files plus latest.*)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.paired import PairedRatios, median_range, paired, round_ratios
from benchmarks.summary import IDLE_METRICS, METRICS
from benchmarks.workloads import WORKLOADS_BY_NAME

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


def shown_name(result: dict[str, Any], name: str) -> str:
    """A configuration's name as the tables show it: with its role when it is no peer (e.g.
    "nginx (static reference)"), from the run's `labels`."""
    return (result.get("labels") or {}).get(name, name)


def _is_ws(workload: dict[str, Any]) -> bool:
    """A WebSocket workload, where one "request" is one echoed message."""
    return workload.get("protocol") == "ws"


def _is_h2(workload: dict[str, Any]) -> bool:
    """An HTTP/2 workload, driven by h2load."""
    return workload.get("protocol") == "h2"


def labels(workload: dict[str, Any]) -> dict[str, str]:
    """Column label per metric key; msg/s and CPU µs/msg for the WebSocket workloads."""
    names = {key: label for key, (label, _, _) in {**METRICS, **IDLE_METRICS}.items()}
    if _is_ws(workload):
        names.update(rps="msg/s", cpu_us_per_req="CPU µs/msg")
    return names


@dataclass(frozen=True)
class Target:
    """A goal for one configuration on one workload: median ratio `relation` threshold.

    The ratio is to the workload's peer baseline (uvicorn-worker, gthread: `Workload.baseline`
    in workloads.py, whatever baseline a run chose), or to the configuration named in `versus`.
    """

    workload: str
    config: str
    metric: str
    relation: str  # ">=", "<=" or "<"
    threshold: float
    versus: str | None = None
    stretch: bool = False


# the goals of the issues that added the WSGI workloads and the WebSocket workloads, and of
# issue 23
TARGETS: tuple[Target, ...] = (
    Target("wsgi-plaintext", "gaw", "rps", ">=", 3.0),
    Target("wsgi-plaintext", "gaw", "cpu_us_per_req", "<=", 0.33),
    Target("wsgi-plaintext", "gaw", "p99_ms", "<", 1.0),
    Target("wsgi-plaintext", "gaw", "rps", ">=", 0.5, versus="granian", stretch=True),
    # WebSocket echo: messages/s ≥ 1.3× uvicorn-worker's (websockets) and ≥ Gunicorn 27's asgi
    Target("ws-echo-64", "gaw", "rps", ">=", 1.3),
    Target("ws-echo-64", "gaw", "rps", ">=", 1.0, versus="gunicorn-asgi"),
    Target("ws-echo-16k", "gaw", "rps", ">=", 1.3),
    Target("ws-echo-16k", "gaw", "rps", ">=", 1.0, versus="gunicorn-asgi"),
    # issue 23: WSGI at Rust-server speed, and the ASGI lead held beyond the noise
    *(goal for workload in ("wsgi-plaintext", "wsgi-json") for goal in (
        Target(workload, "gaw", "rps", ">=", 0.9, versus="granian"),
        Target(workload, "gaw", "rps", ">=", 6.0),
        Target(workload, "gaw", "cpu_us_per_req", "<=", 1.2, versus="granian"),
        Target(workload, "gaw", "p99_ms", "<=", 1.0, versus="granian"))),
    Target("wsgi-echo-16k", "gaw", "rps", ">=", 0.8, versus="granian"),
    Target("wsgi-large-1m", "gaw", "rps", ">=", 0.8, versus="granian"),
    *(goal for workload in ("plaintext", "json") for goal in (
        Target(workload, "gaw", "rps", ">=", 1.3, versus="granian"),
        Target(workload, "gaw", "rps", ">=", 1.4),
        Target(workload, "gaw", "cpu_us_per_req", "<=", 0.7))),
)


def target_versus(workload: dict[str, Any], target: Target) -> str:
    """The configuration a target's ratio divides by: `versus`, else the workload's peer
    baseline (a run against another revision of gaw has that revision as its baseline)."""
    if target.versus:
        return target.versus
    known = WORKLOADS_BY_NAME.get(workload["name"])
    return known.baseline if known else workload["baseline"]


def _target_ratio(workload: dict[str, Any], target: Target) -> float | None:
    """The median ratio a target is about, or None when either side was not measured."""
    configs = workload["configs"]
    mine = configs.get(target.config)
    if mine is None:
        return None
    versus = target_versus(workload, target)
    if versus == workload["baseline"]:
        return mine["ratios"].get(target.metric)
    theirs = configs.get(versus)
    a = mine["figures"].get(target.metric)
    b = theirs["figures"].get(target.metric) if theirs else None
    return a["median"] / b["median"] if a and b and b["median"] else None


def target_rounds(workload: dict[str, Any], target: Target
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The round records of a target's two sides (its configuration, then the baseline or
    `versus`), or None when either side has none in this workload."""
    rounds = workload.get("rounds") or {}
    versus = target_versus(workload, target)
    if target.config not in rounds or versus not in rounds:
        return None
    return rounds[target.config], rounds[versus]


def _target_paired(workload: dict[str, Any], target: Target) -> PairedRatios | None:
    """The per-round ratios a target is about (None when a side has no round records)."""
    sides = target_rounds(workload, target)
    return paired(*sides, target.metric) if sides else None


def _passes(value: float, target: Target) -> bool:
    return {
        ">=": value >= target.threshold,
        "<=": value <= target.threshold,
        "<": value < target.threshold,
    }[target.relation]


def interval_cell(rounds: PairedRatios | None) -> str:
    if rounds is None:
        return "n/a"
    interval = rounds.interval
    if interval is None:
        return f"{_ratio(rounds.median)} (n={len(rounds.ratios)}: too few for an interval)"
    return (f"{_ratio(rounds.median)} [{interval.low:.2f}–{interval.high:.2f}, "
            f"{100 * interval.coverage:.0f} %] (n={len(rounds.ratios)})")


def target_verdict(ratio: float | None, rounds: PairedRatios | None, target: Target) -> str:
    """Met when the ratio of medians passes and, given rounds enough for an interval, the
    whole interval of the per-round ratios' median passes too ("within noise" when only part
    of it does)."""
    if ratio is None:
        return "not measured"
    if not _passes(ratio, target):
        return "**not met**"
    if rounds is None or rounds.interval is None:
        return "met (no interval)"
    interval = rounds.interval
    bound = interval.low if target.relation == ">=" else interval.high
    return "met" if _passes(bound, target) else "**within noise**"


def targets_table(result: dict[str, Any]) -> list[str]:
    """One row per target whose workload was run: the ratio of medians, the median of the
    per-round ratios with its interval, and whether the target is met."""
    by_name = {w["name"]: w for w in result["workloads"]}
    lines = []
    for target in TARGETS:
        workload = by_name.get(target.workload)
        versus = target_versus(workload, target) if workload else ""
        if workload is None or not {target.config, versus} <= set(workload["configs"]):
            continue  # the run left out the workload or a side of the target
        ratio = _target_ratio(workload, target)
        rounds = _target_paired(workload, target)
        kind = "stretch" if target.stretch else "target"
        label = labels(workload)[target.metric]
        lines.append(
            f"| {target.workload} | {target.config} | {label} ÷ {versus} | "
            f"{kind}: {target.relation} {target.threshold:g}× | {_ratio(ratio)} | "
            f"{interval_cell(rounds)} | {target_verdict(ratio, rounds, target)} |"
        )
    if not lines:
        return []
    return [
        "| workload | configuration | ratio | goal | measured | per round: median "
        "[interval] | |",
        "|---|---|---|---|---|---|---|",
        *lines,
    ]


GLANCE_METRICS = ("rps", "cpu_us_per_req", "p99_ms")


def per_round(workload: dict[str, Any], name: str) -> dict[str, PairedRatios | None]:
    """For each glance metric: the ratios of `name` to the workload's baseline within each
    round, their median and its interval (`median_range`: 95 % from 6 rounds on, below that
    the range of the ratios with the coverage it has)."""
    rounds = workload.get("rounds") or {}
    mine, theirs = rounds.get(name, []), rounds.get(workload["baseline"], [])
    return {key: median_range(round_ratios(mine, theirs, key)) for key in GLANCE_METRICS}


def range_cell(rounds: PairedRatios | None) -> str:
    """`median× [low–high]` of per-round ratios; the median alone without an interval."""
    if rounds is None:
        return "n/a"
    if rounds.interval is None:
        return _ratio(rounds.median)
    return f"{_ratio(rounds.median)} [{rounds.interval.low:.2f}–{rounds.interval.high:.2f}]"


def coverage_cell(rounds: PairedRatios | None) -> str:
    """How many rounds were paired and how sure the interval is."""
    if rounds is None:
        return "n/a"
    if rounds.interval is None:
        return f"{len(rounds.ratios)} (no interval)"
    return f"{len(rounds.ratios)} ({100 * rounds.interval.coverage:.0f} %)"


def per_round_table(result: dict[str, Any]) -> list[str]:
    """Every configuration's per-round ratios to its workload's baseline, with intervals."""
    lines = [
        "| workload | configuration | ÷ | req/s | CPU µs/req | p99 | rounds (coverage) |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload in result["workloads"]:
        baseline = workload["baseline"]
        for name in workload["configs"]:
            if name == baseline:
                continue
            ratios = per_round(workload, name)
            cells = [range_cell(ratios[key]) for key in GLANCE_METRICS]
            shown = shown_name(result, name)
            lines.append(f"| {workload['name']} | {shown} | {baseline} | " + " | ".join(cells)
                         + f" | {coverage_cell(ratios['rps'])} |")
    return lines if len(lines) > 2 else []



def glance_tables(result: dict[str, Any]) -> list[str]:
    """Ratios to the baseline at a glance: per baseline, a configuration × workload table whose
    cells are req/s × / CPU µs/req × / p99 ×."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for workload in result["workloads"]:
        if workload["configs"]:
            groups.setdefault(workload["baseline"], []).append(workload)
    lines: list[str] = []
    for baseline, workloads in groups.items():
        order = list(result.get("configurations", {}))
        names: list[str] = []
        for workload in workloads:
            names += [n for n in workload["configs"] if n not in names]
        names.sort(key=lambda n: order.index(n) if n in order else len(order))
        caption = f"Baseline **{baseline}**; each cell: req/s × / CPU µs/req × / p99 ×."
        if any(_is_h2(w) for w in workloads):
            caption += " The h2-* columns are cleartext HTTP/2 (h2load, prior knowledge)."
        if any(_is_ws(w) for w in workloads):
            caption += (
                " In the ws-* columns a request is one echoed WebSocket message: "
                "msg/s × / CPU µs/msg × / p99 ×."
            )
        lines += [
            caption,
            "",
            "| configuration | " + " | ".join(w["name"] for w in workloads) + " |",
            "|---|" + "---|" * len(workloads),
        ]
        for name in names:
            cells = []
            for workload in workloads:
                summary = workload["configs"].get(name)
                cells.append(
                    "–"
                    if summary is None
                    else " / ".join(_ratio(summary["ratios"].get(k)) for k in GLANCE_METRICS)
                )
            shown = f"**{name}**" if name == baseline else shown_name(result, name)
            lines.append(f"| {shown} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def workload_table(workload: dict[str, Any], result: dict[str, Any] | None = None) -> list[str]:
    """The Markdown table of one workload: median (min–max) and ratio per figure; the names
    as `result` labels them."""
    keys = list(METRICS) + (list(IDLE_METRICS) if workload["idle_connections"] else [])
    names = labels(workload)
    header = ["configuration"]
    for key in keys:
        header += [names[key], "×base"]
    header += ["failed (errored)" if _is_h2(workload) else "errors", "other load %", "rounds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in workload["configs"].items():
        row = [f"**{name}**" if name == workload["baseline"] else shown_name(result or {}, name)]
        for key in keys:
            row += [_figure(summary["figures"], key), _ratio(summary["ratios"].get(key))]
        rounds = f"{summary['rounds_ok']}/{summary['rounds_ok'] + summary['rounds_failed']}"
        other = summary.get("other_load_max_pct")
        row += [_errors_cell(workload, summary), "n/a" if other is None else f"{other:.0f}",
                rounds]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _errors_cell(workload: dict[str, Any], summary: dict[str, Any]) -> str:
    """wrk's or wsload's error count; for h2 workloads h2load's failed requests with the
    errored ones among them, in bold and flagged when there are any."""
    if not _is_h2(workload):
        return str(summary["errors"])
    failed, errored = summary.get("failed", 0), summary.get("errored", 0)
    if not failed:
        return f"{failed} ({errored})"
    return f"**{failed} ({errored}) FAILED**"


def failed_runs_note(workload: dict[str, Any]) -> list[str]:
    """The h2 rounds that had failed requests, one line each (none: nothing)."""
    lines = []
    for name, summary in workload["configs"].items():
        for bad in summary.get("failed_rounds", []):
            lines.append(
                f"- **{name}, round {bad['round']}: {bad['failed']} failed requests** "
                f"({bad['errored']} errored, {bad['timeout']} timed out): its figures count "
                "only the requests that completed"
            )
    return ["", *lines] if lines else []


def _commands_table(result: dict[str, Any]) -> list[str]:
    """configuration | app | command, one row per configuration and app kind."""
    commands = result.get("commands") or [
        {"config": name, "kind": "", "command": command}
        for name, command in result["configurations"].items()
    ]
    return [
        "| configuration | app | command |",
        "|---|---|---|",
        *(f"| {shown_name(result, c['config'])} | {c['kind']} | `{c['command']}` |"
          for c in commands),
    ]


def _h2_settings(result: dict[str, Any]) -> list[str]:
    """How the HTTP/2 workloads were driven, when the run had any."""
    h2 = [w for w in result["workloads"] if _is_h2(w)]
    if not h2:
        return []
    return [
        f"- HTTP/2 workloads (h2-*): `h2load -t1 -c{h2[0]['connections']} "
        f"-m{h2[0].get('streams', '?')} -D<duration>` on the client core, cleartext HTTP/2 "
        "with prior knowledge (h2load's default for an http:// URL; the servers run their "
        "h2c command, see the `asgi, h2-*` rows below), after a warm-up run of its own; "
        "req/s is h2load's; p50/p99 are the nearest-rank percentiles of the per-request "
        "times h2load writes with `--log-file` (time until the end of the response, answered "
        "requests only; h2load's own summary gives only min/max/mean/sd, kept in the JSON as "
        "`mean_ms`, `max_ms`, `sd_ms`), `n/a` when that log was empty; `failed (errored)` is "
        "h2load's failed requests, summed over the rounds, with the errored ones (stream or "
        "connection errors, timeouts) among them. A run with failed requests is flagged",
    ]


def _ws_settings(result: dict[str, Any]) -> list[str]:
    """How the WebSocket workloads were driven, when the run had any."""
    ws = [w for w in result["workloads"] if _is_ws(w)]
    if not ws:
        return []
    window = ws[0].get("window", "?")
    return [
        "- WebSocket workloads (ws-*): `benchmarks/wsload.py`, one asyncio + uvloop process on "
        f"the client core, {ws[0]['connections']} connections, {window} binary messages in "
        "flight on each (every echo sends the next), no extension offered (no compression); "
        "msg/s counts the echoes completed in the measured window (after its own warm-up), "
        "p50/p99 are the round trips of every 16th message, CPU µs/msg is the server tree's "
        "CPU time over that window per echoed message",
    ]


def _reference_note(result: dict[str, Any], workload: dict[str, Any]) -> list[str]:
    """What a reference row of the workload's table is, when it has one."""
    references = [shown_name(result, n) for n in workload["configs"] if shown_name(result, n) != n]
    if not references:
        return []
    return [
        "",
        f"{', '.join(references)}: not a peer. nginx runs no app: it answers with the same "
        "body and content-type from a constant in its nginx.conf (`return 200`), so its CPU "
        "µs/req is about the least a server spends on this request on this machine, the floor "
        "the app servers' figures sit above.",
    ]


def _baseline_words(result: dict[str, Any]) -> str:
    """Which configuration the run's ratios divide by."""
    other = result["settings"].get("baseline_rev")
    if other:
        return f"{other['name']}, gaw as of the other revision, for every workload"
    words = ("uvicorn-worker for the ASGI workloads, gthread for the WSGI ones, since "
             "uvicorn-worker serves no WSGI")
    if any(_is_h2(w) for w in result["workloads"]):
        words += (", and gunicorn-asgi (Gunicorn 27's own HTTP/2) for the h2-* ones, since "
                  "uvicorn-worker serves no HTTP/2 either")
    return words


def _revision_settings(result: dict[str, Any]) -> list[str]:
    """What the other revision of gaw was, when the run had one (`--baseline-rev`)."""
    other = result["settings"].get("baseline_rev")
    if not other:
        return []
    return [
        f"- **{other['name']}** (`--baseline-rev {other['rev']}`): gaw as of commit "
        f"`{other['commit']}`, its packages exported with `git archive` and first on that "
        "server's import path; the apps, the suite and every installed dependency are this "
        f"checkout's. It is every workload's baseline: the ratios are ÷ {other['name']}",
    ]


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
        *(
            [
                "- **contended**: in each round a workload's configurations ran at the same "
                "time, all pinned to the server core, each under its own load generator on the "
                "client core; a slow spell of the machine slows them all alike and the core is "
                "shared among them, so the ratios are those of the CPU work per request. "
                "Absolute req/s are a share of the core, and latencies include waiting for "
                "the core: compare them only with other contended runs"
            ]
            if settings.get("contended")
            else []
        ),
        *_revision_settings(result),
        "- wrk: `wrk -t1 -c<connections> -d<duration> --latency` (keep-alive), "
        "64 connections unless stated",
        *_ws_settings(result),
        *_h2_settings(result),
        "- configurations, one worker process each, access logs off:",
        "",
        *_commands_table(result),
        "",
        "## How to read the tables",
        "",
        "Each cell is the median over the rounds with the spread (min–max) in brackets. "
        "`×base` is the ratio of that median to the baseline's median from this same run "
        f"(the bold row: {_baseline_words(result)}). For req/s a ratio "
        "above 1 is better; for CPU µs/req, latency and RSS a ratio below 1 is better. "
        "CPU µs/req is the server tree's utime+stime during the measured run divided by the "
        "requests wrk completed; RSS is the sum of VmRSS over the server's process tree "
        "after the run. `errors` counts wrk socket errors plus non-2xx responses over all "
        "rounds (for ws-*: connections the server closed and wrong echoes). "
        "`other load %` is the highest share, over the rounds, of the server core's "
        "task time (user, system, steal; interrupts left out) not spent by the server's "
        "processes, i.e. other programs: figures from runs where it is high are disturbed.",
        "",
        f"Load average at the start: {settings['loadavg_start']}, at the end: "
        f"{settings['loadavg_end']}.",
        "",
    ]
    if chart_name:
        lines += [
            f"![req/s, CPU per request and p99 relative to the baseline]({chart_name})",
            "",
        ]
    glance = glance_tables(result)
    if glance:
        lines += ["## Ratios at a glance", "", *glance]
    paired_lines = per_round_table(result)
    if paired_lines:
        lines += [
            "## Per-round ratios",
            "",
            "Each configuration's figures divided by the baseline's of the same round (the two "
            "runs of a round are close in time, so a slow spell of the machine moves both), "
            "the median of those ratios and, in brackets, the interval that holds the true "
            "median with the coverage given in the last column whatever the ratios' "
            "distribution (order statistics, as in the sign test): at least 95 % from 6 rounds "
            "on; with fewer rounds the whole range of the ratios, which holds it with "
            "1 − 2/2ⁿ (75 % for 3 rounds). In the ws-* rows a request is one echoed message.",
            "",
            *paired_lines,
            "",
        ]
    targets = targets_table(result)
    if targets:
        lines += [
            "## Targets",
            "",
            "Goals from the issues that added the WSGI and the WebSocket workloads, and "
            "from issue 23 (WSGI at Rust-server speed, the ASGI lead). "
            "`measured` is the ratio of the medians from this run; `per round` is the "
            "median of the ratios within each round (both runs of a round are close in "
            "time, so a slow spell of the machine moves them together) with the interval "
            "that holds the true median with at least the stated probability whatever the "
            "ratios' distribution (order statistics, as in the sign test; it needs 6 "
            "rounds or more). A target is met when the measured ratio passes and so does "
            "that whole interval; `within noise` when the ratio passes but the interval "
            "reaches past the goal.",
            "",
            *targets,
            "",
        ]
    for workload in result["workloads"]:
        lines += [
            f"## {workload['name']}",
            "",
            f"{workload['description']}; {workload['connections']} connections; "
            f"baseline {workload['baseline']}.",
            "",
        ]
        if workload["configs"]:
            lines += workload_table(workload, result)
        else:
            lines.append("Nothing measured.")
        lines += _reference_note(result, workload)
        lines += failed_runs_note(workload)
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
