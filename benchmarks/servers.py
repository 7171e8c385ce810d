"""The server configurations under test and the command line each one runs."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import nginx

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
KEEPALIVE_S = 120  # long, so the idle-connection workload's sockets stay open
BACKLOG = 2048
MAX_CONNECTIONS = 2048  # above the 1,000 idle + 64 active connections of the idle workload
APP_SPECS = {
    "asgi": "benchmarks.apps.asgi_apps:app",
    "wsgi": "benchmarks.apps.wsgi_apps:app",
}

WSGI_THREADS = 4  # threads per worker for the WSGI app: gaw, gthread and granian alike
# Gunicorn's settings for cleartext HTTP/2 with prior knowledge (ours and Gunicorn 27's asgi
# worker read the same names); the loopback client is in forwarded_allow_ips by default, so it
# may speak h2c
GUNICORN_H2C = ("--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge")

# (app kind, port, the server's own scratch directory) -> its command line
CommandBuilder = Callable[[str, int, Path], list[str]]
# (app kind, port) -> the files, by name, written into that directory before the server starts
FilesBuilder = Callable[[str, int], dict[str, str]]
# the scratch directory as reports show a command line (each server gets a fresh one)
SHOWN_WORKDIR = Path("<workdir>")


def _bin(name: str) -> str:
    """A console script of the interpreter running the suite (the benchmark venv)."""
    return str(Path(sys.executable).parent / name)


def _gunicorn(worker_class: str, *extra: str, wsgi_extra: tuple[str, ...] = ()) -> CommandBuilder:
    """A Gunicorn command; wsgi_extra is added only when the app is the WSGI one."""

    def build(kind: str, port: int, workdir: Path) -> list[str]:
        return [
            _bin("gunicorn"),
            "-w", "1",
            "-k", worker_class,
            *extra,
            *(wsgi_extra if kind == "wsgi" else ()),
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


def _uvicorn(kind: str, port: int, workdir: Path) -> list[str]:
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


def _granian(kind: str, port: int, workdir: Path) -> list[str]:
    # ASGI: the uvloop event loop; WSGI: the app runs on a pool of blocking threads
    per_kind = ["--loop", "uvloop"] if kind == "asgi" else ["--blocking-threads", str(WSGI_THREADS)]
    return [
        _bin("granian"),
        "--interface", kind,
        "--workers", "1",
        *per_kind,
        "--no-access-log",
        "--host", HOST,
        "--port", str(port),
        "--backlog", str(BACKLOG),
        "--log-level", "warning",
        APP_SPECS[kind],
    ]  # fmt: skip


def _granian_h2(kind: str, port: int, workdir: Path) -> list[str]:
    # HTTP/2 only: on a plaintext bind granian then serves h2c with prior knowledge
    return [*_granian(kind, port, workdir), "--http", "2"]


def _hypercorn(kind: str, port: int, workdir: Path) -> list[str]:
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


def _nginx(kind: str, port: int, workdir: Path) -> list[str]:
    return nginx.command(workdir)


def _nginx_files(kind: str, port: int) -> dict[str, str]:
    return {nginx.CONF_NAME: nginx.conf(HOST, port, KEEPALIVE_S, BACKLOG, MAX_CONNECTIONS)}


class Role(enum.Enum):
    """What a configuration is to the comparison; the value is how reports label it."""

    PEER = "peer"  # a server an app runs on, compared with gaw
    STATIC_REFERENCE = "static reference"  # constant answers, no app: a floor, not a peer


@dataclass(frozen=True)
class ServerConfig:
    """One server configuration: how to start it and how to tell whether it is installed.

    `source`, when set, is a directory holding another revision of our packages (see
    `revision.py`): the server runs from there, with it first on the import path, and counts
    as `variant_of` wherever a workload names the configurations that run it.
    `only_workloads`, when set, names the workloads of its kinds it runs (none of the others).
    `files` are written into the server's scratch directory before it starts; `missing` says
    why it cannot run when that is not a Python import (a program outside the venv).
    `h2_build`, when set, is its command for the h2 workloads: cleartext HTTP/2 with prior
    knowledge on the same plaintext bind (without it, the configuration runs none of them).
    """

    name: str
    description: str
    kinds: tuple[str, ...]
    build: CommandBuilder
    import_check: str = ""
    source: Path | None = None
    variant_of: str | None = None
    only_workloads: tuple[str, ...] = ()
    files: FilesBuilder | None = None
    missing: Callable[[], str | None] | None = None
    role: Role = Role.PEER
    h2_build: CommandBuilder | None = None

    @property
    def label(self) -> str:
        """The name as reports show it: with the role unless a peer."""
        return self.name if self.role is Role.PEER else f"{self.name} ({self.role.value})"

    def command(self, kind: str, port: int, workdir: Path, protocol: str = "http") -> list[str]:
        """The server's command line (without the taskset prefix) for a workload of that
        protocol ("h2": its `h2_build`); `workdir` is its own scratch directory, holding its
        `files`."""
        if protocol == "h2":
            if self.h2_build is None:
                raise ValueError(f"{self.name} has no HTTP/2 command")
            return self.h2_build(kind, port, workdir)
        return self.build(kind, port, workdir)

    def cwd(self) -> Path:
        """Where the server starts: the repo root, or the other revision's directory."""
        return self.source or REPO_ROOT

    def env(self) -> dict[str, str]:
        """The server's environment: ours without settings that would change what it runs,
        and the import path that finds the benchmark apps (and, first, `source`)."""
        env = dict(os.environ)
        for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "PYTHONDEVMODE",
                     "PYTHONASYNCIODEBUG"):
            env.pop(name, None)
        paths = [str(self.source)] if self.source else []
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO_ROOT)])
        env["PWD"] = str(self.cwd())
        return env

    def unavailable_reason(self) -> str | None:
        """None when the import check passes in the benchmark venv (and `missing` finds
        nothing missing), else why not."""
        reason = self.missing() if self.missing is not None else None
        if reason is not None or not self.import_check:
            return reason
        try:
            done = subprocess.run(
                [sys.executable, "-c", self.import_check],
                cwd=self.cwd(),
                env=self.env(),
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
        description="gunicorn -w 1 -k gaw.UvloopWorker (WSGI: --threads 4; h2-*: "
        "--http-protocols h2,h1 --http2-cleartext prior-knowledge)",
        kinds=("asgi", "wsgi"),
        build=_gunicorn("gaw.UvloopWorker", wsgi_extra=("--threads", str(WSGI_THREADS))),
        import_check="import gaw; gaw.UvloopWorker",
        h2_build=_gunicorn("gaw.UvloopWorker", *GUNICORN_H2C),
    ),
    ServerConfig(
        name="gaw-asyncio",
        description="gunicorn -w 1 -k gaw.AsyncioWorker (stdlib asyncio + httptools; "
        "WSGI: --threads 4)",
        kinds=("asgi", "wsgi"),
        build=_gunicorn("gaw.AsyncioWorker", wsgi_extra=("--threads", str(WSGI_THREADS))),
        import_check="import gaw; gaw.AsyncioWorker",
    ),
    ServerConfig(
        name="gaw-h11",
        description="gunicorn -w 1 -k gaw.H11Worker (stdlib asyncio + h11; WSGI: --threads 4)",
        kinds=("asgi", "wsgi"),
        build=_gunicorn("gaw.H11Worker", wsgi_extra=("--threads", str(WSGI_THREADS))),
        import_check="import gaw; gaw.H11Worker",
    ),
    ServerConfig(
        name="uvicorn-worker",
        description="gunicorn -w 1 -k uvicorn_worker.UvicornWorker (uvloop + httptools; "
        "WebSocket: websockets sans-I/O)",
        kinds=("asgi",),
        build=_gunicorn("uvicorn_worker.UvicornWorker"),
        import_check="import uvicorn_worker, uvloop, httptools",
    ),
    ServerConfig(
        name="gunicorn-asgi",
        description="gunicorn -w 1 -k asgi --http-parser fast --asgi-loop uvloop (gunicorn_h1c; "
        "h2-*: --http-protocols h2,h1 --http2-cleartext prior-knowledge, the h2 baseline)",
        kinds=("asgi",),
        build=_gunicorn("asgi", "--http-parser", "fast", "--asgi-loop", "uvloop"),
        import_check="import gunicorn.workers.gasgi, gunicorn_h1c, uvloop",
        h2_build=_gunicorn("asgi", "--http-parser", "fast", "--asgi-loop", "uvloop",
                           *GUNICORN_H2C),
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
        description="granian --interface asgi|wsgi --workers 1 "
        "(ASGI: --loop uvloop; WSGI: --blocking-threads 4; h2-*: --http 2)",
        kinds=("asgi", "wsgi"),
        build=_granian,
        import_check="import granian",
        h2_build=_granian_h2,
    ),
    ServerConfig(
        name="hypercorn",
        description="hypercorn -w 1 -k uvloop (h2-*: the same command; it serves h2c with "
        "prior knowledge on a plaintext bind)",
        kinds=("asgi",),
        build=_hypercorn,
        import_check="import hypercorn, uvloop",
        # hypercorn serves h2c with prior knowledge (and HTTP/1.1) on any plaintext bind
        h2_build=_hypercorn,
    ),
    ServerConfig(
        name="gthread",
        description="gunicorn -w 1 -k gthread --threads 4 (WSGI only; the WSGI baseline)",
        kinds=("wsgi",),
        build=_gunicorn("gthread", "--threads", str(WSGI_THREADS)),
        import_check="import gunicorn.workers.gthread",
    ),
    ServerConfig(
        # one connection at a time, no keep-alive: slow with 64 connections, measured anyway
        name="sync",
        description="gunicorn -w 1 -k sync (WSGI only; one connection at a time, no keep-alive)",
        kinds=("wsgi",),
        build=_gunicorn("sync"),
        import_check="import gunicorn.workers.sync",
    ),
    ServerConfig(
        # the same nginx.conf for both kinds: it answers from constants, no app runs
        name="nginx",
        description="nginx, 1 worker process, `return 200 '<body>'` per location "
        "(plaintext and json only; the static reference, not a peer)",
        kinds=("asgi", "wsgi"),
        build=_nginx,
        files=_nginx_files,
        missing=nginx.unavailable_reason,
        only_workloads=nginx.WORKLOADS,
        role=Role.STATIC_REFERENCE,
    ),
)

CONFIGS_BY_NAME = {config.name: config for config in CONFIGS}


def revision_config(short: str, source: Path) -> ServerConfig:
    """gaw (`-k gaw.UvloopWorker`, as the `gaw` configuration) as of another revision, whose
    packages are in `source`; the import check fails unless gaw loads from there."""
    check = (
        "import pathlib, gaw, gunicorn_async_workers as p; gaw.UvloopWorker; "
        f"assert pathlib.Path(p.__file__).resolve().is_relative_to({str(source.resolve())!r}), "
        "'gaw loads from ' + p.__file__"
    )
    return ServerConfig(
        name=f"gaw@{short}",
        description=f"gunicorn -w 1 -k gaw.UvloopWorker as of revision {short} "
        "(WSGI: --threads 4)",
        kinds=("asgi", "wsgi"),
        build=_gunicorn("gaw.UvloopWorker", wsgi_extra=("--threads", str(WSGI_THREADS))),
        import_check=check,
        h2_build=_gunicorn("gaw.UvloopWorker", *GUNICORN_H2C),
        source=source,
        variant_of="gaw",
    )
