"""The server configurations under test and the command line each one runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
KEEPALIVE_S = 120  # long, so the idle-connection workload's sockets stay open
BACKLOG = 2048
MAX_CONNECTIONS = 2048  # above the 1,000 idle + 64 active connections of the idle workload
APP_SPECS = {
    "asgi": "benchmarks.apps.asgi_apps:app",
    "wsgi": "benchmarks.apps.wsgi_apps:app",
}

CommandBuilder = Callable[[str, int], list[str]]


def _bin(name: str) -> str:
    """A console script of the interpreter running the suite (the benchmark venv)."""
    return str(Path(sys.executable).parent / name)


def _gunicorn(worker_class: str, *extra: str) -> CommandBuilder:
    def build(kind: str, port: int) -> list[str]:
        return [
            _bin("gunicorn"),
            "-w", "1",
            "-k", worker_class,
            *extra,
            "-b", f"{HOST}:{port}",
            "--keep-alive", str(KEEPALIVE_S),
            "--backlog", str(BACKLOG),
            "--worker-connections", str(MAX_CONNECTIONS),
            "--graceful-timeout", "5",
            "--log-level", "warning",
            "--no-control-socket",
            APP_SPECS[kind],
        ]  # fmt: skip

    return build


def _uvicorn(kind: str, port: int) -> list[str]:
    return [
        _bin("uvicorn"),
        "--workers", "1",
        "--loop", "uvloop",
        "--http", "httptools",
        "--no-access-log",
        "--lifespan", "on",
        "--host", HOST,
        "--port", str(port),
        "--timeout-keep-alive", str(KEEPALIVE_S),
        "--backlog", str(BACKLOG),
        "--log-level", "warning",
        APP_SPECS[kind],
    ]  # fmt: skip


def _granian(kind: str, port: int) -> list[str]:
    loop = ["--loop", "uvloop"] if kind == "asgi" else []
    return [
        _bin("granian"),
        "--interface", kind,
        "--workers", "1",
        *loop,
        "--no-access-log",
        "--host", HOST,
        "--port", str(port),
        "--backlog", str(BACKLOG),
        "--log-level", "warning",
        APP_SPECS[kind],
    ]  # fmt: skip


def _hypercorn(kind: str, port: int) -> list[str]:
    return [
        _bin("hypercorn"),
        "-w", "1",
        "-k", "uvloop",
        "-b", f"{HOST}:{port}",
        "--keep-alive", str(KEEPALIVE_S),
        "--backlog", str(BACKLOG),
        "--log-level", "warning",
        APP_SPECS[kind],
    ]  # fmt: skip


@dataclass(frozen=True)
class ServerConfig:
    """One server configuration: how to start it and how to tell whether it is installed."""

    name: str
    description: str
    kinds: tuple[str, ...]
    build: CommandBuilder
    import_check: str

    def command(self, kind: str, port: int) -> list[str]:
        """The server's command line (without the taskset prefix)."""
        return self.build(kind, port)

    def unavailable_reason(self) -> str | None:
        """None when the import check passes in the benchmark venv, else why not."""
        try:
            done = subprocess.run(
                [sys.executable, "-c", self.import_check],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            return f"`{self.import_check}` timed out"
        if done.returncode == 0:
            return None
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        return f"`{self.import_check}` failed: {last}"


CONFIGS: tuple[ServerConfig, ...] = (
    ServerConfig(
        name="gaw",
        description="gunicorn -w 1 -k gaw.UvloopWorker",
        kinds=("asgi", "wsgi"),
        build=_gunicorn("gaw.UvloopWorker"),
        import_check="import gaw; gaw.UvloopWorker",
    ),
    ServerConfig(
        name="uvicorn-worker",
        description="gunicorn -w 1 -k uvicorn_worker.UvicornWorker (uvloop + httptools)",
        kinds=("asgi",),
        build=_gunicorn("uvicorn_worker.UvicornWorker"),
        import_check="import uvicorn_worker, uvloop, httptools",
    ),
    ServerConfig(
        name="gunicorn-asgi",
        description="gunicorn -w 1 -k asgi --http-parser fast --asgi-loop uvloop (gunicorn_h1c)",
        kinds=("asgi",),
        build=_gunicorn("asgi", "--http-parser", "fast", "--asgi-loop", "uvloop"),
        import_check="import gunicorn.workers.gasgi, gunicorn_h1c, uvloop",
    ),
    ServerConfig(
        name="uvicorn",
        description="uvicorn --workers 1 --loop uvloop --http httptools --no-access-log",
        kinds=("asgi",),
        build=_uvicorn,
        import_check="import uvicorn, uvloop, httptools",
    ),
    ServerConfig(
        name="granian",
        description="granian --interface asgi|wsgi --workers 1 (asgi: --loop uvloop)",
        kinds=("asgi", "wsgi"),
        build=_granian,
        import_check="import granian",
    ),
    ServerConfig(
        name="hypercorn",
        description="hypercorn -w 1 -k uvloop",
        kinds=("asgi",),
        build=_hypercorn,
        import_check="import hypercorn, uvloop",
    ),
    ServerConfig(
        name="gthread",
        description="gunicorn -w 1 -k gthread --threads 4",
        kinds=("wsgi",),
        build=_gunicorn("gthread", "--threads", "4"),
        import_check="import gunicorn.workers.gthread",
    ),
)

CONFIGS_BY_NAME = {config.name: config for config in CONFIGS}
