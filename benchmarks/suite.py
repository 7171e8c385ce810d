"""Run the rounds: check each server once, then measure every configuration per workload."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import corestat, h2load, loadgen, probe, proctree, wsload
from benchmarks.idle import IdleConnectionError, IdleConnections
from benchmarks.server_process import RunningServer, ServerStartError
from benchmarks.servers import HOST, ServerConfig
from benchmarks.workloads import Workload

START_STOP_OVERHEAD_S = 1.0  # rough, for the time estimate only

Log = Callable[[str], None]
LoadResult = loadgen.WrkResult | wsload.WsResult | h2load.H2loadResult
# what a failed run raises: the server, a load generator or the socket layer
RUN_ERRORS = (ServerStartError, loadgen.WrkError, wsload.WsLoadError, h2load.H2loadError, OSError)


def server_protocol(workload: Workload) -> str:
    """The protocol a workload's server is started for: "h2" (its HTTP/2 command), else
    "http" (HTTP/1.1; the WebSocket workloads upgrade from it)."""
    return "h2" if workload.protocol == "h2" else "http"


@dataclass(frozen=True)
class Settings:
    """What to run and how."""

    configs: tuple[ServerConfig, ...]
    workloads: tuple[Workload, ...]
    rounds: int
    duration_s: float
    warmup_s: float
    server_cpu: int | None
    client_cpu: int | None
    raw_dir: Path
    # all configurations of a workload at once on the server core (see `measure_together`)
    contended: bool = False


def pairs(settings: Settings) -> list[tuple[ServerConfig, Workload]]:
    """Every (configuration, workload) whose app kind the configuration serves."""
    return [
        (config, workload)
        for workload in settings.workloads
        for config in settings.configs
        if workload.serves(config)
    ]


def estimate_s(runnable: int, settings: Settings) -> float:
    """Rough wall-clock time of the measured part (contended: one run per workload and round)."""
    per_run = settings.duration_s + settings.warmup_s + START_STOP_OVERHEAD_S
    runs = len(settings.workloads) if settings.contended else runnable
    return runs * settings.rounds * per_run


def preflight(settings: Settings, log: Log) -> dict[tuple[str, str], str]:
    """Start each configuration once per app kind and probe every workload's endpoint.

    Returns the skip reason for each (configuration, workload) that cannot be measured.
    """
    skipped: dict[tuple[str, str], str] = {}
    for config in settings.configs:
        mine = [w for w in settings.workloads if w.serves(config)]
        if not mine:
            continue
        reason = config.unavailable_reason()
        if reason is not None:
            for workload in mine:
                skipped[(config.name, workload.name)] = f"not available: {reason}"
            log(f"  {config.name}: skipped, {reason}")
            continue
        for kind, protocol in sorted({(w.kind, server_protocol(w)) for w in mine}):
            of_kind = [w for w in mine if w.kind == kind and server_protocol(w) == protocol]
            shown = kind if protocol == "http" else f"{kind}, {protocol}"
            if protocol == "h2" and (missing := h2load.unavailable_reason()) is not None:
                for workload in of_kind:
                    skipped[(config.name, workload.name)] = f"not available: {missing}"
                log(f"  {config.name} ({shown}): skipped, {missing}")
                continue
            suffix = "" if protocol == "http" else f"-{protocol}"
            log_path = settings.raw_dir / "logs" / f"preflight-{config.name}-{kind}{suffix}.log"
            try:
                with RunningServer(config, kind, log_path, settings.server_cpu,
                                   protocol) as server:
                    took = server.wait_ready()
                    problems = {w.name: probe.problem(w, HOST, server.port) for w in of_kind}
            except ServerStartError as error:
                for workload in of_kind:
                    skipped[(config.name, workload.name)] = (
                        f"{shown} server did not start: {error}")
                log(f"  {config.name} ({shown}): skipped, did not start: {error}")
                continue
            for name, problem in problems.items():
                if problem is not None:
                    skipped[(config.name, name)] = f"wrong response: {problem}"
                    log(f"  {config.name} ({shown}) {name}: skipped, {problem}")
            log(f"  {config.name} ({shown}): ready in {took:.2f} s, probes done")
    return skipped


class Window:
    """The server tree's CPU time and the cores' task time over the measured window."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.pids: list[int] = []
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self.tasks: dict[int, float] = {}
        self.irq: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._tasks: dict[int, float] = {}
        self._irq: dict[int, float] = {}
        self._wall = 0.0

    def start(self) -> None:
        """Read the counters at the start of the measured run."""
        self._cpu = proctree.cpu_seconds(self.server.tree())
        self._tasks, self._irq = corestat.task_seconds(), corestat.irq_seconds()
        self._wall = time.monotonic()

    def end(self) -> None:
        """Read them again at its end and keep the differences."""
        self.pids = self.server.tree()
        after = proctree.cpu_seconds(self.pids)
        tasks, irq = corestat.task_seconds(), corestat.irq_seconds()
        self.wall_s = time.monotonic() - self._wall
        self.cpu_s = sum(after[pid] - self._cpu.get(pid, 0.0) for pid in after)
        self.tasks = {cpu: tasks[cpu] - self._tasks.get(cpu, 0.0) for cpu in tasks}
        self.irq = {cpu: irq[cpu] - self._irq.get(cpu, 0.0) for cpu in irq}


def _load(
    workload: Workload, server: RunningServer, window: Window, settings: Settings, stem: str
) -> LoadResult:
    """Warm up and run the measured load; `window` is read around the measured part."""
    if workload.protocol == "ws":
        # wsload warms up on its own connections, then says when the window starts and ends
        problem = probe.ws_problem(workload, HOST, server.port)
        if problem is not None:
            raise ServerStartError(f"WebSocket probe failed: {problem}")
        return wsload.run(
            HOST,
            server.port,
            workload.path,
            workload.connections,
            workload.ws_message_size,
            workload.ws_window,
            settings.duration_s,
            settings.warmup_s,
            settings.client_cpu,
            on_start=window.start,
            on_end=window.end,
            raw_path=settings.raw_dir / "wsload" / f"{stem}.txt",
        )
    url = f"http://{HOST}:{server.port}{workload.path}"
    if workload.protocol == "h2":
        # a separate warm-up run, as for wrk, so the window holds the measured run alone
        h2load.run(url, settings.warmup_s, workload.connections, workload.h2_streams,
                   settings.client_cpu)
        window.start()
        h2_result = h2load.run(
            url,
            settings.duration_s,
            workload.connections,
            workload.h2_streams,
            settings.client_cpu,
            raw_path=settings.raw_dir / "h2load" / f"{stem}.txt",
        )
        window.end()
        return h2_result
    script = workload.wrk_script()
    loadgen.run(url, settings.warmup_s, workload.connections, script, settings.client_cpu)
    window.start()
    result = loadgen.run(
        url,
        settings.duration_s,
        workload.connections,
        script,
        settings.client_cpu,
        raw_path=settings.raw_dir / "wrk" / f"{stem}.txt",
    )
    window.end()
    return result


def measure(config: ServerConfig, workload: Workload, round_no: int, settings: Settings) -> dict:
    """Start the server, warm up, run the load once and read the server tree's CPU time and RSS."""
    stem = f"{workload.name}-{config.name}-r{round_no}"
    record: dict[str, Any] = {"round": round_no, "ok": False}
    started = time.monotonic()
    log_path = settings.raw_dir / "logs" / f"{stem}.log"
    with RunningServer(config, workload.kind, log_path, settings.server_cpu,
                       server_protocol(workload)) as server:
        record["ready_s"] = round(server.wait_ready(), 3)
        idle: contextlib.AbstractContextManager[IdleConnections | None] = (
            IdleConnections(HOST, server.port, workload.idle_connections, workload.path)
            if workload.idle_connections
            else contextlib.nullcontext()
        )
        window = Window(server)
        with idle as connections:
            if connections is not None:
                record["rss_idle_kib"] = proctree.tree_rss_kib(server.pid)
            result = _load(workload, server, window, settings, stem)
            record["rss_kib"] = proctree.tree_rss_kib(server.pid)
            if connections is not None:
                record["idle_open_after"] = connections.still_open()
        if server.process.poll() is not None:
            raise ServerStartError(f"server exited during the run: {server.log_tail()}")
    _complete(record, window, result, workload, settings, window.cpu_s)
    record["wall_s"] = round(time.monotonic() - started, 2)
    return record


def _complete(
    record: dict[str, Any],
    window: Window,
    result: LoadResult,
    workload: Workload,
    settings: Settings,
    servers_cpu_s: float,
) -> None:
    """The figures of a finished run; `servers_cpu_s` is what every server measured at the
    same time used (only this one's, unless contended)."""
    cpu_s, wall = window.cpu_s, window.wall_s
    if result.requests == 0:
        raise loadgen.WrkError(f"the load generator completed no {workload.unit}")
    record.update(result.as_dict())
    record["core_task_pct"] = {
        str(cpu): round(100 * t / wall, 1) for cpu, t in window.tasks.items()
    }
    record["core_irq_pct"] = {str(cpu): round(100 * t / wall, 1) for cpu, t in window.irq.items()}
    if settings.server_cpu is not None:
        # task time on the server's core that the servers' processes did not use: other programs
        other = window.tasks.get(settings.server_cpu, 0.0) - servers_cpu_s
        record["other_load_on_server_core_pct"] = round(max(0.0, 100 * other / wall), 1)
    record.update(
        ok=True,
        processes=len(window.pids),
        cpu_s=round(cpu_s, 3),
        cpu_us_per_req=cpu_s * 1e6 / result.requests,
        rss_mib=record["rss_kib"] / 1024,
    )
    if "rss_idle_kib" in record:
        record["rss_idle_mib"] = record["rss_idle_kib"] / 1024


def measure_together(
    configs: list[ServerConfig], workload: Workload, round_no: int, settings: Settings
) -> dict[str, dict]:
    """Contended mode: every configuration's server at once, all on the server core, each
    under its own load generator on the client core, their measured windows overlapping.

    A shared machine whose cores slow down for seconds at a time moves one-after-another
    runs by a third, more than the differences being measured; here a slow spell slows all
    servers alike, and the scheduler shares the core among them, so the ratio of their
    throughputs is the ratio of the CPU work each does per message. Latencies include the
    wait for the core while the others run: compare them only between runs of one mode.

    Returns a record per configuration name; a failure of one run fails only its record.
    """
    records: dict[str, dict[str, Any]] = {c.name: {"round": round_no, "ok": False} for c in configs}
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        servers: dict[str, RunningServer] = {}
        for config in configs:
            log_path = settings.raw_dir / "logs" / f"{workload.name}-{config.name}-r{round_no}.log"
            servers[config.name] = stack.enter_context(
                RunningServer(config, workload.kind, log_path, settings.server_cpu,
                              server_protocol(workload))
            )
        for name, server in servers.items():
            records[name]["ready_s"] = round(server.wait_ready(), 3)
        windows = {name: Window(server) for name, server in servers.items()}
        results: dict[str, LoadResult] = {}

        def drive(name: str) -> None:
            stem = f"{workload.name}-{name}-r{round_no}"
            try:
                results[name] = _load(workload, servers[name], windows[name], settings, stem)
            except RUN_ERRORS as error:
                records[name]["error"] = str(error)

        threads = [threading.Thread(target=drive, args=(name,)) for name in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, server in servers.items():
            if name in results:
                records[name]["rss_kib"] = proctree.tree_rss_kib(server.pid)
            if server.process.poll() is not None:
                results.pop(name, None)
                records[name]["error"] = f"server exited during the run: {server.log_tail()}"
    all_cpu_s = sum(window.cpu_s for window in windows.values())
    wall_s = round(time.monotonic() - started, 2)  # the same for all: they ran together
    for name, result in results.items():
        try:
            _complete(records[name], windows[name], result, workload, settings, all_cpu_s)
        except loadgen.WrkError as error:
            records[name]["error"] = str(error)
        records[name]["wall_s"] = wall_s
    return records


def run(
    settings: Settings, skipped: dict[tuple[str, str], str], log: Log
) -> dict[str, dict[str, list[dict]]]:
    """All rounds: per workload, round r runs every configuration once (order rotated by r).

    Returns records[workload][config] = one record per round.
    """
    records: dict[str, dict[str, list[dict]]] = {}
    total = sum(1 for c, w in pairs(settings) if (c.name, w.name) not in skipped) * settings.rounds
    done = 0
    for workload in settings.workloads:
        names = [
            c
            for c in settings.configs
            if workload.serves(c) and (c.name, workload.name) not in skipped
        ]
        records[workload.name] = {c.name: [] for c in names}
        for round_no in range(1, settings.rounds + 1):
            shift = (round_no - 1) % len(names) if names else 0
            if settings.contended and names:
                done += len(names)
                prefix = f"[{done}/{total}] {workload.name} r{round_no}"
                try:
                    together = measure_together(names[shift:] + names[:shift], workload,
                                                round_no, settings)
                except (ServerStartError, OSError) as error:
                    together = {c.name: {"round": round_no, "ok": False, "error": str(error)}
                                for c in names}
                for config in names:
                    record = together[config.name]
                    text = describe(record, workload.unit) if record["ok"] else (
                        f"FAILED {record.get('error', '')}")
                    log(f"{prefix} {config.name} (contended): {text}")
                    records[workload.name][config.name].append(record)
                continue
            for config in names[shift:] + names[:shift]:
                done += 1
                prefix = f"[{done}/{total}] {workload.name} r{round_no} {config.name}"
                try:
                    record = measure(config, workload, round_no, settings)
                except (*RUN_ERRORS, IdleConnectionError) as error:
                    record = {"round": round_no, "ok": False, "error": str(error)}
                    log(f"{prefix}: FAILED {error}")
                else:
                    log(f"{prefix}: {describe(record, workload.unit)}")
                records[workload.name][config.name].append(record)
    return records


def describe(record: dict, unit: str = "req") -> str:
    """One progress line for a finished measurement (unit: "req", or "msg" for WebSocket)."""
    def ms(key: str) -> str:
        return "n/a" if record.get(key) is None else f"{record[key]:.2f} ms"

    text = (
        f"{record['rps']:,.0f} {unit}/s, {record['cpu_us_per_req']:.1f} µs CPU/{unit}, "
        f"p50 {ms('p50_ms')}, p99 {ms('p99_ms')}, RSS {record['rss_mib']:.1f} MiB"
    )
    errors = sum(record["socket_errors"].values()) + record["non_2xx"]
    if "failed" in record:  # h2load's counts
        if record["failed"]:
            text += (f", FAILED REQUESTS: {record['failed']} failed, {record['errored']} "
                     f"errored, {record['timeout']} timeout")
    elif errors:
        text += f", {errors} errors {record['socket_errors']} non-2xx {record['non_2xx']}"
    if record.get("other_load_on_server_core_pct", 0) >= 10:
        text += f", other load on server core {record['other_load_on_server_core_pct']:.0f}%"
    if record.get("client_cpu_pct", 0) >= 90:
        text += f", load generator at {record['client_cpu_pct']:.0f}% of its core (may limit)"
    if "idle_open_after" in record:
        text += f", idle RSS {record['rss_idle_mib']:.1f} MiB, {record['idle_open_after']} open"
    return text
