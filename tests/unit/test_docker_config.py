"""The container image's docker/gunicorn.conf.py: environment handling and the worker count
from the CPU quota (fed with fake cgroup v1 and v2 trees), without a container engine.

The last tests hand the file to a real `gunicorn --print-config` and check what Gunicorn
itself makes of the environment.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "docker" / "gunicorn.conf.py"
ENV_NAMES = ("APP_MODULE", "PORT", "BIND", "WEB_CONCURRENCY", "THREADS", "TIMEOUT",
             "GRACEFUL_TIMEOUT", "KEEPALIVE", "LOG_LEVEL", "ACCESS_LOG")


def load_conf() -> ModuleType:
    """docker/gunicorn.conf.py as a module, run against the current os.environ."""
    spec = importlib.util.spec_from_file_location("docker_gunicorn_conf", CONF)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def conf(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return load_conf()


# -- fake cgroup trees ----------------------------------------------------------------------
def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def cgroup_v2(tmp_path: Path, self_path: str, limits: dict[str, str]) -> tuple[Path, Path]:
    """A unified hierarchy with `cpu.max` at each relative directory of `limits`."""
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpuset cpu io memory pids")
    for directory, cpu_max in limits.items():
        write(root / directory / "cpu.max", cpu_max)
    self_cgroup = tmp_path / "self-cgroup"
    write(self_cgroup, f"0::{self_path}")
    return root, self_cgroup


def cgroup_v1(tmp_path: Path, self_path: str,
              limits: dict[str, tuple[str, str]]) -> tuple[Path, Path]:
    """Docker's v1 layout: the cpu controller mounted at `cpu,cpuacct`, `cpu` a symlink."""
    root = tmp_path / "cgroup"
    mount = root / "cpu,cpuacct"
    mount.mkdir(parents=True)
    (root / "cpu").symlink_to(mount)
    (root / "cpuacct").symlink_to(mount)
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    for directory, (quota, period) in limits.items():
        write(mount / directory / "cpu.cfs_quota_us", quota)
        write(mount / directory / "cpu.cfs_period_us", period)
    self_cgroup = tmp_path / "self-cgroup"
    write(self_cgroup, f"12:memory:{self_path}\n4:cpu,cpuacct:{self_path}\n1:name=systemd:/")
    return root, self_cgroup


def test_v2_quota_in_the_containers_own_cgroup(conf: ModuleType, tmp_path: Path) -> None:
    """With a cgroup namespace the container sees itself at `/`, its limit at the mount."""
    root, self_cgroup = cgroup_v2(tmp_path, "/", {"": "150000 100000"})
    assert conf.cpu_quota(root, self_cgroup) == 1.5


def test_v2_no_quota(conf: ModuleType, tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v2(tmp_path, "/", {"": "max 100000"})
    assert conf.cpu_quota(root, self_cgroup) is None


def test_v2_lowest_quota_along_the_path(conf: ModuleType, tmp_path: Path) -> None:
    """A pod's limit on a parent cgroup binds the container below it too."""
    root, self_cgroup = cgroup_v2(tmp_path, "/kubepods/pod-a/ctr", {
        "": "max 100000",
        "kubepods": "max 100000",
        "kubepods/pod-a": "250000 100000",
        "kubepods/pod-a/ctr": "max 100000",
    })
    assert conf.cpu_quota(root, self_cgroup) == 2.5
    write(root / "kubepods" / "pod-a" / "ctr" / "cpu.max", "50000 50000")
    assert conf.cpu_quota(root, self_cgroup) == 1.0


def test_v2_path_of_another_namespace_falls_back_to_the_mount(conf: ModuleType,
                                                             tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v2(tmp_path, "/system.slice/docker-abc.scope",
                                  {"": "400000 100000"})
    assert conf.cpu_quota(root, self_cgroup) == 4.0


def test_v1_quota(conf: ModuleType, tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v1(tmp_path, "/", {"": ("300000", "100000")})
    assert conf.cpu_quota(root, self_cgroup) == 3.0


def test_v1_no_quota(conf: ModuleType, tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v1(tmp_path, "/", {"": ("-1", "100000")})
    assert conf.cpu_quota(root, self_cgroup) is None


def test_v1_lowest_quota_along_the_path(conf: ModuleType, tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v1(tmp_path, "/docker/abc", {
        "": ("-1", "100000"),
        "docker": ("600000", "100000"),
        "docker/abc": ("150000", "100000"),
    })
    assert conf.cpu_quota(root, self_cgroup) == 1.5


def test_v1_path_of_another_namespace_falls_back_to_the_mount(conf: ModuleType,
                                                             tmp_path: Path) -> None:
    root, self_cgroup = cgroup_v1(tmp_path, "/docker/abc", {"": ("200000", "100000")})
    assert conf.cpu_quota(root, self_cgroup) == 2.0


def test_no_cgroup_files_and_garbage_mean_no_quota(conf: ModuleType, tmp_path: Path) -> None:
    assert conf.cpu_quota(tmp_path / "absent", tmp_path / "absent-self") is None
    root, self_cgroup = cgroup_v2(tmp_path, "/", {"": "lots 100000"})
    assert conf.cpu_quota(root, self_cgroup) is None


@pytest.mark.parametrize(("quota", "cpus", "workers"), [
    (None, 64, 64),   # no quota: every CPU the process may run on
    (2.0, 64, 2),     # the quota, not the host's 64 cores
    (2.5, 64, 2),     # rounded down: no worker starved of CPU time
    (0.5, 64, 1),     # at least one
    (8.0, 2, 2),      # never more than the CPUs it may run on (a cpuset)
])
def test_default_workers(conf: ModuleType, quota: float | None, cpus: int,
                         workers: int) -> None:
    assert conf.default_workers(quota, cpus) == workers


# -- environment -> settings ----------------------------------------------------------------
def test_defaults(conf: ModuleType) -> None:
    assert conf.settings({}, None, 3) == {
        "wsgi_app": "main:app", "bind": ["0.0.0.0:8000"], "workers": 3, "threads": 1,
        "timeout": 30, "graceful_timeout": 30, "keepalive": 5, "loglevel": "info",
        "accesslog": None,
    }


def test_every_variable(conf: ModuleType) -> None:
    env = {"APP_MODULE": "shop.asgi:application", "PORT": "9000", "WEB_CONCURRENCY": "6",
           "THREADS": "8", "TIMEOUT": "60", "GRACEFUL_TIMEOUT": "25", "KEEPALIVE": "75",
           "LOG_LEVEL": "WARNING", "ACCESS_LOG": "-"}
    assert conf.settings(env, 2.0, 64) == {
        "wsgi_app": "shop.asgi:application", "bind": ["0.0.0.0:9000"], "workers": 6,
        "threads": 8, "timeout": 60, "graceful_timeout": 25, "keepalive": 75,
        "loglevel": "warning", "accesslog": "-",
    }


def test_workers_default_from_the_quota(conf: ModuleType) -> None:
    assert conf.settings({}, 2.0, 64)["workers"] == 2
    assert conf.settings({"WEB_CONCURRENCY": ""}, 1.5, 64)["workers"] == 1


def test_bind_replaces_port(conf: ModuleType) -> None:
    env = {"PORT": "9000", "BIND": "[::]:8080, unix:/run/app.sock"}
    assert conf.settings(env, None, 1)["bind"] == ["[::]:8080", "unix:/run/app.sock"]


@pytest.mark.parametrize(("value", "expected"), [
    ("", None), ("off", None), ("0", None), ("false", None),
    ("-", "-"), ("on", "-"), ("1", "-"), ("TRUE", "-"),
    ("/var/log/app/access.log", "/var/log/app/access.log"),
])
def test_access_log(conf: ModuleType, value: str, expected: str | None) -> None:
    assert conf.settings({"ACCESS_LOG": value}, None, 1)["accesslog"] == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be a whole number of at least 1; got '0'"),
    ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY must be a whole number"),
    ({"PORT": "http"}, "PORT must be a whole number"),
    ({"PORT": "70000"}, "PORT must be at most 65535; got 70000"),
    ({"GRACEFUL_TIMEOUT": "soon"},
     "GRACEFUL_TIMEOUT must be a whole number of at least 0; got 'soon'"),
    ({"TIMEOUT": "2.5"}, "TIMEOUT must be a whole number of at least 0; got '2.5'"),
    ({"KEEPALIVE": "-1"}, "KEEPALIVE must be a whole number of at least 0; got '-1'"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of debug, info, warning, error, critical"),
    ({"THREADS": "0"}, "THREADS must be a whole number of at least 1"),
])
def test_invalid_values_name_the_variable(conf: ModuleType, env: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        conf.settings(env, None, 1)


def test_module_settings_come_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Gunicorn reads from the file's namespace, with this machine's own cgroup."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRACEFUL_TIMEOUT", "17")
    module = load_conf()
    assert module.graceful_timeout == 17
    assert module.workers == module.default_workers(module.cpu_quota(), module.usable_cpus())
    assert module.worker_class == "gaw.UvloopWorker"
    assert module.errorlog == "-"


# -- what Gunicorn itself makes of it ---------------------------------------------------------
def gunicorn_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`gunicorn --print-config` with the image's config file and `env` over a clean one."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(CONF), "--chdir", str(REPO),
         "--print-config", *args],
        env=clean, capture_output=True, text=True, timeout=60, cwd=str(REPO))


def printed(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s+= (.*)$", output, re.MULTILINE))


def test_gunicorn_reads_the_environment() -> None:
    result = gunicorn_config({
        "APP_MODULE": "examples.hello:app", "PORT": "9123", "WEB_CONCURRENCY": "3",
        "GRACEFUL_TIMEOUT": "21", "KEEPALIVE": "65", "LOG_LEVEL": "debug", "ACCESS_LOG": "on"})
    assert result.returncode == 0, result.stderr
    config = printed(result.stdout)
    assert config["wsgi_app"] == "examples.hello:app"
    assert config["bind"] == "['0.0.0.0:9123']"
    assert config["workers"] == "3"
    assert config["graceful_timeout"] == "21"
    assert config["keepalive"] == "65"
    assert config["loglevel"] == "debug"
    assert config["accesslog"] == "-"
    assert config["worker_class"] == "gaw.UvloopWorker"


def test_command_line_overrides_the_file() -> None:
    """`docker run IMAGE -k gaw.AsyncioWorker --workers 5 app:app` wins over the file."""
    result = gunicorn_config({"APP_MODULE": "examples.hello:app", "WEB_CONCURRENCY": "3"},
                             "-k", "gaw.AsyncioWorker", "--workers", "5")
    assert result.returncode == 0, result.stderr
    config = printed(result.stdout)
    assert config["worker_class"] == "gaw.AsyncioWorker"
    assert config["workers"] == "5"


def test_gunicorn_stops_on_an_invalid_variable() -> None:
    result = gunicorn_config({"APP_MODULE": "examples.hello:app", "KEEPALIVE": "forever"})
    assert result.returncode != 0
    message = "KEEPALIVE must be a whole number of at least 0; got 'forever'"
    assert message in result.stdout + result.stderr
