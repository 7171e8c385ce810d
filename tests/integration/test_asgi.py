"""The ASGI contract as an app sees it: scope contents, receive/send semantics, app failures,
ASGI 2 apps, and real Starlette and FastAPI apps."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, serving, wait_for
from raw_http import RawResponse, ResponseReader, http

APP = "apps.http_behaviour:app"
ROOT_PATH = "/api"


def serve(app: str, worker_class: str, **settings: object) -> Iterator[GunicornProcess]:
    yield from serving(GunicornProcess(app, worker_class, settings=settings))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """The behaviour app mounted at ROOT_PATH; tests only add to its error log."""
    yield from serve(APP, request.param, root_path=ROOT_PATH)


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def legacy_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    yield from serve("apps.http_behaviour:LegacyApp", request.param)


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def starlette_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    yield from serve("apps.frameworks:starlette_app", request.param)


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def fastapi_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    yield from serve("apps.frameworks:fastapi_app", request.param)


def get_json(server: GunicornProcess, target: str, *headers: str,
             version: str = "HTTP/1.1") -> dict:
    """GET `target` on a fresh connection (closed by the server after it); the JSON body."""
    with server.connect() as s:
        s.sendall(http("GET", target, *headers, "Connection: close",
                       version=version))
        resp = ResponseReader(s).read_response()
    assert resp.status == 200, resp
    return json.loads(resp.body)



# -- scope ----------------------------------------------------------------------------------
def test_scope_fields(server: GunicornProcess) -> None:
    with server.connect() as s:
        client = s.getsockname()
        s.sendall(http("GET", "/scope/a%20b?x=1&y=%20", "X-Dup: one",
                       "X-Mixed-Case: v", "X-Dup: two", "Connection: close"))
        resp = ResponseReader(s).read_response()
    assert resp.status == 200, resp
    scope = json.loads(resp.body)
    types = scope["_types"]

    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert isinstance(scope["asgi"].get("spec_version"), str)
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == ROOT_PATH
    # The path is percent-decoded. Whether it carries root_path in front is the server's
    # reading of the spec; both readings end with the request's own path.
    assert scope["path"] in ("/scope/a b", ROOT_PATH + "/scope/a b")
    assert types["raw_path"] == "bytes"
    assert scope["raw_path"] in ("/scope/a%20b", ROOT_PATH + "/scope/a%20b")
    assert (types["query_string"], scope["query_string"]) == ("bytes", "x=1&y=%20")
    assert types["headers"] in ("list", "tuple") and scope["_header_types"] == ["bytes,bytes"]
    assert scope["headers"] == [["host", "test"], ["x-dup", "one"], ["x-mixed-case", "v"],
                                ["x-dup", "two"], ["connection", "close"]]
    assert scope["client"] == [client[0], client[1]]
    assert scope["server"] == [server.host, server.port]


def test_scope_state_carries_lifespan_startup_state(server: GunicornProcess) -> None:
    scope = get_json(server, "/scope")
    assert scope["_types"].get("state") == "dict", "no state dict in the scope"
    assert scope["state"]["lifespan"] == "started"


def test_scope_http_version_10(server: GunicornProcess) -> None:
    scope = get_json(server, "/scope", version="HTTP/1.0")
    assert scope["http_version"] == "1.0"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_scope_method(server: GunicornProcess, method: str) -> None:
    with server.connect() as s:
        s.sendall(http(method, "/scope", "Content-Length: 0", "Connection: close"))
        resp = ResponseReader(s).read_response()
    assert json.loads(resp.body)["method"] == method


def test_underscore_header_dropped_under_default_header_map(server: GunicornProcess) -> None:
    """Gunicorn's default header_map="drop": a name with "_" never reaches the app."""
    scope = get_json(server, "/scope", "X_Forwarded_For: 6.6.6.6", "X-Forwarded-For: 1.2.3.4")
    names = [name for name, _ in scope["headers"]]
    assert "x_forwarded_for" not in names
    assert ["x-forwarded-for", "1.2.3.4"] in scope["headers"]


# -- receive --------------------------------------------------------------------------------
def read_until(s: socket.socket, buf: bytearray, needle: bytes, timeout: float = 5.0) -> None:
    """Receive into `buf` until it contains `needle` (bounded)."""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} not received; got {bytes(buf)!r}"
        s.settimeout(remaining)
        data = s.recv(65536)
        assert data, f"closed before {needle!r}; got {bytes(buf)!r}"
        buf += data


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_body_streams_as_it_arrives(server: GunicornProcess, framing: str) -> None:
    """Each piece reaches the app (more_body=True) before the client sends the next one."""
    pieces = [b"aaaaa", b"bbbbbbb", b"ccc"]
    if framing == "chunked":
        head = "Transfer-Encoding: chunked"
        wire = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
        wire[-1] += b"0\r\n\r\n"
    else:
        head = f"Content-Length: {sum(map(len, pieces))}"
        wire = list(pieces)
    with server.connect() as s:
        s.sendall(http("POST", "/duplex", head))
        buf = bytearray()
        for i, (piece, data) in enumerate(zip(pieces, wire, strict=True)):
            s.sendall(data)
            more = int(i < len(pieces) - 1)
            # the app echoes "<len> <more_body> <body>" for every http.request message
            read_until(s, buf, b"%d %d %s\n" % (len(piece), more, piece))
        read_until(s, buf, b"end\n")


def run_disconnect(server: GunicornProcess, record: Path) -> list[str]:
    """Request /disconnect, close once the app waits in receive(); the app's notes."""
    with server.connect() as s:
        s.sendall(http("GET", f"/disconnect?record={record}"))
        wait_for(lambda: record.exists() and "waiting" in record.read_text(), 5,
                 what="app waiting in receive()")
    # the socket is closed now
    wait_for(lambda: any(line.startswith(("send-", "cancelled"))
                         for line in record.read_text().splitlines()), 8,
             what="the app's send after the disconnect")
    return record.read_text().splitlines()


def test_disconnect_delivered_to_app_waiting_in_receive(
        server: GunicornProcess, tmp_path: Path) -> None:
    notes = run_disconnect(server, tmp_path / "record")
    assert notes[:2] == ["waiting", "http.disconnect"], notes


def test_send_after_disconnect_raises_oserror(server: GunicornProcess, tmp_path: Path) -> None:
    notes = run_disconnect(server, tmp_path / "record")
    outcome = notes[-1]
    assert outcome.startswith("send-raised ") and outcome.endswith(" oserror=True"), notes


# -- app failures ---------------------------------------------------------------------------
def test_exception_before_start_is_500_and_logged_once(server: GunicornProcess) -> None:
    mark = len(error_log(server))
    with server.connect() as s:
        s.sendall(http("GET", "/raise_before", "Connection: close"))
        resp = ResponseReader(s).read_response()
    assert resp.status == 500
    wait_for(lambda: "raise-before-start marker" in error_log(server)[mark:], 5,
             what="the exception in the error log")
    get_json(server, "/echo")  # one more round trip: anything else logged would be in by now
    logged = error_log(server)[mark:]
    errors = [line for line in logged.splitlines() if " [ERROR] " in line]
    assert len(errors) == 1, logged
    assert "Traceback (most recent call last)" in logged
    assert logged.count("RuntimeError: raise-before-start marker") == 1, logged


@pytest.mark.parametrize("mode", ["length", "chunked"])
def test_exception_after_start_leaves_response_incomplete(
        server: GunicornProcess, mode: str) -> None:
    mark = len(error_log(server))
    with server.connect() as s:
        s.sendall(http("GET", f"/raise_after?mode={mode}"))
        reader = ResponseReader(s)
        with pytest.raises(EOFError):
            reader.read_response()  # the server must close, not complete the framing
    wait_for(lambda: "raise-after-start marker" in error_log(server)[mark:], 5,
             what="the exception in the error log")


def test_return_without_response_is_500(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/noresponse", "Connection: close"))
        resp = ResponseReader(s).read_response()
    assert resp.status == 500


def test_worker_survives_app_failures(server: GunicornProcess) -> None:
    pids = server.worker_pids()
    for target in ("/raise_before", "/noresponse", "/raise_after"):
        with server.connect() as s:
            s.sendall(http("GET", target, "Connection: close"))
            with contextlib.suppress(EOFError):  # /raise_after's response is cut short
                ResponseReader(s).read_response()
    doc = get_json(server, "/echo?still-serving")
    assert doc["query_string"] == "still-serving"
    assert server.worker_pids() == pids


# -- other application shapes ---------------------------------------------------------------
def test_asgi2_app_served(legacy_server: GunicornProcess) -> None:
    with legacy_server.connect() as s:
        s.sendall(http("POST", "/legacy?x", "Content-Length: 5", body=b"hello"))
        reader = ResponseReader(s)
        first = reader.read_response()
        s.sendall(http("GET", "/again", "Connection: close"))
        second = reader.read_response()
    assert first.status == 200, first
    assert json.loads(first.body) == {"asgi2": True, "path": "/legacy", "method": "POST",
                                      "body": "hello"}
    assert json.loads(second.body)["path"] == "/again"


def test_starlette_app(starlette_server: GunicornProcess) -> None:
    with httpx.Client(base_url=starlette_server.url, timeout=10) as client:
        root = client.get("/")
        state = client.get("/state")
        posted = client.post("/items", json={"name": "widget", "n": [1, 2, 3]})
    assert (root.status_code, root.text) == (200, "hello from starlette")
    assert (state.status_code, state.text) == (200, "set by lifespan")
    assert posted.status_code == 201
    assert posted.json() == {"framework": "starlette", "received": {"name": "widget",
                                                                    "n": [1, 2, 3]},
                             "path": "/items"}


def test_fastapi_app(fastapi_server: GunicornProcess) -> None:
    with httpx.Client(base_url=fastapi_server.url, timeout=10) as client:
        root = client.get("/")
        posted = client.post("/items", json={"name": "widget", "price": 2.5, "tags": ["a"]})
        invalid = client.post("/items", json={"name": "widget"})
        docs = client.get("/openapi.json")
    assert (root.status_code, root.json()) == (200, {"framework": "fastapi"})
    assert posted.status_code == 201
    assert posted.json() == {"framework": "fastapi",
                             "received": {"name": "widget", "price": 2.5, "tags": ["a"]}}
    assert invalid.status_code == 422
    assert docs.status_code == 200 and "/items" in docs.json()["paths"]


def test_response_headers_from_app_kept_in_order(server: GunicornProcess) -> None:
    """ASGI: response header order "must be preserved"; repeated fields stay separate."""
    with server.connect() as s:
        s.sendall(http("GET", "/headers", "Connection: close"))
        resp: RawResponse = ResponseReader(s).read_response()
    app_names = {b"set-cookie", b"x-one", b"content-type", b"content-length", b"x-two"}
    sent = [(name.lower(), value) for name, value in resp.headers if name.lower() in app_names]
    assert sent == [
        (b"set-cookie", b"a=1; Path=/"),
        (b"x-one", b"1"),
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"b=2; Path=/"),
        (b"content-length", b"7"),
        (b"x-two", b"2"),
    ]
    assert resp.body == b"headers"
