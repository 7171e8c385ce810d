"""The package as users install it: the sdist and wheel `python -m build` makes, each
installed into a fresh venv and serving through that venv's own gunicorn; the version from
one place; the alias package and the entry points."""

from __future__ import annotations

import email
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gunicorn_process import REPO, GunicornProcess

import gunicorn_async_workers

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on 3.10
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# An app that says where the worker serving it was imported from.
PROBE_APP = '''
import json, gaw, gunicorn_async_workers
from gunicorn_async_workers.http import parsers

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"file": gunicorn_async_workers.__file__, "version": gaw.__version__,
                       "same": gaw.UvloopWorker is gunicorn_async_workers.UvloopWorker,
                       "compiled": parsers.compiled_scan is not None})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})
'''


def test_alias_package_reexports_the_same_objects() -> None:
    import gaw

    assert gaw.UvloopWorker is gunicorn_async_workers.UvloopWorker
    assert gaw.AsyncioWorker is gunicorn_async_workers.AsyncioWorker
    assert gaw.__version__ == gunicorn_async_workers.__version__


def test_entry_points_name_the_workers() -> None:
    eps = importlib.metadata.entry_points(group="gunicorn.workers")
    by_name = {ep.name: ep for ep in eps if ep.value.startswith("gunicorn_async_workers")}
    import gaw

    assert by_name["uvloop"].load() is gaw.UvloopWorker
    assert by_name["asyncio"].load() is gaw.AsyncioWorker


def test_egg_worker_spec_serves() -> None:
    """`-k egg:gunicorn-async-workers#uvloop` selects our worker through the entry point."""
    with GunicornProcess("apps.contract:app", "egg:gunicorn-async-workers#uvloop") as server:
        r = httpx.get(server.url + "/")
        assert r.status_code == 200
        assert "UvloopWorker" in server.logs() or "egg:gunicorn-async-workers" in server.logs()


# -- built distributions --------------------------------------------------------------------
def source_copy(target: Path) -> Path:
    """The files git tracks (a clean checkout's), copied: the build writes its egg-info
    beside the sources, and two test processes building in this checkout would collide."""
    for name in tracked_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    return target


def tracked_files() -> list[str]:
    """The files git tracks that exist in the working tree, relative to the repository."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=str(REPO), capture_output=True,
                            timeout=60, check=True).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`python -m build`: the sdist, and the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out),
                             str(source_copy(tmp_path_factory.mktemp("source")))],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"sdist": next(out.glob("gunicorn_async_workers-*.tar.gz")),
            "wheel": next(out.glob("gunicorn_async_workers-*.whl"))}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def sdist_metadata(sdist: Path) -> email.message.Message:
    with tarfile.open(sdist) as t:
        member = next(m for m in t.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO"))
        data = t.extractfile(member)
        assert data is not None
        return email.message_from_bytes(data.read())


def changelog_version() -> str:
    found = re.search(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert found, "CHANGELOG.md has no '## [version]' heading"
    return found.group(1)


@pytest.mark.timeout(420)
def test_version_comes_from_one_place(dists: dict[str, Path]) -> None:
    """pyproject declares the version dynamic and reads `__version__`; everything agrees."""
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "gunicorn_async_workers.__version__"}
    version = gunicorn_async_workers.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", version)
    assert wheel_metadata(dists["wheel"])["Version"] == version
    assert sdist_metadata(dists["sdist"])["Version"] == version
    assert dists["wheel"].name.startswith(f"gunicorn_async_workers-{version}-")
    assert dists["sdist"].name == f"gunicorn_async_workers-{version}.tar.gz"
    assert changelog_version() == version
    assert importlib.metadata.version("gunicorn-async-workers") == version, \
        "the installed metadata is stale: pip install -e . again"


@pytest.mark.timeout(420)
def test_metadata_has_classifiers_and_urls(dists: dict[str, Path]) -> None:
    metadata = wheel_metadata(dists["wheel"])
    classifiers = metadata.get_all("Classifier") or []
    assert classifiers == PYPROJECT["project"]["classifiers"]
    assert "Framework :: AsyncIO" in classifiers
    assert "Topic :: Internet :: WWW/HTTP :: WSGI :: Server" in classifiers
    requires = PYPROJECT["project"]["requires-python"]
    minimum = re.fullmatch(r">=3\.(\d+)", requires)
    assert minimum, requires
    versions = {int(c.rsplit(".", 1)[1]) for c in classifiers
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert min(versions) == int(minimum.group(1)), "classifiers and requires-python disagree"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Changelog", "Issues", "Source"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert metadata["Requires-Python"] == requires


@pytest.mark.timeout(420)
def test_wheel_contents(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gaw/__init__.py" in names
    for module in ("__init__", "workers", "config", "server"):
        assert f"gunicorn_async_workers/{module}.py" in names
    # PEP 561: type checkers read the installed packages' own annotations.
    assert {"gunicorn_async_workers/py.typed", "gaw/py.typed",
            "gunicorn_async_workers/http/compiled_head.pyi"} <= set(names)
    # The compiled head reader, built for this interpreter (the wheel is this platform's).
    tag = sysconfig.get_config_var("EXT_SUFFIX")
    assert f"gunicorn_async_workers/http/compiled_head{tag}" in names, tag
    assert "-py3-none-any" not in dists["wheel"].name
    assert not [n for n in names if n.startswith(("tests/", "examples/", "benchmarks/"))]
    assert "[gunicorn.workers]" in entry_points
    for name, target in PYPROJECT["project"]["entry-points"]["gunicorn.workers"].items():
        assert f"{name} = {target}" in entry_points


@pytest.mark.timeout(420)
def test_sdist_contents(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "PKG-INFO", "gaw/__init__.py",
            "gunicorn_async_workers/__init__.py", "gunicorn_async_workers/workers.py",
            "gunicorn_async_workers/http/protocol.py", "setup.py",
            "gunicorn_async_workers/http/compiled_head.c",
            "gunicorn_async_workers/http/compiled_head.pyi"} <= names
    # Every module of both packages (as a clean checkout has them) is in the sdist.
    package = {n for n in tracked_files()
               if n.startswith(("gunicorn_async_workers/", "gaw/")) and n.endswith(".py")}
    assert "gunicorn_async_workers/config.py" in package
    assert package <= names, sorted(package - names)
    # And what MANIFEST.in adds: the licence, the changelog, the guide and the examples, every
    # file of them (an example's static file too: without it the example answers 404).
    assert {"LICENSE", "CHANGELOG.md", "Dockerfile", "docker/gunicorn.conf.py",
            "docs/README.md", "examples/hello.py", "examples/flask_static/hello.txt",
            "examples/django_project/static/hello.txt"} <= names
    shipped = {n for n in tracked_files() if n.startswith(("examples/", "docs/", "docker/"))}
    assert shipped <= names, sorted(shipped - names)


@pytest.mark.timeout(420)
def test_licence_is_declared_and_shipped(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.timeout(420)
def test_the_docker_images_wheel_has_the_licence_and_compiled_module(tmp_path: Path) -> None:
    """The Dockerfile's first stage builds the wheel from the files it COPYs, and only those:
    built the same way here (no container engine needed), the wheel carries the licence and
    the compiled head reader."""
    stage = (REPO / "Dockerfile").read_text().split("\nFROM ", 2)[1]
    copied = []
    for line in stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied += line.split()[1:-1]
    assert copied, stage
    context = tmp_path / "src"
    for name in copied:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, timeout=400, env=clean_env())
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in z.namelist())
        # and the compiled head reader (setup.py is COPYed; the stage installs gcc)
        assert any(n.startswith("gunicorn_async_workers/http/compiled_head.")
                   and n.endswith(".so") for n in z.namelist()), z.namelist()


# -- installed into a fresh venv ------------------------------------------------------------
@pytest.fixture(scope="module", params=["wheel", "sdist"])
def installed(request: pytest.FixtureRequest, dists: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A fresh venv (no system site-packages) with one distribution pip-installed; yields
    the venv and its python."""
    root = tmp_path_factory.mktemp(f"venv-{request.param}")
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    python = root / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(dists[request.param])],
        capture_output=True, text=True, timeout=400, env=clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield root, python


def clean_env() -> dict[str, str]:
    """The environment without anything that would let the venv import this checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.mark.timeout(600)
def test_installed_distribution_serves(installed: tuple[Path, Path],
                                       tmp_path: Path) -> None:
    """The venv's own python runs its own gunicorn with the installed worker, from a
    directory that is not this checkout."""
    root, python = installed
    (tmp_path / "probe.py").write_text(PROBE_APP)
    server = GunicornProcess("probe:app", "gaw.UvloopWorker")
    log = open(server.output, "wb")  # noqa: SIM115 - handed to the child
    server.proc = subprocess.Popen(
        [str(python), "-m", "gunicorn", "-c", str(server.write_config()), "probe:app"],
        cwd=str(tmp_path), env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    try:
        server.wait_ready(60)
        answer = httpx.get(server.url + "/", timeout=10).json()
    finally:
        server.stop()
    assert Path(answer["file"]).resolve().is_relative_to(root.resolve()), answer["file"]
    assert answer["version"] == gunicorn_async_workers.__version__
    assert answer["same"] is True
    assert answer["compiled"] is True  # the wheel's .so, or the sdist's build of the .c
    assert "Using worker: gaw.UvloopWorker" in server.logs()
