"""Shared fixtures: the worker classes under test and a factory of real gunicorn servers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from gunicorn_process import GunicornProcess

from gunicorn_async_workers.http.parsers import H11Parser, HttptoolsParser, ParserAdapter

# Every integration test runs once per worker class: a later class is one more entry here.
WORKER_CLASSES = os.environ.get(
    "GAW_TEST_WORKER_CLASSES", "gaw.UvloopWorker,gaw.AsyncioWorker,gaw.H11Worker").split(",")


# Unit tests of the protocol and parsers run once per parser adapter.
PARSER_CLASSES: list[type[ParserAdapter]] = [HttptoolsParser, H11Parser]


@pytest.fixture(params=PARSER_CLASSES, ids=lambda cls: cls.__name__)
def parser_class(request: pytest.FixtureRequest) -> type[ParserAdapter]:
    return request.param


@pytest.fixture(params=WORKER_CLASSES)
def worker_class(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def gunicorn(worker_class: str) -> Iterator:
    """Factory: `gunicorn(app, **kwargs)` starts a server that is stopped after the test."""
    started: list[GunicornProcess] = []

    def start(app: str, *, wait: bool = True, **kwargs: object) -> GunicornProcess:
        kwargs.setdefault("worker_class", worker_class)
        proc = GunicornProcess(app, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start(wait=wait)

    yield start
    for proc in started:
        proc.stop()
