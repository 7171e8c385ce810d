"""Our options are checked once, before any worker forks: one line and exit code 3 for a bad
one, whatever the number of workers and under `gunicorn --check-config`; a top-level option
name in the config file takes effect; warnings for a misspelt top-level name and for an
option that overrides a Gunicorn setting the user also set."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from gunicorn_process import GUNICORN_SETTINGS, REPO, TESTS, GunicornProcess

APP = "examples.hello:app"  # answers 200 "Hello, world!" without reading the body
SCOPE_APP = "apps.http_behaviour:app"  # /scope: the request's scope as JSON
MARK = "gunicorn-async-workers:"


def configured(worker_class: str, options: str) -> str:
    """Config-file lines setting `worker_class` to the class with `configure(options)`."""
    module, name = worker_class.rsplit(".", 1)
    return f"from {module} import {name}\nworker_class = {name}.configure({options})\n"


def our_lines(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if MARK in line]


def assert_one_line_no_traceback(logs: str, expected: str) -> None:
    lines = our_lines(logs)
    assert len(lines) == 1, logs
    assert expected in lines[0], lines[0]
    assert "Traceback" not in logs and "HaltServer" not in logs, logs
    assert "Booting worker" not in logs, "a worker was forked before the check"


# (config text, environment, what the one line names); {cls} is the worker class under test.
BAD = {
    "configure-invalid": ("configure:body_timeout=-1", {},
                          "configure(body_timeout=...) must be a number of at least 0; got -1"),
    "configure-misspelt": ("configure:max_bodysize=1000", {},
                           "max_bodysize (did you mean max_body_size?)"),
    "env-invalid": ("", {"GAW_MAX_BODY_SIZE": "abc"},
                    "GAW_MAX_BODY_SIZE must be an integer of at least 0; got 'abc'"),
    "file-invalid": ("max_body_size = 'abc'\n", {},
                     "max_body_size in the config file must be an integer of at least 0"),
    "file-and-configure-disagree": ("max_body_size = 10\nconfigure:max_body_size=20", {},
                                    "max_body_size is set twice in the config file"),
}


def config_text(worker_class: str, spec: str) -> str:
    text, has_configure, options = spec.partition("configure:")
    return text + (configured(worker_class, options) if has_configure else "")


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_option_stops_the_arbiter_before_any_worker(
        worker_class: str, gunicorn: Callable[..., GunicornProcess], case: str,
        workers: int) -> None:
    spec, env, expected = BAD[case]
    server = gunicorn(APP, wait=False, workers=workers, env=env,
                      config_text=config_text(worker_class, spec))
    assert server.proc is not None
    assert server.proc.wait(30) == 3, server.logs()
    assert_one_line_no_traceback(server.logs(), expected)


def test_bad_option_leaves_no_pidfile(worker_class: str,
                                      gunicorn: Callable[..., GunicornProcess],
                                      tmp_path: Path) -> None:
    pidfile = tmp_path / "gunicorn.pid"
    server = gunicorn(APP, wait=False, settings={"pidfile": str(pidfile)},
                      env={"GAW_MAX_BODY_SIZE": "abc"})
    assert server.proc is not None
    assert server.proc.wait(30) == 3, server.logs()
    assert not pidfile.exists()


def check_config(conf: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GAW_")
            or k.startswith("GAW_TEST_")}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), full.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c", str(conf),
                           APP], cwd=str(conf.parent), env=full, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("case", ["configure-invalid", "configure-misspelt", "env-invalid"])
def test_check_config_fails_on_a_bad_option(worker_class: str, tmp_path: Path,
                                            case: str) -> None:
    """`--check-config` runs the config file (not the arbiter): configure(...) checks there,
    our GAW_* variables included."""
    spec, env, expected = BAD[case]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(config_text(worker_class, spec or "configure:"))
    done = check_config(conf, env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert_one_line_no_traceback(done.stdout + done.stderr, expected)
    conf.write_text(config_text(worker_class, "configure:max_body_size=10"))
    good = check_config(conf, {})
    assert good.returncode == 0, good.stdout + good.stderr


def post(server: GunicornProcess, size: int) -> int:
    return httpx.post(server.url + "/", content=b"x" * size, timeout=10).status_code


def test_top_level_option_in_the_config_file_takes_effect(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    """`max_body_size = 1000` in gunicorn.conf.py is ours (Gunicorn has no such setting),
    and, like configure(...) in the same file, wins over the GAW_* variable."""
    server = gunicorn(APP, workers=2, config_text="max_body_size = 1000\n",
                      env={"GAW_MAX_BODY_SIZE": "5000"})
    assert post(server, 1000) == 200
    assert post(server, 1001) == 413
    assert not our_lines(server.logs()), server.logs()


def test_misspelt_top_level_name_is_warned_once(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP, workers=2, config_text="max_bodysize = 1000\n")
    assert post(server, 2000) == 200  # not applied: it is no option
    lines = our_lines(server.logs())
    assert len(lines) == 1 and "[WARNING]" in lines[0], server.logs()
    assert "max_bodysize" in lines[0] and "did you mean max_body_size?" in lines[0]


needs_root_path = pytest.mark.skipif(
    "root_path" not in GUNICORN_SETTINGS, reason="this Gunicorn has no root_path setting")


@needs_root_path
@pytest.mark.parametrize("how", ["conf", "GUNICORN_CMD_ARGS", "command-line"])
def test_option_overriding_a_gunicorn_setting_is_warned_once(
        worker_class: str, gunicorn: Callable[..., GunicornProcess], how: str) -> None:
    text = configured(worker_class, "root_path='/ours'")
    env, args = {}, []
    if how == "conf":
        text += "root_path = '/api'\n"
    elif how == "GUNICORN_CMD_ARGS":
        env["GUNICORN_CMD_ARGS"] = "--root-path /api"
    else:
        args = ["--root-path", "/api"]
    server = gunicorn(SCOPE_APP, workers=2, config_text=text, env=env, args=args)
    # Our option wins, as the warning says.
    assert httpx.get(server.url + "/ours/scope", timeout=10).json()["root_path"] == "/ours"
    lines = our_lines(server.logs())
    assert len(lines) == 1 and "[WARNING]" in lines[0], server.logs()
    assert ("configure(root_path=...) = '/ours' overrides Gunicorn's root_path = '/api'; "
            "remove root_path from configure(...) to use Gunicorn's root_path") in lines[0]


@needs_root_path
def test_option_agreeing_with_a_gunicorn_setting_is_not_warned(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(SCOPE_APP, config_text=configured(worker_class, "root_path='/api/'"),
                      args=["--root-path", "/api"])
    assert httpx.get(server.url + "/api/scope", timeout=10).json()["root_path"] == "/api"
    assert not our_lines(server.logs()), server.logs()


def test_http2_without_h2_is_one_line_naming_the_extra(
        worker_class: str, gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    """HTTP/2 asked for (our `http_protocols` option) where the h2 package cannot be
    imported: one line naming the extra to install, exit code 3, no worker forked."""
    blocker = tmp_path / "sitecustomize.py"  # `import h2` fails in this process
    blocker.write_text("import sys\nsys.modules['h2'] = None\n")
    server = gunicorn(APP, wait=False, env={
        "GAW_HTTP_PROTOCOLS": "h2,h1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), str(TESTS)])})
    assert server.proc is not None
    assert server.proc.wait(30) == 3, server.logs()
    assert_one_line_no_traceback(
        server.logs(), "http_protocols includes h2 but the h2 package is not installed: "
        "pip install 'gunicorn-async-workers[http2]'")
