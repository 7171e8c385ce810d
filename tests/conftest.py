"""Shared fixtures: the worker classes under test and a factory of real gunicorn servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import compiled_module
import corpus
import headless_chromium
import pytest
from gunicorn_process import GunicornProcess

from gunicorn_async_workers.http.parsers import H11Parser, HttptoolsParser, ParserAdapter

# Every integration test runs once per worker class: a later class is one more entry here.
WORKER_CLASSES = os.environ.get(
    "GAW_TEST_WORKER_CLASSES", "gaw.UvloopWorker,gaw.AsyncioWorker,gaw.H11Worker").split(",")


# HTTP/2 does not use the HTTP/1.1 parser: under H11Worker it is AsyncioWorker's code on the
# same loop, so the HTTP/2 integration tests run on the classes that differ in it (the
# h2spec cases still run on every class).
H2_WORKER_CLASSES = [c for c in WORKER_CLASSES if c != "gaw.H11Worker"] or WORKER_CLASSES


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


# -- Skips CI does not accept ---------------------------------------------------------------
# Tests that need something a developer's machine may lack, but CI must have, skip with a
# reason that starts with one of these (each module says where its thing comes from). A
# developer's run may live with that; CI (CI=true) may not: such a skip fails the run, after
# every test has reported.
CI_REQUIRED = {
    corpus.SKIP_REASON: "the conformance corpus",  # tests/corpus.py fetches it
    headless_chromium.SKIP_REASON: "Chromium and chromedriver",  # .ci/run installs them
    compiled_module.SKIP_REASON: "the compiled head reader",  # CI has a C compiler
    compiled_module.SANITIZER_SKIP_REASON: "the sanitizers",  # and gcc's ASan and UBSan
}
_required_skips: dict[str, list[str]] = {reason: [] for reason in CI_REQUIRED}


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        for reason, skipped in _required_skips.items():
            if reason in str(report.longrepr):
                skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _under_ci() and any(_required_skips.values()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _under_ci():
        return
    for reason, skipped in _required_skips.items():
        if skipped:
            terminalreporter.write_line(
                f"CI: {len(skipped)} tests skipped for want of {CI_REQUIRED[reason]} "
                f"(first: {skipped[0]}); that fails the run", red=True)
