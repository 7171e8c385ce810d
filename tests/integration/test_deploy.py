"""Deployment: the container image's config file serves the Kubernetes example through a real
gunicorn, and, where a container engine and the base image are at hand, the image itself is
built and serves an app.

Without an engine the image test is skipped with the reason (no engine, no daemon, or no
`python:*-slim` base image because no registry is reachable); the config file it ships is
still served here by a real gunicorn on the host, with the same environment variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gunicorn_process import REPO, GunicornProcess, wait_for

K8S = REPO / "examples" / "kubernetes"
IMAGE_CONF = REPO / "docker" / "gunicorn.conf.py"
BASE = re.search(r"^ARG PYTHON_VERSION=(\S+)$", (REPO / "Dockerfile").read_text(),
                 re.MULTILINE)
BASE_IMAGE = f"python:{BASE.group(1) if BASE else '3'}-slim"


def image_config(worker_class: str) -> str:
    """Run the image's gunicorn.conf.py after the harness's own lines, keeping the worker
    class under test (the image's default is gaw.UvloopWorker)."""
    return (f"exec(compile(open({str(IMAGE_CONF)!r}).read(), 'gunicorn.conf.py', 'exec'))\n"
            f"worker_class = {worker_class!r}\n")


def test_image_config_serves_the_kubernetes_example(worker_class: str) -> None:
    """As in the container: `main:app` from the working directory (APP_MODULE's default),
    the settings from the environment, access lines on stdout."""
    env = {"BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "2", "GRACEFUL_TIMEOUT": "7",
           "KEEPALIVE": "3", "ACCESS_LOG": "-", "LOG_LEVEL": "debug",
           "PYTHONPATH": str(K8S)}
    with GunicornProcess("main:app", worker_class, workers=2, env=env,
                         config_text=image_config(worker_class)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            health = client.get("/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")
            hello = client.get("/")
            assert hello.status_code == 200 and hello.text.startswith("Hello from ")
            assert client.get("/missing").status_code == 404
        logs = server.logs()
        assert len(server.worker_pids()) == 2  # WEB_CONCURRENCY
        assert "[DEBUG]" in logs  # LOG_LEVEL
        wait_for(lambda: '"GET /healthz HTTP/1.1" 200' in server.logs(), 10,
                 what="an access log line on stdout")  # ACCESS_LOG
        assert re.search(r"graceful_timeout: 7\b", logs)
        assert re.search(r"keepalive: 3\b", logs)


def test_entrypoint_serves_main_app_from_the_working_directory(tmp_path: Path) -> None:
    """The Dockerfile's ENTRYPOINT as the image runs it: no app argument, so APP_MODULE's
    default `main:app`, imported from the working directory (the image's /app, where a
    user's `COPY` puts it); only the config path is mapped back to the repository."""
    text = (REPO / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE).group(1))
    copied = re.search(r"^COPY docker/gunicorn.conf.py (\S+)$", text, re.MULTILINE).group(1)
    assert entrypoint[0] == "gunicorn" and copied in entrypoint
    command = [sys.executable, "-m", "gunicorn",
               *[str(IMAGE_CONF) if arg == copied else arg for arg in entrypoint[1:]]]
    shutil.copy(K8S / "main.py", tmp_path / "main.py")
    server = GunicornProcess("main:app", "gaw.UvloopWorker")  # for its waits and its stop
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "APP_MODULE")}
    env.update(BIND="127.0.0.1:0", WEB_CONCURRENCY="1")
    log = open(server.output, "wb")  # noqa: SIM115 - handed to the child
    server.proc = subprocess.Popen(command, cwd=str(tmp_path), env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        server.wait_ready(30)
        assert httpx.get(server.url + "/healthz", timeout=10).text == "ok\n"
    finally:
        server.stop()
    assert "Using worker: gaw.UvloopWorker" in server.logs()


# -- the image itself -----------------------------------------------------------------------
def container_engine() -> str:
    """A working engine (docker or podman) that has the base image or can pull it, else
    skip with the reason."""
    reasons = []
    for name in ("docker", "podman"):
        path = shutil.which(name)
        if path is None:
            reasons.append(f"no {name} command")
            continue
        info = subprocess.run([path, "info"], capture_output=True, text=True, timeout=60)
        if info.returncode != 0:
            last = (info.stderr.strip().splitlines() or ["?"])[-1]
            reasons.append(f"{name} does not work here ({last[:120]})")
            continue
        have = subprocess.run([path, "image", "inspect", BASE_IMAGE], capture_output=True,
                              timeout=60)
        if have.returncode == 0:
            return path
        pull = subprocess.run([path, "pull", BASE_IMAGE], capture_output=True, text=True,
                              timeout=300)
        if pull.returncode == 0:
            return path
        last = (pull.stderr.strip().splitlines() or ["?"])[-1]
        reasons.append(f"{name} cannot get the base image {BASE_IMAGE} ({last[:240]})")
    pytest.skip("no container engine to build the image with: " + "; ".join(reasons))


@pytest.fixture(scope="module")
def engine() -> str:
    return container_engine()


@pytest.fixture(scope="module")
def images(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base image built from the Dockerfile, and the Kubernetes example's two-line
    image FROM it; yields the app image's tag and removes both afterwards."""
    tag = uuid.uuid4().hex[:10]
    base, app = f"gunicorn-async-workers:test-{tag}", f"gaw-k8s-example:test-{tag}"
    context = tmp_path_factory.mktemp("app-image")
    shutil.copy(K8S / "main.py", context / "main.py")
    (context / "Dockerfile").write_text(
        (K8S / "Dockerfile").read_text().replace("FROM gunicorn-async-workers",
                                                 f"FROM {base}"))
    try:
        subprocess.run([engine, "build", "-t", base, str(REPO)], check=True,
                       capture_output=True, timeout=900)
        subprocess.run([engine, "build", "-t", app, str(context)], check=True,
                       capture_output=True, timeout=300)
        yield app
    finally:
        for image in (app, base):
            subprocess.run([engine, "rmi", "-f", image], capture_output=True, timeout=120)


@pytest.mark.timeout(1200)
def test_image_serves_the_two_line_app(engine: str, images: str) -> None:
    name = f"gaw-test-{uuid.uuid4().hex[:10]}"
    run = subprocess.run(
        [engine, "run", "-d", "--name", name, "--cpus", "1", "-p", "127.0.0.1::8000",
         "-e", "ACCESS_LOG=-", images],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        port = subprocess.run([engine, "port", name, "8000"], capture_output=True,
                              text=True, check=True, timeout=60).stdout.split(":")[-1]

        def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port.strip()}/healthz").status_code == 200
            return False

        wait_for(healthy, 60, interval=0.2, what="the container answering /healthz")
        logs = subprocess.run([engine, "logs", name], capture_output=True, text=True,
                              timeout=60)
        text = logs.stdout + logs.stderr
        assert "Using worker: gaw.UvloopWorker" in text
        assert len(re.findall(r"Booting worker with pid", text)) == 1  # --cpus 1: 1 worker
        user = subprocess.run([engine, "exec", name, "id", "-u"], capture_output=True,
                              text=True, timeout=60)
        assert user.stdout.strip() == "10001"
        # SIGTERM from the engine stops gunicorn (PID 1, exec form) cleanly.
        stop = subprocess.run([engine, "stop", "-t", "30", name], capture_output=True,
                              timeout=90)
        assert stop.returncode == 0
        code = subprocess.run([engine, "inspect", "-f", "{{.State.ExitCode}}", name],
                              capture_output=True, text=True, timeout=60)
        assert code.stdout.strip() == "0"
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=120)


def test_base_image_name_comes_from_the_dockerfile() -> None:
    """The skip reason above names the image the Dockerfile really starts FROM."""
    text = (REPO / "Dockerfile").read_text()
    assert BASE is not None
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == [
        "python:${PYTHON_VERSION}-slim", "python:${PYTHON_VERSION}-slim"]
    assert re.fullmatch(r"3\.\d+", BASE.group(1)), "PYTHON_VERSION is a Python 3 version"
    assert re.search(r'^ENTRYPOINT \["gunicorn", "--config", "(/[^"]+)"\]$', text,
                     re.MULTILINE)
    assert "COPY docker/gunicorn.conf.py /etc/gunicorn/gunicorn.conf.py" in text
    assert IMAGE_CONF.is_file()


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out: the last pattern that matches the path
    or one of its parent directories decides, `!` re-includes (Docker's rules, where `*`
    stays within one path segment and `**` spans any number)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = []
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", (REPO / "Dockerfile").read_text(),
                              re.MULTILINE):
        for source in sources.split():
            root = REPO / source
            files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
            copied += [f.relative_to(REPO).as_posix() for f in files
                       if "__pycache__" not in f.parts and f.suffix != ".so"]
    assert "gunicorn_async_workers/workers.py" in copied
    assert "docker/gunicorn.conf.py" in copied
    left_out = [name for name in copied if dockerignore_excludes(name, patterns)]
    assert not left_out, f".dockerignore leaves out files the Dockerfile copies: {left_out}"
    # The context stays small: no venv, no git history, no tests or benchmarks.
    for name in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "benchmarks/README.md",
                 "gaw/__pycache__/__init__.cpython-311.pyc",
                 # an editable install's build of the compiled module: the image builds its own
                 "gunicorn_async_workers/http/compiled_head.cpython-311-x86_64-linux-gnu.so"):
        assert dockerignore_excludes(name, patterns), name


# -- the user guide -------------------------------------------------------------------------
GUIDE = sorted((REPO / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")
# Links to this repository's files on its web host: blob/main/PATH or tree/main/PATH.
REPO_WEB = "https://github.com/gunicorn-async-workers/gunicorn-async-workers/"


@pytest.mark.parametrize("page", [REPO / "README.md", REPO / "CHANGELOG.md",
                                  K8S / "README.md", *GUIDE],
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_guide_links_resolve(page: Path) -> None:
    """Every link in the README, the changelog and docs/ to a file of this repository (relative,
    or through the repository's own web address) names a file that exists."""
    broken = []
    for target in _LINK.findall(page.read_text()):
        if target.startswith(REPO_WEB):
            path = REPO / target.removeprefix(REPO_WEB).split("/", 2)[2].split("#", 1)[0]
        elif target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        else:
            path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_readme_links_are_absolute() -> None:
    """The README is also the package index's page, where a relative link is broken."""
    relative = [t for t in _LINK.findall((REPO / "README.md").read_text())
                if not t.startswith(("https://", "#"))]
    assert not relative, relative


def test_guide_is_linked_from_the_readme_and_its_index() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Documentation"):]
    index = (REPO / "docs" / "README.md").read_text()
    for page in GUIDE:
        if page.name != "README.md":
            assert f"docs/{page.name}" in section, page.name
            assert f"({page.name})" in index, page.name


def test_docker_guide_lists_every_variable_the_image_reads() -> None:
    source = IMAGE_CONF.read_text()
    read = set(re.findall(r'env(?:\.get\(|, )"([A-Z_]+)"', source))
    assert {"PORT", "WEB_CONCURRENCY", "GRACEFUL_TIMEOUT", "KEEPALIVE", "LOG_LEVEL",
            "ACCESS_LOG"} <= read
    guide = (REPO / "docs" / "docker.md").read_text()
    assert not [name for name in read if f"| `{name}` |" not in guide]
