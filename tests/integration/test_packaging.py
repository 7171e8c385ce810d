"""The package as users install it: alias package, entry point, and the gunicorn command."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from gunicorn_process import REPO, GunicornProcess


def test_alias_package_reexports_the_same_objects() -> None:
    import gaw
    import gunicorn_async_workers

    assert gaw.UvloopWorker is gunicorn_async_workers.UvloopWorker
    assert gaw.__version__ == gunicorn_async_workers.__version__


def test_entry_point_names_the_worker() -> None:
    eps = importlib.metadata.entry_points(group="gunicorn.workers")
    by_name = {ep.name: ep for ep in eps if ep.value.startswith("gunicorn_async_workers")}
    import gaw

    assert by_name["uvloop"].load() is gaw.UvloopWorker


def test_egg_worker_spec_serves() -> None:
    """`-k egg:gunicorn-async-workers#uvloop` selects our worker through the entry point."""
    with GunicornProcess("apps.contract:app", "egg:gunicorn-async-workers#uvloop") as server:
        r = httpx.get(server.url + "/")
        assert r.status_code == 200
        assert "UvloopWorker" in server.logs() or "egg:gunicorn-async-workers" in server.logs()


@pytest.mark.timeout(180)
def test_wheel_builds_with_both_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=170)
    wheel = next(tmp_path.glob("gunicorn_async_workers-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gaw/__init__.py" in names
    assert "gunicorn_async_workers/workers.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[gunicorn.workers]" in text and "uvloop" in text
