"""Describe the machine, the interpreter and the installed versions of every peer."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import nginx

PEERS = (
    "gunicorn-async-workers",
    "gunicorn",
    "gunicorn-h1c",
    "uvicorn",
    "uvicorn-worker",
    "granian",
    "hypercorn",
    "uvloop",
    "httptools",
    "websockets",
    "h2",
    "matplotlib",
)


def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else ""


def cpu_model() -> str:
    """The first `model name` in /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    """MemTotal from /proc/meminfo, in GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def versions() -> dict[str, str]:
    """Installed version of each peer package (or 'not installed'), plus nginx's, h2load's
    and wrk's."""
    found: dict[str, str] = {}
    for name in PEERS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["nginx"] = nginx.version()
    h2load = _command_output(["h2load", "--version"])  # "h2load nghttp2/1.52.0"
    found["h2load"] = h2load.removeprefix("h2load ") if h2load else "not installed"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    except FileNotFoundError:  # a WebSocket-only run needs no wrk (its load is wsload)
        found["wrk"] = "not installed"
        return found
    first = (wrk.stdout + wrk.stderr).strip().splitlines()
    found["wrk"] = first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"
    return found


def git_revision(repo: Path) -> str:
    """The repo's HEAD commit (with -dirty), or 'no commit yet'."""
    head = _command_output(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    if head in ("", "unknown"):
        return "no commit yet"
    dirty = _command_output(["git", "-C", str(repo), "status", "--porcelain"])
    return head + ("-dirty" if dirty else "")


def describe(repo: Path) -> dict[str, Any]:
    """Everything the report prints about where the figures come from."""
    return {
        "nproc": _command_output(["nproc", "--all"]) or str(os.cpu_count()),
        "cpu_model": cpu_model(),
        "memory": memory_total(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "git": git_revision(repo),
        "versions": versions(),
    }
