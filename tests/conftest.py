"""Shared fixtures: the worker classes under test and a factory of real gunicorn servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from corpus import SKIP_REASON
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


# -- The conformance corpus under CI ---------------------------------------------------------
# Tests that need Gunicorn's request corpus skip, with corpus.SKIP_REASON, where it cannot be
# had (tests/corpus.py). A developer's run may live with that; CI (CI=true) may not: such a
# skip fails the run, after every test has reported.
_corpus_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and SKIP_REASON in str(report.longrepr):
        _corpus_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _corpus_skips and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _corpus_skips and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        terminalreporter.write_line(
            f"CI: {len(_corpus_skips)} tests skipped for want of the conformance corpus "
            f"(first: {_corpus_skips[0]}); that fails the run", red=True)
