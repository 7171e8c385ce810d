"""What a new user runs first, run as the docs give it: README's "Try it" command in a copy of
the repo, the FastAPI quickstart, and the start failures troubleshooting.md lists with their
exit codes and lines."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gunicorn_process import REPO, wait_for
from repo_copy import copy_of_repo

DOCS = REPO / "docs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def run_server(command: list[str] | str, cwd: Path, log: Path, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    environ.update(env)
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(command, cwd=cwd, env=environ, stdout=out,
                                stderr=subprocess.STDOUT, shell=isinstance(command, str),
                                start_new_session=True)
    finally:
        out.close()


def stop(proc: subprocess.Popen) -> None:
    """End the command's whole session (the shell, pip, gunicorn and its workers) by its id."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:
        with contextlib.suppress(ProcessLookupError):  # what the shell left behind, if any
            os.killpg(proc.pid, signal.SIGKILL)


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_of_repo(tmp_path)


@pytest.mark.timeout(420)
def test_readme_try_it_serves_and_logs_each_request(repo_copy: Path) -> None:
    """The README's first command, as written (only the port changed: tests run in
    parallel), in a copy of the repo: it makes its own venv, installs, serves, and prints an
    access line per request."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Try it"):]
    command = code_blocks(section)[0].strip()
    assert command.startswith("python3 -m venv") and "--access-logfile -" in command, command
    assert "pip install gunicorn-async-workers" in section[:section.index("## Run the tests")]
    port = free_port()
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    log = repo_copy.parent / "try-it.log"
    proc = run_server(command, repo_copy, log)
    try:
        answer = wait_for(lambda: proc.poll() is None and get(f"http://127.0.0.1:{port}/probe"),
                          timeout=360, interval=0.5, what="the README's server answering")
        assert isinstance(answer, httpx.Response)
        assert (answer.status_code, answer.text) == (200, "Hello, world!")
        wait_for(lambda: '"GET /probe HTTP/1.1" 200' in log.read_text(errors="replace"),
                 timeout=10, what="an access log line for /probe")
        assert (repo_copy / ".venv" / "bin" / "gunicorn").exists()
    finally:
        stop(proc)
    assert proc.returncode is not None


@pytest.mark.timeout(120)
def test_fastapi_quickstart_serves(tmp_path: Path, worker_class: str) -> None:
    """docs/fastapi.md: its main.py and its serve command (with the reload one beside it)."""
    page = (DOCS / "fastapi.md").read_text()
    blocks = code_blocks(page)
    main_py = next(b for b in blocks if "FastAPI()" in b)
    serve = next(b for b in blocks if b.startswith("gunicorn ") and "--reload" not in b)
    assert any(b.startswith("gunicorn ") and "--reload" in b for b in blocks)
    (tmp_path / "main.py").write_text(main_py)
    port = free_port()
    args = serve.strip().split()
    assert args[:3] == ["gunicorn", "-k", "gaw.UvloopWorker"], args
    args = [sys.executable, "-m", "gunicorn", "-k", worker_class, *args[3:]]
    args = [a.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for a in args]
    log = tmp_path / "server.log"
    proc = run_server(args, tmp_path, log)
    try:
        answer = wait_for(lambda: proc.poll() is None and get(f"http://127.0.0.1:{port}/"),
                          timeout=60, interval=0.2, what="the quickstart answering")
        assert isinstance(answer, httpx.Response)
        assert answer.json() == {"message": "Hello, world!"}
        wait_for(lambda: '"GET / HTTP/1.1" 200' in log.read_text(errors="replace"),
                 timeout=10, what="an access log line")
    finally:
        stop(proc)


# What troubleshooting.md's table says of each start failure: the app module's text, the app
# name, the worker class, the exit code, a line of the log, and the words that find the row.
START_FAILURES = {
    "import-error": ("import nonexistent_module_xyz\n", "main:app", "gaw.UvloopWorker", 3,
                     "Reason: Worker failed to boot.", "`ModuleNotFoundError`"),
    "raise-at-import": ("raise RuntimeError('boom')\n", "main:app", "gaw.UvloopWorker", 3,
                        "Reason: Worker failed to boot.", "raised while the app's module"),
    "missing-attribute": ("x = 1\n", "main:app", "gaw.UvloopWorker", 4,
                          "Failed to find attribute 'app' in 'main'.", "Failed to find attr"),
    "not-callable": ("x = 1\n", "main:x", "gaw.UvloopWorker", 4,
                     "Application object must be callable.", "must be callable"),
    "worker-class-typo": ("async def app(scope, receive, send): pass\n", "main:app",
                          "gaw.UvLoopWorker", 255, "TypeError: 'str' object is not callable",
                          "gaw.UvLoopWorker"),
}


@pytest.mark.parametrize("case", sorted(START_FAILURES))
def test_start_failures_are_as_troubleshooting_says(tmp_path: Path, case: str) -> None:
    source, app, worker, code, line, words = START_FAILURES[case]
    guide = (DOCS / "troubleshooting.md").read_text()
    row = next((r for r in guide.splitlines() if r.startswith("|") and words in r), None)
    assert row is not None and f"| {code} |" in row, f"troubleshooting.md: no row for {words!r}"
    (tmp_path / "main.py").write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-k", worker, "-b", "127.0.0.1:0", app],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == code, done.stderr[-3000:]
    assert line in done.stderr, done.stderr[-3000:]
