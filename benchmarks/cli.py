"""Parse the command line, run the suite and write the result files."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import corestat, machine, report, revision, suite
from benchmarks.servers import (
    CONFIGS,
    CONFIGS_BY_NAME,
    SHOWN_WORKDIR,
    Role,
    ServerConfig,
    revision_config,
)
from benchmarks.summary import summarise_workload
from benchmarks.workloads import WORKLOADS, WORKLOADS_BY_NAME, Workload

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
SERVER_CPU = 0
CLIENT_CPU = 1
SMOKE_DURATION_S = 2.0
# --only asgi / wsgi select every workload of that app kind; --only ws every WebSocket workload,
# --only h2 every HTTP/2 one
KINDS = ("asgi", "wsgi", "ws", "h2")


def parser() -> argparse.ArgumentParser:
    """The suite's options."""
    names = ", ".join(c.name for c in CONFIGS)
    loads = ", ".join(w.name for w in WORKLOADS)
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark gaw's worker against other ASGI/WSGI servers with wrk.",
        epilog=f"configurations: {names}. workloads: {loads}.",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAMES",
        help="comma-separated configuration and/or workload names to run, or `asgi`/`wsgi` "
        "for every workload of that kind, `ws` for the WebSocket ones, `h2` for the HTTP/2 "
        "ones (repeatable)",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds per workload (default 3)")
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measured run (default 10)"
    )
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (default 1)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="one ~2 s run of one configuration (and gaw@REV with --baseline-rev) and one "
        "workload; results go to results/raw/smoke/",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for the result files (default results/); raw output and server logs "
        "go to its raw/ folder",
    )
    p.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also run gaw as of git revision REV of this repo, as configuration gaw@REV, "
        "and make it every workload's baseline (the report's ratios are then ÷ gaw@REV)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to cores")
    p.add_argument(
        "--contended",
        action="store_true",
        help="run a workload's configurations at once, all on the server core, each under its "
        "own load generator (robust to a noisy machine; latencies not comparable)",
    )
    p.add_argument("--list", action="store_true", help="list configurations and workloads")
    p.add_argument(
        "--reinstall", action="store_true", help="reinstall the pinned peers and the project"
    )
    return p


def select(
    only: list[str],
) -> tuple[tuple[ServerConfig, ...], tuple[Workload, ...]]:
    """Apply --only: configuration, workload or kind (asgi, wsgi, ws, h2) names; none means
    all."""
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [
        n
        for n in names
        if n not in CONFIGS_BY_NAME and n not in WORKLOADS_BY_NAME and n not in KINDS
    ]
    if unknown:
        raise SystemExit(
            f"unknown name(s) {', '.join(unknown)}; configurations: "
            f"{', '.join(CONFIGS_BY_NAME)}; workloads: {', '.join(WORKLOADS_BY_NAME)}; "
            f"kinds: {', '.join(KINDS)}"
        )
    configs = tuple(c for c in CONFIGS if c.name in names) or CONFIGS
    workloads = (
        tuple(w for w in WORKLOADS if w.name in names or w.kind in names or w.protocol in names)
        or WORKLOADS
    )
    return configs, workloads


def runs_nginx(argv: list[str]) -> bool:
    """Whether the selection (`--only`) holds the nginx reference and a workload it answers:
    the bootstrap installs nginx only then."""
    configs, workloads = select(parser().parse_args(argv).only)
    return any(w.serves(c) for c in configs if c.name == "nginx" for w in workloads)


def runs_h2(argv: list[str]) -> bool:
    """Whether the selection (`--only`) holds an h2 workload: the bootstrap installs h2load
    only then."""
    _, workloads = select(parser().parse_args(argv).only)
    return any(w.protocol == "h2" for w in workloads)


def smoke_selection(
    configs: tuple[ServerConfig, ...], workloads: tuple[Workload, ...]
) -> tuple[tuple[ServerConfig, ...], tuple[Workload, ...]]:
    """The first available configuration (gaw first) and the first workload it serves; with
    another revision of gaw among the configurations, that one too, as the baseline."""
    other_revision = [c for c in configs if c.source is not None]
    for config in configs:
        if config.source is not None:
            continue
        reason = config.unavailable_reason()
        if reason is None:
            for workload in workloads:
                if workload.serves(config) and all(workload.serves(c) for c in other_revision):
                    return (config, *other_revision), (workload,)
        else:
            print(f"smoke: {config.name} unavailable ({reason})", flush=True)
    raise SystemExit("smoke: no available configuration serves the selected workloads")


def with_revision(
    configs: tuple[ServerConfig, ...], workloads: tuple[Workload, ...], other: ServerConfig
) -> tuple[tuple[ServerConfig, ...], tuple[Workload, ...]]:
    """`other` (gaw as of another revision) beside gaw, or last, and as every workload's
    baseline."""
    names = [c.name for c in configs]
    at = names.index("gaw") + 1 if "gaw" in names else len(configs)
    configs = (*configs[:at], other, *configs[at:])
    return configs, tuple(dataclasses.replace(w, baseline=other.name) for w in workloads)


def pinning(no_pin: bool) -> tuple[int | None, int | None, str]:
    """CPUs for the server and for wrk, plus a description for the report."""
    allowed = os.sched_getaffinity(0)
    if no_pin:
        return None, None, "off (--no-pin)"
    if not {SERVER_CPU, CLIENT_CPU} <= allowed:
        return None, None, f"off (CPUs {sorted(allowed)} lack {SERVER_CPU} and {CLIENT_CPU})"
    return (
        SERVER_CPU,
        CLIENT_CPU,
        f"server process tree on CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`), "
        f"wrk and the runner on CPU {CLIENT_CPU} (`taskset -c {CLIENT_CPU}`)",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _shown(path: Path) -> str:
    """path relative to the repo root when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _shown_command(config: ServerConfig, kind: str, protocol: str = "http") -> str:
    """The configuration's command line for that app kind (and "h2": for the HTTP/2
    workloads), without the venv's bin path."""
    command = " ".join(config.command(kind, 8000, SHOWN_WORKDIR, protocol))
    return command.replace(str(Path(sys.executable).parent) + "/", "")


def _commands(
    configs: tuple[ServerConfig, ...], workloads: tuple[Workload, ...]
) -> list[dict[str, str]]:
    """One command line per configuration and app kind measured, and one more for the HTTP/2
    workloads (kind "asgi, h2-*"); one in all for a reference, which runs no app (its command
    is the same for both kinds)."""
    rows: list[dict[str, str]] = []
    for config in configs:
        served = [w for w in workloads if w.serves(config)]
        kinds = [k for k in config.kinds if any(w.kind == k for w in served)]
        if not kinds:
            continue
        if config.role is Role.PEER:
            for kind in kinds:
                protocols = {suite.server_protocol(w) for w in served if w.kind == kind}
                rows += [{"config": config.name, "kind": kind if protocol == "http"
                          else f"{kind}, {protocol}-*",
                          "command": _shown_command(config, kind, protocol)}
                         for protocol in ("http", "h2") if protocol in protocols]
        else:
            rows.append({"config": config.name, "kind": f"none ({' and '.join(kinds)} workloads)",
                         "command": _shown_command(config, kinds[0])})
    return rows


def log(line: str) -> None:
    """Progress output."""
    print(line, flush=True)


def build_result(
    settings: suite.Settings,
    records: dict[str, dict[str, list[dict]]],
    skipped: dict[tuple[str, str], str],
    facts: dict[str, Any],
    started: dt.datetime,
    pin_text: str,
    loadavg_start: str,
    baseline_rev: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON document of a run (`baseline_rev`: the other revision of gaw, when one ran)."""
    finished = dt.datetime.now().astimezone()
    workloads = []
    for workload in settings.workloads:
        by_config = records.get(workload.name, {})
        workloads.append(
            {
                "name": workload.name,
                "description": workload.description,
                "kind": workload.kind,
                "path": workload.path,
                "method": workload.method,
                "protocol": workload.protocol,
                "unit": workload.unit,
                "connections": workload.connections,
                "idle_connections": workload.idle_connections,
                **(
                    {"message_size": workload.ws_message_size, "window": workload.ws_window}
                    if workload.protocol == "ws"
                    else {}
                ),
                **({"streams": workload.h2_streams} if workload.protocol == "h2" else {}),
                "baseline": workload.baseline,
                "configs": summarise_workload(
                    by_config, workload.baseline, bool(workload.idle_connections)
                ),
                "rounds": by_config,
            }
        )
    return {
        "date": started.date().isoformat(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "wall_minutes": (finished - started).total_seconds() / 60,
        "settings": {
            "rounds": settings.rounds,
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
            "pinning": pin_text,
            "contended": settings.contended,
            "loadavg_start": loadavg_start,
            "loadavg_end": corestat.loadavg(),
            "raw_dir": _shown(settings.raw_dir),
            **({"baseline_rev": baseline_rev} if baseline_rev else {}),
        },
        "machine": facts,
        # how the tables show a configuration that is no peer: "nginx (static reference)"
        "labels": {c.name: c.label for c in settings.configs if c.label != c.name},
        "configurations": {
            c.name: _shown_command(c, "asgi" if "asgi" in c.kinds else "wsgi")
            for c in settings.configs
            if any(w.serves(c) for w in settings.workloads)
        },
        # one command line per configuration and app kind measured in this run
        "commands": _commands(settings.configs, settings.workloads),
        "skipped": [
            {"config": config, "workload": workload, "reason": reason}
            for (config, workload), reason in skipped.items()
        ],
        "workloads": workloads,
    }


def main(argv: list[str]) -> int:
    """Run the suite; 0 when at least one measurement succeeded."""
    args = parser().parse_args(argv)
    if args.list:
        for config in CONFIGS:
            print(f"configuration {config.name:15} {config.description}")
        for workload in WORKLOADS:
            print(f"workload      {workload.name:15} {workload.description}")
        return 0
    if args.rounds < 1 or args.duration < 1 or args.warmup < 1:
        raise SystemExit("--rounds, --duration and --warmup must be at least 1")
    signal.signal(signal.SIGTERM, _interrupt)
    configs, workloads = select(args.only)
    export_dir: Path | None = None
    baseline_rev: dict[str, str] | None = None
    try:
        if args.baseline_rev:
            try:
                commit, short = revision.resolve(args.baseline_rev)
                export_dir = Path(tempfile.mkdtemp(prefix=f"gaw-baseline-rev-{short}-"))
                revision.export(commit, export_dir)
            except revision.RevisionError as error:
                raise SystemExit(f"--baseline-rev {args.baseline_rev}: {error}") from None
            other = revision_config(short, export_dir)
            configs, workloads = with_revision(configs, workloads, other)
            baseline_rev = {"rev": args.baseline_rev, "commit": commit, "name": other.name}
            log(f"{other.name}: gaw as of {commit}, exported to {export_dir}")
        return _run(args, configs, workloads, baseline_rev)
    finally:
        if export_dir is not None:
            shutil.rmtree(export_dir, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    configs: tuple[ServerConfig, ...],
    workloads: tuple[Workload, ...],
    baseline_rev: dict[str, str] | None,
) -> int:
    """Preflight, the rounds and the report; 0 when at least one measurement succeeded."""
    rounds, duration = args.rounds, args.duration
    out_dir = args.out or RESULTS
    if args.smoke:
        configs, workloads = smoke_selection(configs, workloads)
        rounds, duration = 1, SMOKE_DURATION_S
        out_dir = args.out or RESULTS / "raw" / "smoke"
    started = dt.datetime.now().astimezone()
    facts = machine.describe(REPO_ROOT)
    loadavg_start = corestat.loadavg()
    server_cpu, client_cpu, pin_text = pinning(args.no_pin)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    # raw output beside the results when they go elsewhere; by default in results/raw/
    raw_root = out_dir / "raw" if args.out else RESULTS / "raw"
    settings = suite.Settings(
        configs=configs,
        workloads=workloads,
        rounds=rounds,
        duration_s=duration,
        warmup_s=args.warmup,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        raw_dir=raw_root / started.strftime("%Y-%m-%d_%H%M%S"),
        contended=args.contended,
    )
    log(f"machine: {facts['nproc']} CPUs, {facts['cpu_model']}, Python {facts['python']}")
    log(f"pinning: {pin_text}")
    log("preflight: starting each configuration once and probing every workload")
    try:
        skipped = suite.preflight(settings, log)
        runnable = sum(1 for c, w in suite.pairs(settings) if (c.name, w.name) not in skipped)
        log(
            f"measuring {runnable} configuration×workload pairs × {rounds} rounds, "
            f"about {suite.estimate_s(runnable, settings) / 60:.1f} min"
        )
        records = suite.run(settings, skipped, log)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    result = build_result(settings, records, skipped, facts, started, pin_text, loadavg_start,
                          baseline_rev)
    chart_path = None
    try:
        from benchmarks import chart

        chart_path = chart.draw(result, out_dir / "latest.png")
    except Exception as error:  # the numbers matter more than the picture
        log(f"chart failed: {type(error).__name__}: {error}")
    written = report.write(result, out_dir, chart_path)
    if chart_path is not None:
        written.append(chart_path)
    log("")
    for workload in result["workloads"]:
        if workload["configs"]:
            log(f"{workload['name']} (baseline {workload['baseline']})")
            for line in [*report.workload_table(workload, result),
                         *report.failed_runs_note(workload)]:
                log(line)
            log("")
    for item in result["skipped"]:
        log(f"skipped {item['config']} / {item['workload']}: {item['reason']}")
    log("wrote " + ", ".join(_shown(p) for p in written))
    measured = any(
        r.get("ok") for by_config in records.values() for rs in by_config.values() for r in rs
    )
    return 0 if measured else 1
