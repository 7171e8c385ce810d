"""Measure a worker's memory per idle connection: HTTP keep-alive, WebSocket, WebSocket+deflate.

    python -m benchmarks.conn_memory                     # 10,000 connections, 3 rounds
    python -m benchmarks.conn_memory --connections 2000 --rounds 5 --only gaw,uvicorn-worker,ws

For each server (one Gunicorn worker process each, as the suite starts them, with
`--worker-connections` raised to N + 100) and each kind of idle connection, a fresh server
starts pinned to core 0; the runner, on core 1, opens and closes a few connections of that kind
(so one-time costs such as lazy imports are not counted per connection), reads the worker's
memory, opens N connections at a bounded rate (`benchmarks.idle_hold`), waits until the worker
holds them all (its open file descriptors) and its RSS settles, reads its memory again, then
closes them all and stops the server by its pid. Bytes per connection = the growth ÷ N, for
RSS, PSS and USS (`/proc/<pid>/smaps_rollup`). Rounds are interleaved, in a rotated order;
the report gives medians with their spread, and ratios to uvicorn-worker measured in the same
run. Results: `benchmarks/results/conn-memory/` (Markdown and JSON, dated, plus latest.*).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import resource
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import conn_memory_report, machine, proctree
from benchmarks.idle_hold import KINDS, HoldError, IdleHold, new_loop
from benchmarks.server_process import RunningServer, ServerStartError, taskset
from benchmarks.servers import CONFIGS_BY_NAME, HOST, SHOWN_WORKDIR, ServerConfig

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "conn-memory"
SERVERS = ("gaw", "gaw-asyncio", "gaw-h11", "uvicorn-worker")
BASELINE = "uvicorn-worker"
# Gunicorn-based ASGI configurations: one arbiter and one worker, whose memory is measured.
MEASURABLE = (*SERVERS, "gunicorn-asgi")
SERVER_CPU, CLIENT_CPU = 0, 1
WARMUP_CONNECTIONS = 50  # opened and closed before the baseline reading
EXTRA_WORKER_CONNECTIONS = 100  # `worker_connections` = N + this: the cap never binds
SETTLE_S = 5.0  # the most to wait for the worker's RSS to stop moving
SETTLE_KIB = 16  # RSS is settled when two readings 0.25 s apart differ by at most this
FD_WAIT_S = 60.0  # the most to wait for the worker to hold (or drop) the connections

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to run and how."""

    configs: tuple[ServerConfig, ...]
    kinds: tuple[str, ...]
    connections: int
    rounds: int
    rate: float
    concurrency: int
    server_cpu: int | None
    raw_dir: Path


def parser() -> argparse.ArgumentParser:
    """The module's options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.conn_memory",
        description="Memory per idle connection (HTTP keep-alive, WebSocket, WebSocket with "
        "permessage-deflate) of each server's one worker process.",
        epilog=f"servers: {', '.join(MEASURABLE)} (default: {', '.join(SERVERS)}); "
        f"kinds: {', '.join(KINDS)}.",
    )
    p.add_argument("--connections", type=int, default=10_000,
                   help="idle connections per measurement (default 10000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--only", action="append", default=[], metavar="NAMES",
                   help="comma-separated server and/or kind names (repeatable)")
    p.add_argument("--rate", type=float, default=2000.0,
                   help="connections opened per second at most (default 2000)")
    p.add_argument("--concurrency", type=int, default=64,
                   help="requests or handshakes in flight at most while opening (default 64)")
    p.add_argument("--out", type=Path, help=f"directory for the result files (default "
                   f"{RESULTS.relative_to(REPO_ROOT)})")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and client to cores")
    p.add_argument("--reinstall", action="store_true",
                   help="reinstall the benchmark venv's pinned peers and the project")
    return p


def select(only: list[str]) -> tuple[tuple[ServerConfig, ...], tuple[str, ...]]:
    """Apply --only: server and kind names; none of one sort means all of that sort."""
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in MEASURABLE and n not in KINDS]
    if unknown:
        raise SystemExit(f"unknown name(s) {', '.join(unknown)}; servers: "
                         f"{', '.join(MEASURABLE)}; kinds: {', '.join(KINDS)}")
    servers = tuple(n for n in MEASURABLE if n in names) or SERVERS
    kinds = tuple(k for k in KINDS if k in names) or KINDS
    return tuple(CONFIGS_BY_NAME[n] for n in servers), kinds


def with_worker_connections(config: ServerConfig, count: int) -> ServerConfig:
    """The configuration with Gunicorn's `--worker-connections` set to `count`."""
    build = config.build

    def rebuilt(kind: str, port: int, workdir: Path) -> list[str]:
        command = build(kind, port, workdir)
        at = command.index("--worker-connections")
        return [*command[:at + 1], str(count), *command[at + 2:]]

    return dataclasses.replace(config, build=rebuilt)


def raise_fd_limit(connections: int) -> int:
    """Lift RLIMIT_NOFILE's soft limit so the runner holds `connections` and so does the
    server it starts (which inherits it); exit with what to do when the hard limit is lower."""
    wanted = connections + WARMUP_CONNECTIONS + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < connections + 2 * EXTRA_WORKER_CONNECTIONS:
        raise SystemExit(f"RLIMIT_NOFILE's hard limit is {hard}, below --connections "
                         f"{connections} + {2 * EXTRA_WORKER_CONNECTIONS}: lower --connections "
                         "or raise the hard limit (ulimit -Hn)")
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every 0.1 s; whether it held within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _steady_fds(pid: int, at_most: int) -> int:
    """The worker's descriptor count once it is at most `at_most` and has not moved for
    0.5 s (connections closed by then, the readiness probe's included); bounded by
    FD_WAIT_S."""
    deadline = time.monotonic() + FD_WAIT_S
    last, same = proctree.fd_count(pid), 0
    while time.monotonic() < deadline and (last > at_most or same < 5):
        await asyncio.sleep(0.1)
        now = proctree.fd_count(pid)
        same = same + 1 if now == last else 0
        last = now
    return last


async def _settled_memory(pid: int) -> dict[str, int]:
    """The worker's memory once its RSS stops moving (or after SETTLE_S)."""
    deadline = time.monotonic() + SETTLE_S
    last = proctree.memory_kib(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = proctree.memory_kib(pid)
        if not now or abs(now["rss"] - last.get("rss", 0)) <= SETTLE_KIB:
            return now
        last = now
    return last


async def _hold_and_measure(kind: str, port: int, worker: int, settings: Settings,
                            record: dict[str, Any]) -> None:
    """Warm up, read the memory, hold N connections, read it again, close them."""
    loop = asyncio.get_running_loop()
    count = settings.connections

    def hold(n: int) -> IdleHold:
        return IdleHold(loop, kind, HOST, port, n, settings.rate, settings.concurrency)

    fds_idle = proctree.fd_count(worker)
    warm = hold(min(WARMUP_CONNECTIONS, count))
    try:
        await warm.open()
    finally:
        await warm.close()
    fds_idle = await _steady_fds(worker, fds_idle)
    record["before_kib"] = before = await _settled_memory(worker)
    held = hold(count)
    try:
        record["open_s"] = round(await held.open(), 3)
        record["opened"] = held.opened
        holds_all = await _until(lambda: proctree.fd_count(worker) >= fds_idle + count,
                                 FD_WAIT_S)
        record["worker_fds"] = proctree.fd_count(worker) - fds_idle
        if not holds_all:
            raise HoldError(f"the worker holds {record['worker_fds']} of the {count} "
                            f"connections after {FD_WAIT_S:.0f} s")
        record["held_kib"] = after = await _settled_memory(worker)
        record["still_open"] = held.held
        record["negotiated"] = held.negotiated
        record["pings_answered"] = held.pings
        if held.held != count or held.lost or held.unexpected:
            raise HoldError(f"{held.lost} connections closed by the server while held, "
                            f"{held.unexpected} unexpected messages")
    finally:
        record["opened"] = held.opened
        await held.close()
    await _until(lambda: proctree.fd_count(worker) <= fds_idle, FD_WAIT_S)
    record["after_close_kib"] = proctree.memory_kib(worker)
    for key in ("rss", "pss", "uss"):
        record[f"{key}_per_conn"] = round((after[key] - before[key]) * 1024 / count)
    record["ok"] = True


def measure(config: ServerConfig, kind: str, number: int, settings: Settings) -> dict[str, Any]:
    """One server, one kind of connection, one round: a record for the JSON."""
    record: dict[str, Any] = {"config": config.name, "kind": kind, "round": number,
                              "connections": settings.connections, "ok": False}
    server_config = with_worker_connections(
        config, settings.connections + EXTRA_WORKER_CONNECTIONS)
    log_path = settings.raw_dir / "logs" / f"{config.name}-{kind}-{number}.log"
    try:
        with RunningServer(server_config, "asgi", log_path, settings.server_cpu) as server:
            server.wait_ready()
            workers = proctree.children(server.pid)
            if len(workers) != 1:
                raise ServerStartError(f"expected one worker process, found {workers}")
            record["worker_pid"] = worker = workers[0]
            loop = new_loop()
            try:
                loop.run_until_complete(
                    _hold_and_measure(kind, server.port, worker, settings, record))
            finally:
                loop.close()
    except (ServerStartError, HoldError, OSError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def run(settings: Settings, log: Log) -> list[dict[str, Any]]:
    """Every round: each kind, each server in an order rotated by the round."""
    records = []
    configs = list(settings.configs)
    for number in range(1, settings.rounds + 1):
        shift = (number - 1) % len(configs)
        order = configs[shift:] + configs[:shift]
        for kind in settings.kinds:
            for config in order:
                record = measure(config, kind, number, settings)
                records.append(record)
                if record["ok"]:
                    log(f"round {number} {kind:10} {config.name:15} RSS "
                        f"{record['rss_per_conn']:>7,} B/conn  PSS {record['pss_per_conn']:>7,}"
                        f"  USS {record['uss_per_conn']:>7,}  (opened in "
                        f"{record['open_s']:.1f} s)")
                else:
                    log(f"round {number} {kind:10} {config.name:15} failed: {record['error']}")
    return records


def _shown_command(config: ServerConfig, connections: int) -> str:
    command = with_worker_connections(config, connections + EXTRA_WORKER_CONNECTIONS)
    line = " ".join(command.command("asgi", 8000, SHOWN_WORKDIR))
    return line.replace(str(Path(sys.executable).parent) + "/", "")


def main(argv: list[str]) -> int:
    """Run the measurements and write the result files; 0 when every one succeeded."""
    args = parser().parse_args(argv)
    if args.connections < 1 or args.rounds < 1 or args.rate <= 0 or args.concurrency < 1:
        raise SystemExit("--connections, --rounds, --rate and --concurrency must be positive")
    configs, kinds = select(args.only)
    started = dt.datetime.now().astimezone()
    fd_limit = raise_fd_limit(args.connections)
    allowed = os.sched_getaffinity(0)
    pinned = not args.no_pin and {SERVER_CPU, CLIENT_CPU} <= allowed
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CPU})
    stamp = started.strftime("%Y-%m-%d-%H%M")
    settings = Settings(
        configs=configs, kinds=kinds, connections=args.connections, rounds=args.rounds,
        rate=args.rate, concurrency=args.concurrency,
        server_cpu=SERVER_CPU if pinned else None,
        # server logs beside the results when they go elsewhere; by default in results/raw/
        raw_dir=(args.out / "raw" if args.out else BENCH_DIR / "results" / "raw" / "conn-memory")
        / stamp,
    )
    facts = machine.describe(REPO_ROOT)
    print(f"machine: {facts['nproc']} CPUs, {facts['cpu_model']}, Python {facts['python']}; "
          f"{args.connections} connections, {args.rounds} rounds", flush=True)
    try:
        records = run(settings, lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("interrupted; servers stopped", flush=True)
        return 130
    finished = dt.datetime.now().astimezone()
    result = {
        "date": started.date().isoformat(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.conn_memory " + shlex.join(argv),
        "settings": {
            "connections": args.connections, "rounds": args.rounds, "rate": args.rate,
            "concurrency": args.concurrency, "warmup_connections": WARMUP_CONNECTIONS,
            "worker_connections": args.connections + EXTRA_WORKER_CONNECTIONS,
            "fd_limit": fd_limit, "kinds": list(kinds),
            "pinning": (f"server on CPU {SERVER_CPU} ({' '.join(taskset(SERVER_CPU))}), "
                        f"client on CPU {CLIENT_CPU}") if pinned else "off",
            "baseline": BASELINE,
            "raw_dir": str(settings.raw_dir.relative_to(REPO_ROOT)
                           if settings.raw_dir.is_relative_to(REPO_ROOT) else settings.raw_dir),
        },
        "machine": facts,
        "commands": {c.name: _shown_command(c, args.connections) for c in configs},
        "records": records,
        "summary": conn_memory_report.summarise(records, kinds, [c.name for c in configs]),
    }
    out_dir = args.out or RESULTS
    written = conn_memory_report.write(result, out_dir, stamp)
    print("", flush=True)
    for line in conn_memory_report.tables(result):
        print(line, flush=True)
    print("wrote " + ", ".join(str(p) for p in written), flush=True)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    if not {"-h", "--help"} & set(sys.argv[1:]):
        from benchmarks import bootstrap

        bootstrap.prepare_and_reexec(sys.argv[1:], module="benchmarks.conn_memory", tools=False)
    sys.exit(main([a for a in sys.argv[1:] if a != "--reinstall"]))
