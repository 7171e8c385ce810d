"""Gunicorn's proxy settings (forwarded_allow_ips, secure_scheme_headers) and its access log
settings (accesslog, access_log_format, logger_class) as honoured by the worker."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, serving, wait_for
from raw_http import RawResponse, ResponseReader

APP = "apps.http_behaviour:app"
ACCESS_FORMAT = ('%(h)s "%(r)s" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s '
                 '%({x-test}i)s %({content-type}o)s %(L)s')


def serve(worker_class: str, env: dict[str, str] | None = None,
          **settings: object) -> Iterator[GunicornProcess]:
    yield from serving(GunicornProcess(APP, worker_class, settings=settings, env=env))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def trusted(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornProcess]:
    """Our 127.0.0.1 peer is a trusted proxy; the access log goes to a file, through
    RecordingLogger (which also notes each access() call in its own record file)."""
    base = tmp_path_factory.mktemp("access")
    yield from serve(request.param, env={"GAW_TEST_ACCESS_RECORD": str(base / "record")},
                     forwarded_allow_ips="127.0.0.1", accesslog=str(base / "access.log"),
                     access_log_format=ACCESS_FORMAT,
                     logger_class="apps.custom_logger.RecordingLogger")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def untrusted(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """Only 10.9.9.9 is a trusted proxy, not our peer; no access log is configured."""
    yield from serve(request.param, forwarded_allow_ips="10.9.9.9")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def custom_logger(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornProcess]:
    """logger_class is RecordingLogger; no accesslog (like a statsd-style logger)."""
    record = tmp_path_factory.mktemp("record") / "access-record"
    yield from serve(request.param, env={"GAW_TEST_ACCESS_RECORD": str(record)},
                     logger_class="apps.custom_logger.RecordingLogger")


def exchange(server: GunicornProcess, target: str, *headers: str) -> RawResponse:
    """One GET with `headers` on a fresh connection; the server closes after it."""
    raw = "\r\n".join([f"GET {target} HTTP/1.1", "Host: test", *headers, "Connection: close"])
    with server.connect() as s:
        s.sendall((raw + "\r\n\r\n").encode("latin-1"))
        resp = ResponseReader(s).read_response()
        resp.client = s.getsockname()  # type: ignore[attr-defined]
    return resp


def scope_of(server: GunicornProcess, *headers: str) -> dict:
    resp = exchange(server, "/scope", *headers)
    assert resp.status == 200, resp
    scope = json.loads(resp.body)
    scope["_client_socket"] = list(resp.client)  # type: ignore[attr-defined]
    return scope


# -- secure scheme headers ------------------------------------------------------------------
def test_trusted_forwarded_proto_sets_https(trusted: GunicornProcess) -> None:
    assert scope_of(trusted, "X-Forwarded-Proto: https")["scheme"] == "https"


@pytest.mark.parametrize("header", ["X-Forwarded-Ssl: on", "X-Forwarded-Protocol: ssl"])
def test_trusted_other_secure_headers_set_https(trusted: GunicornProcess, header: str) -> None:
    assert scope_of(trusted, header)["scheme"] == "https"


def test_trusted_without_secure_headers_stays_http(trusted: GunicornProcess) -> None:
    assert scope_of(trusted)["scheme"] == "http"


def test_untrusted_forwarded_proto_ignored(untrusted: GunicornProcess) -> None:
    assert scope_of(untrusted, "X-Forwarded-Proto: https")["scheme"] == "http"


def test_trusted_conflicting_scheme_headers_refused(trusted: GunicornProcess) -> None:
    with trusted.connect() as s:
        s.sendall(b"GET /scope HTTP/1.1\r\nHost: test\r\nX-Forwarded-Proto: https\r\n"
                  b"X-Forwarded-Ssl: off\r\n\r\n")
        reader = ResponseReader(s)
        resp = reader.read_response()
        assert resp.status == 400
        assert reader.at_eof()


def test_untrusted_conflicting_scheme_headers_ignored(untrusted: GunicornProcess) -> None:
    scope = scope_of(untrusted, "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off")
    assert scope["scheme"] == "http"


def test_client_stays_socket_peer_behind_trusted_proxy(trusted: GunicornProcess) -> None:
    scope = scope_of(trusted, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
    assert scope["client"] == scope["_client_socket"]


# -- access log -----------------------------------------------------------------------------
def access_log_path(server: GunicornProcess) -> Path:
    return Path(str(server.settings["accesslog"]))


def lines_with(path: Path, marker: str) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if marker in line]


def test_access_log_line_has_the_configured_atoms(trusted: GunicornProcess) -> None:
    marker = f"probe-{uuid.uuid4().hex}"
    resp = exchange(trusted, "/echo?a=1&b=two", f"X-Test: {marker}",
                    "X-Forwarded-For: 203.0.113.7")
    assert resp.status == 200
    path = access_log_path(trusted)
    wait_for(lambda: lines_with(path, marker), 5, what="the access log line")
    exchange(trusted, "/echo?after")  # a second line, so a duplicate of the first would be in
    wait_for(lambda: lines_with(path, "/echo?after"), 5, what="the second access log line")
    lines = lines_with(path, marker)
    assert len(lines) == 1, lines
    expected = (rf'127\.0\.0\.1 "GET /echo\?a=1&b=two HTTP/1\.1" 200 {len(resp.body)} '
                rf'GET /echo a=1&b=two HTTP/1\.1 {marker} application/json \d+\.\d{{6}}')
    assert re.fullmatch(expected, lines[0]), lines[0]


def test_no_access_log_written_when_not_configured(untrusted: GunicornProcess) -> None:
    marker = f"unlogged-{uuid.uuid4().hex}"
    assert exchange(untrusted, f"/echo?{marker}").status == 200
    assert exchange(untrusted, "/echo?second").status == 200
    assert marker not in untrusted.logs()
    written = sorted(p.name for p in untrusted.dir.iterdir())
    assert written == ["error.log", "gunicorn.conf.py", "output.log"], written


def assert_access_recorded(server: GunicornProcess) -> None:
    record = Path(server.extra_env["GAW_TEST_ACCESS_RECORD"])
    marker = f"custom-{uuid.uuid4().hex}"
    assert exchange(server, f"/echo?{marker}").status == 200
    wait_for(lambda: lines_with(record, marker), 5, what="RecordingLogger.access() called")
    assert lines_with(record, marker) == [f"GET /echo?{marker} 200"]


def test_custom_logger_class_used_with_accesslog(trusted: GunicornProcess) -> None:
    assert_access_recorded(trusted)


def test_custom_logger_class_used_without_accesslog(custom_logger: GunicornProcess) -> None:
    """Gunicorn's sync and gthread workers call logger.access() for every request, whether
    or not `accesslog` is set: loggers that report elsewhere (statsd) depend on it."""
    assert_access_recorded(custom_logger)
