"""Gunicorn's proxy settings (forwarded_allow_ips, secure_scheme_headers, proxy_protocol,
proxy_allow_ips) and its logging settings (accesslog, access_log_format, logger_class,
errorlog, loglevel, capture_output, logconfig_dict) as honoured by the worker."""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gunicorn.config
import pytest
from conftest import WORKER_CLASSES
from corpus import MANIFEST, wire_bytes
from gunicorn_process import (
    HAS_GUNICORN_ASGI,
    GunicornProcess,
    error_log,
    serving,
    wait_for,
)
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


# -- PROXY protocol (proxy_protocol, proxy_allow_ips) ---------------------------------------
# The same bytes go to our worker and to Gunicorn's reference worker (`-k sync` for a WSGI
# app, `-k asgi` for an ASGI app), each case on its own connection; what the app saw (or the
# refusal) is compared. The PROXY headers of the shared corpus come first, then our own.
PP_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def pp_v2(command: int, family_proto: int, body: bytes, version: int = 2) -> bytes:
    return PP_V2 + bytes([(version << 4) | command, family_proto]) + len(body).to_bytes(2, "big") \
        + body


def pp_v2_inet(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    return pp_v2(1, 0x11, ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
                 + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + tlvs)


def corpus_proxy_headers() -> dict[str, bytes]:
    """The PROXY header (the bytes before the HTTP request) of each corpus `pp_` file."""
    out = {}
    for entry in MANIFEST:
        if "pp_" not in entry["file"]:
            continue
        data = wire_bytes(entry)  # skips the calling test where the corpus is missing
        if data.startswith(PP_V2):
            data = data[:16 + int.from_bytes(data[14:16], "big")]
        elif data.startswith(b"PROXY "):
            data = data[:data.index(b"\r\n") + 2]
        else:
            data = b""  # pp_03: no PROXY header although the setting is on
        out[f"corpus-{entry['file']}"] = data
    return out


OWN_PROXY_HEADERS: dict[str, bytes] = {
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 8443\r\n",
    "v2-tlv": pp_v2_inet("203.0.113.9", "198.51.100.1", 40000, 443, tlvs=b"\x04\x00\x01\x00"),
    "v1-bad-port": b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
    "v1-wrong-family": b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
    "v1-udp": b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
    "v2-version-3": pp_v2(1, 0x11, bytes(12), version=3),
    "v2-command-15": pp_v2(15, 0x11, bytes(12)),
    "v2-udp": pp_v2(1, 0x12, bytes(12)),
    "v2-unix": pp_v2(1, 0x31, bytes(216)),
    "v2-short-inet": pp_v2(1, 0x11, bytes(8)),
}


def proxy_cases() -> dict[str, bytes]:
    """The corpus's PROXY headers first, then our own (looked up when a test runs)."""
    return {**corpus_proxy_headers(), **OWN_PROXY_HEADERS}

# Cases Gunicorn answers badly, where ours follows the PROXY protocol specification instead:
# a v2 LOCAL header (a proxy's own health check) gives Gunicorn's environ REMOTE_ADDR None
# and REMOTE_PORT "None", where ours keeps the socket's peer; v1 UNKNOWN, which the
# specification says a receiver must accept (using the socket's addresses), Gunicorn
# refuses with 400.
PROXY_OWN_CASES: dict[str, bytes] = {
    "v2-local": pp_v2(0, 0x00, b""),
    "v1-unknown": b"PROXY UNKNOWN\r\n",
}
ENVIRON_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "PROXY_PROTOCOL", "PROXY_ADDR", "PROXY_PORT",
                "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme")


def refusal(status: int, forbidden: bool) -> int | str:
    """A malformed PROXY header is refused before the app: Gunicorn's sync worker answers a
    bad v2 header 500 (its InvalidProxyHeader is not among its client errors) where ours
    answers 400, so statuses compare as "refused"; 403 (a peer not in proxy_allow_ips) too
    when not `forbidden`: Gunicorn's -k asgi reads such a header as a bad request line
    (400) where its sync worker and ours answer 403."""
    return status if status == 200 or (forbidden and status == 403) else "refused"


def proxied(server: GunicornProcess, header: bytes, target: str, second: bool = False,
            forbidden: bool = True) -> list[tuple[int | str, Any]]:
    """Send `header` then a GET of `target` (twice on one connection with `second`); the
    statuses (see `refusal`) and decoded JSON bodies (None when not 200)."""
    request = f"GET {target} HTTP/1.1\r\nHost: example.test\r\n\r\n".encode()
    last = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    data = header + (request + header + last if second else last)
    out = []
    with server.connect() as s:
        s.sendall(data)
        reader = ResponseReader(s)
        while not reader.at_eof():
            resp = reader.read_response()
            if resp.status >= 500 and server.worker_class.startswith("gaw."):
                raise AssertionError(f"our worker answered {resp.status} to a PROXY header")
            out.append((refusal(resp.status, forbidden),
                        json.loads(resp.body) if resp.status == 200 else None))
    return out


def environ_view(server: GunicornProcess, doc: dict[str, Any]) -> dict[str, Any]:
    keys = {k: doc.get(k) for k in ENVIRON_KEYS}
    assert keys["SERVER_PORT"] == str(server.port), keys  # the listener, not the proxy's
    keys["SERVER_PORT"] = "<listener>"
    if keys["REMOTE_ADDR"] == "127.0.0.1":
        keys["REMOTE_PORT"] = "<socket>"
    return keys


def scope_view(server: GunicornProcess, doc: dict[str, Any]) -> dict[str, Any]:
    # Gunicorn's -k asgi writes an IPv6 client from a v2 header uncompressed
    # (2001:db8:0:0:0:0:0:1); ours as its sync worker writes REMOTE_ADDR (2001:db8::1).
    client = [str(ipaddress.ip_address(doc["client"][0])), doc["client"][1]]
    if client[0] == "127.0.0.1":
        client = ["127.0.0.1", "<socket>"]
    assert doc["server"] == ["127.0.0.1", server.port], doc["server"]
    return {"client": client, "scheme": doc["scheme"]}


def proxy_answers(app: str, worker_class: str, cases: dict[str, bytes],
                  **settings: object) -> dict[str, Any]:
    wsgi = app == "apps.wsgi_apps:app"
    target, view = ("/environ", environ_view) if wsgi else ("/scope", scope_view)
    out: dict[str, Any] = {}
    with GunicornProcess(app, worker_class, settings=settings) as server:
        def seen(header: bytes, second: bool = False) -> list[tuple[int | str, Any]]:
            return [(status, doc if doc is None else view(server, doc)) for status, doc
                    in proxied(server, header, target, second=second, forbidden=wsgi)]

        for name, header in cases.items():
            out[name] = seen(header)
        if not (wsgi and worker_class == "sync"):  # sync serves one request per connection
            out["second-header-on-keep-alive"] = seen(
                proxy_cases()["corpus-valid/pp_01.http"], second=True)
    return out


@pytest.fixture(scope="module")
def proxy_reference() -> dict[tuple[str, str], dict[str, Any]]:
    """Gunicorn's own answers, computed once per (app, allowed) for every worker class."""
    return {}


# Gunicorn 27 has proxy_protocol off/v1/v2/auto and reads both versions; Gunicorn 23 has a
# boolean and reads v1 only (ours reads both for True): the comparisons need 27's modes.
PROXY_MODES = hasattr(gunicorn.config, "validate_proxy_protocol")
needs_proxy_modes = pytest.mark.skipif(
    not PROXY_MODES, reason="this Gunicorn's proxy_protocol is a boolean for v1 only")
PROXY_ON: object = "auto" if PROXY_MODES else True
PROXY_SETTINGS = {"allowed": {"proxy_protocol": PROXY_ON, "proxy_allow_ips": "127.0.0.1"},
                  "refused": {"proxy_protocol": PROXY_ON, "proxy_allow_ips": "10.9.9.9"},
                  "v1-only": {"proxy_protocol": "v1", "proxy_allow_ips": "127.0.0.1"},
                  "v2-only": {"proxy_protocol": "v2", "proxy_allow_ips": "127.0.0.1"}}
ASGI_REFERENCE = pytest.mark.skipif(
    not HAS_GUNICORN_ASGI, reason="this Gunicorn has no -k asgi worker to compare with")


@needs_proxy_modes
@pytest.mark.parametrize("setting", list(PROXY_SETTINGS))
@pytest.mark.parametrize("app", ["apps.wsgi_apps:app", pytest.param(APP, marks=ASGI_REFERENCE)])
def test_proxy_protocol_as_gunicorn(worker_class: str, app: str, setting: str,
                                    proxy_reference: dict[tuple[str, str], dict[str, Any]]
                                    ) -> None:
    key = (app, setting)
    if key not in proxy_reference:
        reference = "sync" if app == "apps.wsgi_apps:app" else "asgi"
        proxy_reference[key] = proxy_answers(app, reference, proxy_cases(),
                                             **PROXY_SETTINGS[setting])
    theirs = proxy_reference[key]
    ours = proxy_answers(app, worker_class, proxy_cases(), **PROXY_SETTINGS[setting])
    differing = {name: {"ours": ours[name], "gunicorn": theirs.get(name)}
                 for name in ours if name in theirs and ours[name] != theirs[name]}
    assert not differing, json.dumps(differing, indent=1)


def test_proxy_header_names_the_client(worker_class: str) -> None:
    """What the app and the access log see for an allowed peer's PROXY header."""
    answers = proxy_answers("apps.wsgi_apps:app", worker_class, proxy_cases(),
                            **PROXY_SETTINGS["allowed"])
    status, environ = answers["corpus-valid/pp_01.http"][0]
    assert status == 200
    assert environ == {"REMOTE_ADDR": "192.168.0.1", "REMOTE_PORT": "56324",
                       "PROXY_PROTOCOL": "TCP4", "PROXY_ADDR": "192.168.0.11",
                       "PROXY_PORT": "443", "SERVER_NAME": "127.0.0.1",
                       "SERVER_PORT": "<listener>", "wsgi.url_scheme": "http"}
    assert answers["v2-tlv"][0][1]["REMOTE_ADDR"] == "203.0.113.9"
    assert answers["corpus-valid/pp_05.http"][0][1]["REMOTE_ADDR"] == "2001:db8::1"
    assert [s for s, _ in answers["corpus-invalid/pp_02.http"]] == ["refused"]
    assert [s for s, _ in answers["second-header-on-keep-alive"]] == [200, "refused"]
    refused = proxy_answers("apps.wsgi_apps:app", worker_class, proxy_cases(),
                            **PROXY_SETTINGS["refused"])
    assert refused["corpus-valid/pp_01.http"] == [(403, None)]
    assert refused["corpus-invalid/pp_03.http"] == [(403, None)]  # refused before parsing
    assert refused["corpus-valid/pp_03.http"][0][0] == 200  # no header: served


def test_proxy_cases_gunicorn_gets_wrong(worker_class: str) -> None:
    wsgi = proxy_answers("apps.wsgi_apps:app", worker_class, PROXY_OWN_CASES,
                         **PROXY_SETTINGS["allowed"])
    for name in PROXY_OWN_CASES:
        status, environ = wsgi[name][0]
        assert status == 200, name
        assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["PROXY_PROTOCOL"] is None
    asgi = proxy_answers(APP, worker_class, PROXY_OWN_CASES, **PROXY_SETTINGS["allowed"])
    assert [a[0][1]["client"][0] for a in (asgi["v2-local"], asgi["v1-unknown"])] == [
        "127.0.0.1", "127.0.0.1"]


def test_access_log_h_is_the_proxied_client(worker_class: str, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = GunicornProcess(APP, worker_class, settings={
        **PROXY_SETTINGS["allowed"], "accesslog": str(log),
        "access_log_format": "%(h)s %({remote_port}e)s %(r)s"})
    with server:
        proxied(server, OWN_PROXY_HEADERS["v1-tcp6"], "/scope?proxied")
        wait_for(lambda: lines_with(log, "/scope?proxied"), 5, what="the access line")
    assert lines_with(log, "/scope?proxied") == [
        "2001:db8::1 65535 GET /scope?proxied HTTP/1.1"]


# -- logging settings (errorlog, loglevel, capture_output, logconfig_dict) -------------------
LOG_APPS = {"wsgi": "apps.log_apps:wsgi_app", "asgi": "apps.log_apps:asgi_app"}


def get_status(server: GunicornProcess, target: str) -> int:
    return exchange(server, target).status


@pytest.mark.parametrize("kind", list(LOG_APPS))
def test_capture_output_sends_app_output_to_errorlog(worker_class: str, kind: str) -> None:
    marker = f"captured-{uuid.uuid4().hex}"
    with GunicornProcess(LOG_APPS[kind], worker_class,
                         settings={"capture_output": True}) as server:
        assert get_status(server, f"/?{marker}") == 200
        wait_for(lambda: f"stderr {marker}" in error_log(server)
                 and f"stdout {marker}" in error_log(server), 5, what="captured output")
        assert marker not in server.output.read_text(errors="replace")


def test_without_capture_output_app_output_stays_on_stdout(worker_class: str) -> None:
    marker = f"loose-{uuid.uuid4().hex}"
    with GunicornProcess(LOG_APPS["wsgi"], worker_class) as server:
        assert get_status(server, f"/?{marker}") == 200
        wait_for(lambda: f"stdout {marker}" in server.output.read_text(errors="replace"), 5,
                 what="the app's output on the arbiter's stdout")
        # wsgi.errors is Gunicorn's: it writes to the error log whatever capture_output says.
        wait_for(lambda: f"wsgi.errors {marker}" in error_log(server), 5, what="wsgi.errors")
        assert f"stdout {marker}" not in error_log(server)


@pytest.mark.parametrize("kind", list(LOG_APPS))
def test_errorlog_dash_is_stderr(worker_class: str, kind: str) -> None:
    marker = f"raise-{uuid.uuid4().hex}"
    with GunicornProcess(LOG_APPS[kind], worker_class, settings={"errorlog": "-"}) as server:
        assert get_status(server, f"/?{marker}") == 500
        wait_for(lambda: marker in server.output.read_text(errors="replace"), 5,
                 what="the app's exception on stderr")
        text = server.output.read_text(errors="replace")
        assert re.search(r"\[ERROR\] (Error handling request|Exception in ASGI application)",
                         text), text
        assert not server.errorlog.exists()


@pytest.mark.parametrize("level", ["debug", "info"])
def test_loglevel_decides_what_the_worker_logs(worker_class: str, level: str) -> None:
    """A refused request is logged at DEBUG: present with loglevel debug, absent with info
    (an ERROR, the app's exception, is there in both)."""
    with GunicornProcess(LOG_APPS["wsgi"], worker_class, loglevel=level) as server:
        with server.connect() as s:
            s.sendall(b"GET /bad HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
            assert ResponseReader(s).read_response().status == 400
        assert get_status(server, "/?raise-level") == 500
        wait_for(lambda: "raise-level" in error_log(server), 5, what="the error line")
        refused = [line for line in error_log(server).splitlines()
                   if "[DEBUG] Invalid request" in line]
        assert bool(refused) == (level == "debug"), error_log(server)


def test_logconfig_dict_formats_and_routes_lines(worker_class: str, tmp_path: Path) -> None:
    """The error lines go where the harness reads them (its error log file), formatted."""
    server = GunicornProcess(LOG_APPS["asgi"], worker_class)
    errors, access = server.errorlog, tmp_path / "access.log"
    server.settings["logconfig_dict"] = {
        "version": 1, "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "formatters": {"marked": {"format": "MARKED %(levelname)s %(message)s"}},
        "handlers": {
            "errors": {"class": "logging.FileHandler", "filename": str(errors),
                       "formatter": "marked"},
            "access": {"class": "logging.FileHandler", "filename": str(access),
                       "formatter": "marked"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["errors"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False}},
    }
    marker = uuid.uuid4().hex
    with server:
        assert get_status(server, f"/?ok-{marker}") == 200
        assert get_status(server, f"/?raise-{marker}") == 500
        wait_for(lambda: len(lines_with(access, marker)) == 2, 5, what="two access lines")
        wait_for(lambda: lines_with(errors, f"raise-{marker}"), 5, what="the error line")
    assert all(line.startswith("MARKED INFO ") for line in lines_with(access, marker))
    assert " 200 " in lines_with(access, f"ok-{marker}")[0]
    assert " 500 " in lines_with(access, f"raise-{marker}")[0]
    assert lines_with(errors, "MARKED ERROR Exception in ASGI application")
