"""Choosing a worker class: dotted names, entry points, and Gunicorn's loop/parser settings.

Each class has one event loop and one parser. A worker reports what it runs from its
`post_worker_init` hook; Gunicorn 27's `asgi_loop` and `http_parser` settings are honoured
when they agree with the class and stop the worker at boot when they contradict it.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import httpx
import pytest
from gunicorn.config import Config
from gunicorn_process import GunicornProcess, wait_for

import gaw

APP = "apps.contract:app"
# class -> (entry-point name, loop module prefix, parser adapter)
CLASSES = {
    "gaw.UvloopWorker": ("uvloop", "uvloop", "HttptoolsParser"),
    "gaw.AsyncioWorker": ("asyncio", "asyncio", "HttptoolsParser"),
    "gaw.H11Worker": ("h11", "asyncio", "H11Parser"),
}
HAS_SETTINGS = {name: name in Config().settings for name in ("asgi_loop", "http_parser")}


def report_config(marker: Path) -> str:
    return (
        "def post_worker_init(worker):\n"
        "    loop = type(worker.loop).__module__\n"
        "    parser = worker.parser_class.__name__\n"
        "    line = f'{type(worker).__name__} {loop} {parser}\\n'\n"
        f"    open({str(marker)!r}, 'a').write(line)\n"
    )


def test_every_class_has_an_entry_point() -> None:
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="gunicorn.workers")
           if ep.value.startswith("gunicorn_async_workers")}
    for dotted, (name, _, _) in CLASSES.items():
        assert eps[name].load() is getattr(gaw, dotted.split(".")[1])


@pytest.mark.parametrize("spec", [
    *CLASSES, *(f"egg:gunicorn-async-workers#{ep}" for ep, _, _ in CLASSES.values())])
def test_class_runs_its_loop_and_parser(spec: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    expected = next(v for k, v in CLASSES.items() if spec == k or spec.endswith(f"#{v[0]}"))
    with GunicornProcess(APP, spec, config_text=report_config(marker)) as server:
        assert httpx.get(server.url + "/").status_code == 200
        wait_for(marker.exists, what="post_worker_init report")
        name, loop, parser = marker.read_text().split()
    assert loop.startswith(expected[1]), (spec, loop)
    assert parser == expected[2], (spec, parser)


AGREEING = [
    ("gaw.UvloopWorker", {"asgi_loop": "uvloop", "http_parser": "fast"}),
    ("gaw.AsyncioWorker", {"asgi_loop": "asyncio", "http_parser": "fast"}),
    ("gaw.H11Worker", {"asgi_loop": "asyncio", "http_parser": "python"}),
    ("gaw.H11Worker", {"asgi_loop": "auto", "http_parser": "auto"}),
]


@pytest.mark.skipif(not all(HAS_SETTINGS.values()),
                    reason="this Gunicorn has no asgi_loop / http_parser settings")
@pytest.mark.parametrize(("spec", "settings"), AGREEING)
def test_agreeing_loop_and_parser_settings_are_honoured(spec: str, settings: dict[str, str],
                                                        ) -> None:
    with GunicornProcess(APP, spec, settings=settings) as server:
        assert httpx.get(server.url + "/").status_code == 200


CONTRADICTING = [
    ("gaw.UvloopWorker", {"asgi_loop": "asyncio"}, "asgi_loop = 'asyncio' contradicts",
     "gaw.AsyncioWorker"),
    ("gaw.AsyncioWorker", {"asgi_loop": "uvloop"}, "asgi_loop = 'uvloop' contradicts",
     "gaw.UvloopWorker"),
    ("gaw.H11Worker", {"asgi_loop": "uvloop"}, "asgi_loop = 'uvloop' contradicts",
     "gaw.UvloopWorker"),
    ("gaw.UvloopWorker", {"http_parser": "python"}, "http_parser = 'python' contradicts",
     "gaw.H11Worker"),
    ("gaw.AsyncioWorker", {"http_parser": "python"}, "http_parser = 'python' contradicts",
     "gaw.H11Worker"),
    ("gaw.H11Worker", {"http_parser": "fast"}, "http_parser = 'fast' contradicts",
     "gaw.UvloopWorker"),
]


@pytest.mark.skipif(not all(HAS_SETTINGS.values()),
                    reason="this Gunicorn has no asgi_loop / http_parser settings")
@pytest.mark.parametrize(("spec", "settings", "message", "advice"), CONTRADICTING)
def test_contradicting_settings_stop_the_worker_at_boot(
        spec: str, settings: dict[str, str], message: str, advice: str) -> None:
    server = GunicornProcess(APP, spec, settings=settings)
    try:
        server.start(wait=False)
        assert server.proc is not None
        assert server.proc.wait(30) == 3, server.logs()
        lines = [line for line in server.logs().splitlines() if message in line]
        assert len(lines) == 1, server.logs()
        assert f"use -k {advice}" in lines[0]
    finally:
        server.stop()
