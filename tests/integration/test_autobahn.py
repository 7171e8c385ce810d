"""The Autobahn|Testsuite's cases 1-7 and 10 against each worker class: every case OK.

A real gunicorn serves the `/echo` route of tests/apps/ws_apps.py; Autobahn's `wstest` (a
Python 2.7 program, installed once into `.cache/` by tests/autobahn_suite.py) plays the client
in `fuzzingclient` mode and judges each case. OK is the strict verdict: NON-STRICT (the right
close, but late or after losing a message), FAILED and UNIMPLEMENTED all fail the test,
INFORMATIONAL passes only for the three cases Autobahn judges no other way, and NON-STRICT
only for the cases of `autobahn_suite.KNOWN_NON_STRICT` (none now; the test fails once one
of them passes, so the list only shrinks). Each worker class is run twice: on the WebSocket
fast path, and through the `websockets` library's public API only (the fallback where the
fast path's self-test fails, forced here by GAW_TEST_WEBSOCKET_PUBLIC_API). Sections 9, 12 and
13 take minutes: `python -m tests.autobahn_suite --full` runs them (fast path).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from autobahn_suite import CI_CASES, INSTALL_TIMEOUT, Unavailable, describe, install, run
from gunicorn_process import GunicornProcess

from gunicorn_async_workers.asgi.websockets_internals import PUBLIC_API_ENV

# wstest takes about 15 s for these cases; the bounds are for a suite that hangs (the first
# test also waits for the install, about 75 s on a machine that has never installed it).
WSTEST_TIMEOUT = 300.0


@pytest.fixture(scope="session")
def wstest() -> Path:
    try:
        return install()
    except Unavailable as exc:
        pytest.skip(f"Autobahn|Testsuite not run: {exc}")


@pytest.mark.timeout(INSTALL_TIMEOUT + WSTEST_TIMEOUT + 60)
@pytest.mark.parametrize("api", ["fast-path", "public-api"])
def test_autobahn_cases_1_to_7_and_10_all_ok(wstest: Path, gunicorn, worker_class: str,
                                             tmp_path: Path, api: str) -> None:
    env = {PUBLIC_API_ENV: "1"} if api == "public-api" else {}
    server: GunicornProcess = gunicorn("apps.ws_apps:app", env=env)
    results = run(wstest, {worker_class: f"ws://127.0.0.1:{server.port}/echo"}, tmp_path,
                  CI_CASES, timeout=WSTEST_TIMEOUT)[worker_class]
    assert len(results) == 247, f"wstest ran {len(results)} cases, expected 247"
    bad = describe(results)
    assert not bad, (f"Autobahn cases not OK for {worker_class} on the {api} "
                     f"(reports in {tmp_path}):\n{bad}")
