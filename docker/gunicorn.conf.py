"""The container image's default gunicorn.conf.py: Gunicorn settings from the environment.

| variable | setting | default |
| --- | --- | --- |
| `APP_MODULE` | the app (`module:variable`) when no app is given on the command line | `main:app` |
| `PORT` | `bind = 0.0.0.0:$PORT` (IPv4; `BIND` replaces the whole bind list) | `8000` |
| `BIND` | `bind`, comma-separated (`[::]:8000`, `unix:/run/app.sock`) | from `PORT` |
| `WEB_CONCURRENCY` | `workers` | the container's CPU quota, rounded down, at least 1 |
| `THREADS` | `threads` (WSGI apps run on this many threads per worker) | `1` |
| `TIMEOUT` | `timeout` (whole seconds, as every timeout here) | `30` |
| `GRACEFUL_TIMEOUT` | `graceful_timeout` | `30` |
| `KEEPALIVE` | `keepalive` | `5` |
| `LOG_LEVEL` | `loglevel` | `info` |
| `ACCESS_LOG` | `accesslog`: `-` or `on` for stdout, `off` for none, else a file path | `off` |

The worker count defaults from the CPU quota of the container's cgroup (cgroup v2
`cpu.max`, or cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the lowest along the
cgroup's path), never from the host's core count: a container limited to 2 CPUs on a
64-core host gets 2 workers, not 64. Without a quota, it is the number of CPUs the process
may run on (its affinity mask, which honours a cpuset). Every worker runs one event loop,
which uses at most one core, so more workers than CPUs would only be throttled.

Anything else Gunicorn reads itself: `GUNICORN_CMD_ARGS`, `FORWARDED_ALLOW_IPS`, and our
own options as `GAW_<NAME>` (see the project's README). A value that is not valid stops
Gunicorn at start with a message naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def _cgroup_dirs(mount: Path, relative: str) -> list[Path]:
    """The process's cgroup directory and its ancestors up to `mount`, innermost first.

    Inside a container with its own cgroup namespace the process's path is `/` and the
    mount is its own cgroup; without one, the host's path is joined under the mount, and a
    path that does not exist there (another namespace's view) falls back to the mount.
    """
    parts = [p for p in relative.split("/") if p]
    dirs = [mount.joinpath(*parts[:n]) for n in range(len(parts), 0, -1)]
    return [d for d in dirs if d.is_dir()] + [mount]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")  # "max 100000" or "150000 100000"
    if not text:
        return None
    quota, _, period = text.partition(" ")
    return _ratio(quota, period or "100000")


def _v1_quota(directory: Path) -> float | None:
    quota = _read(directory / "cpu.cfs_quota_us")  # -1: no quota
    return _ratio(quota or "-1", _read(directory / "cpu.cfs_period_us") or "100000")


def _ratio(quota: str, period: str) -> float | None:
    """CPUs per period; None for no quota ("max", -1) or a value that is not a number."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _cgroup_path(lines: list[str], wanted: Callable[[str], bool]) -> str:
    """The cgroup path in `/proc/self/cgroup` ("id:controllers:path") of the hierarchy whose
    controller list `wanted` accepts; `/` when there is none."""
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) == 3 and wanted(fields[1]):
            return fields[2]
    return "/"


def cpu_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The CPUs this process's cgroup may use per period (1.5 = one and a half CPUs), the
    lowest quota along its cgroup path; None when no cgroup sets one."""
    lines = (_read(self_cgroup) or "").splitlines()
    if (root / "cgroup.controllers").exists():  # cgroup v2: one unified hierarchy
        relative = _cgroup_path(lines, lambda controllers: controllers == "")
        found = [q for d in _cgroup_dirs(root, relative) if (q := _v2_quota(d)) is not None]
        return min(found) if found else None
    # cgroup v1: the cpu controller's own hierarchy, e.g. /sys/fs/cgroup/cpu,cpuacct
    relative = _cgroup_path(lines, lambda controllers: "cpu" in controllers.split(","))
    mounts = sorted(d for d in (root.iterdir() if root.is_dir() else [])
                    if "cpu" in d.name.split(",") and d.is_dir() and not d.is_symlink())
    found = [q for mount in mounts[:1] for d in _cgroup_dirs(mount, relative)
             if (q := _v1_quota(d)) is not None]
    return min(found) if found else None


def usable_cpus() -> int:
    """CPUs this process may be scheduled on (a cpuset narrows it), else the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(quota: float | None, cpus: int) -> int:
    """One worker per whole CPU of the quota (rounded down, so no worker is throttled for
    want of CPU time), never more than the usable CPUs, at least one."""
    limit = cpus if quota is None else min(cpus, math.floor(quota))
    return max(1, limit)


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}; got {raw!r}")
    return int(raw)


def access_log(env: Mapping[str, str]) -> str | None:
    """`ACCESS_LOG`: `-`/`on`/`true`/`1` → stdout, unset/`off`/`false`/`0` → none, else a path."""
    raw = env.get("ACCESS_LOG", "").strip()
    if raw.lower() in ("", "off", "false", "0", "no", "none"):
        return None
    if raw.lower() in ("-", "on", "true", "1", "yes", "stdout"):
        return "-"
    return raw


def settings(env: Mapping[str, str], quota: float | None, cpus: int) -> dict[str, object]:
    """Gunicorn's settings from the environment `env` and the CPU limits."""
    port = _whole(env, "PORT", 8000, 0)
    if port > 65535:
        raise ValueError(f"PORT must be at most 65535; got {port}")
    bind = [b.strip() for b in env.get("BIND", "").split(",") if b.strip()]
    loglevel = env.get("LOG_LEVEL", "info").strip().lower() or "info"
    if loglevel not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("LOG_LEVEL must be one of debug, info, warning, error, critical; "
                         f"got {loglevel!r}")
    return {
        "wsgi_app": env.get("APP_MODULE", "").strip() or "main:app",
        "bind": bind or [f"0.0.0.0:{port}"],
        "workers": _whole(env, "WEB_CONCURRENCY", default_workers(quota, cpus), 1),
        "threads": _whole(env, "THREADS", 1, 1),
        "timeout": _whole(env, "TIMEOUT", 30, 0),
        "graceful_timeout": _whole(env, "GRACEFUL_TIMEOUT", 30, 0),
        "keepalive": _whole(env, "KEEPALIVE", 5, 0),
        "loglevel": loglevel,
        "accesslog": access_log(env),
    }


worker_class = "gaw.UvloopWorker"  # `-k gaw.AsyncioWorker` on the command line overrides it
errorlog = "-"                     # stderr, where a container's logs are collected
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # heartbeat off the disk
globals().update(settings(os.environ, cpu_quota(), usable_cpus()))
