"""HTTP/2 with real clients: the same ASGI and WSGI apps over h2c (prior knowledge and
`Upgrade: h2c`), flow control both ways, the access log and hooks per stream, limits per
stream, graceful GOAWAY, and `max_requests` counting streams.

Clients: httpx (HTTP/2 by prior knowledge), curl (`--http2-prior-knowledge` and `--http2`),
h2load (many streams on few connections), and `tests/h2_wire.py`'s raw frames where a
frame must be seen (GOAWAY's last stream id). Cleartext only here; ALPN over TLS is in
test_tls.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import gunicorn.config as gunicorn_config
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from apps.http_behaviour import pattern
from conftest import H2_WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, wait_for, worker_pid
from h2_wire import Closed, H2Wire, Timeout
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame

ASGI_APP = "apps.http_behaviour:app"
WSGI_APP = "apps.wsgi_apps:app"
# Both cleartext ways in: the preface, and an HTTP/1.1 request that asks to upgrade.
H2C = {"http_protocols": "h2,h1", "http2_cleartext": "both"}
H2LOAD = shutil.which("h2load")


@pytest.fixture(params=H2_WORKER_CLASSES)
def worker_class(request: pytest.FixtureRequest) -> str:
    """The classes whose HTTP/2 differs (conftest.H2_WORKER_CLASSES)."""
    return str(request.param)


def h2_client() -> httpx.Client:
    """httpx speaking HTTP/2 by prior knowledge (http:// with HTTP/1.1 off)."""
    return httpx.Client(http1=False, http2=True, timeout=10.0)


def request(wire: H2Wire, stream_id: int, path: str,
            extra: list[tuple[str, str]] | None = None) -> None:
    wire.headers(stream_id, [(":method", "GET"), (":path", path), (":scheme", "http"),
                             (":authority", "localhost"), *(extra or [])])


def test_asgi_app_unchanged_over_h2c(gunicorn: object) -> None:
    """The scope says `http_version` 2, the Host comes from :authority, and bodies cross
    in both directions well past the 64 KiB default windows (flow control reopened as the
    app reads, and as the client reads)."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    with h2_client() as client:
        response = client.get(f"{proc.url}/scope?x=1")
        assert response.http_version == "HTTP/2"
        scope = response.json()
        assert scope["http_version"] == "2"
        assert (scope["method"], scope["path"], scope["query_string"]) == ("GET", "/scope",
                                                                         "x=1")
        assert ["host", f"127.0.0.1:{proc.port}"] in scope["headers"]
        assert "http.response.pathsend" not in scope["extensions"]  # no sendfile on h2
        body = os.urandom(3 * 1024 * 1024 + 17)
        echo = client.post(f"{proc.url}/echo", content=body).json()
        assert echo["length"] == len(body)
        assert echo["sha256"] == hashlib.sha256(body).hexdigest()
        big = client.get(f"{proc.url}/bigresponse?size=3000001")
        assert big.content == pattern(3000001)
        assert big.headers["content-length"] == "3000001"
        streamed = client.get(f"{proc.url}/stream?parts=5")
        assert streamed.status_code == 200 and "content-length" not in streamed.headers
        assert client.get(f"{proc.url}/status/204").content == b""
        head = client.head(f"{proc.url}/head")
        assert head.content == b"" and int(head.headers["content-length"]) > 0
        assert "connection" not in client.get(f"{proc.url}/close_header").headers
    assert " ERROR " not in error_log(proc)


def test_wsgi_app_unchanged_over_h2c(gunicorn: object, tmp_path: Path) -> None:
    """PEP 3333 under `wsgiref.validate` over HTTP/2: SERVER_PROTOCOL `HTTP/2`, wsgi.input
    streamed from the stream's DATA frames, a generator body and a `wsgi.file_wrapper` file
    as DATA frames."""
    proc: GunicornProcess = gunicorn(WSGI_APP, settings=H2C)  # type: ignore[operator]
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(700000))
    with h2_client() as client:
        sent = client.get(f"{proc.url}/v/file", params={"path": str(data)})
        assert sent.content == data.read_bytes()
        environ = client.get(f"{proc.url}/v/environ/x").json()
        assert environ["SERVER_PROTOCOL"] == "HTTP/2"
        assert environ["HTTP_HOST"] == f"127.0.0.1:{proc.port}"
        assert environ["wsgi.url_scheme"] == "http"
        body = os.urandom(1024 * 1024 + 3)
        read = client.post(f"{proc.url}/input?how=read", content=body).json()
        assert read["length"] == len(body)
        assert read["sha256"] == hashlib.sha256(body).hexdigest()
        big = client.get(f"{proc.url}/v/big?size=2000000")
        assert big.status_code == 200 and len(big.content) == 2000000
        assert client.get(f"{proc.url}/v/plain").status_code == 200
        assert client.get(f"{proc.url}/raise").status_code == 500
        # An app that fails before reading a large body: the client still gets the 500
        # (the rest of the body is read and dropped, the window kept open).
        assert client.post(f"{proc.url}/raise", content=body).status_code == 500
    assert "WSGIWarning" not in proc.logs()


def test_request_body_window_follows_the_app(gunicorn: object, tmp_path: Path) -> None:
    """A request body's window reopens as the app reads it: while the app has not read
    (it waits for a file), the client can send no more than the stream's window and the
    exchange's high-water mark (256 KiB) before the server stops granting window; once
    the app reads, the rest flows and the whole body arrives."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    entered, go = tmp_path / "entered", tmp_path / "go"
    body = os.urandom(4 * 1024 * 1024)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        client.initiate_connection()
        client.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                                (":authority", "localhost"),
                                (":path", f"/expect?entered={entered}&go={go}")])
        sock.sendall(client.data_to_send())
        received: list[bytes] = []
        ended = False

        def read(timeout: float) -> bool:
            """One read, its events handled; False when nothing came within `timeout`."""
            nonlocal ended
            sock.settimeout(timeout)
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                return False
            assert data, "the server closed the connection"
            for event in client.receive_data(data):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == 1:
                    received.append(event.data)
                    client.acknowledge_received_data(event.flow_controlled_length, 1)
                ended = ended or (isinstance(event, h2.events.StreamEnded)
                                  and event.stream_id == 1)
            sock.sendall(client.data_to_send())
            return True

        def send(data: bytes, stall: float) -> int:
            """Send `data` as far as the window allows; stop when the window stays shut
            for `stall` seconds. The bytes sent."""
            sent = 0
            while sent < len(data):
                window = min(client.local_flow_control_window(1),
                             client.max_outbound_frame_size)
                if window <= 0:
                    if not read(stall):
                        return sent
                    continue
                piece = data[sent:sent + window]
                client.send_data(1, piece)
                sock.sendall(client.data_to_send())
                sent += len(piece)
            return sent

        held = send(body, stall=1.0)
        assert held < len(body)
        assert held <= 256 * 1024 + 65535 + 16384, held
        go.touch()  # the app reads from now on: the rest flows as windows reopen
        assert send(body[held:], stall=10.0) == len(body) - held
        client.end_stream(1)
        sock.sendall(client.data_to_send())
        deadline = time.monotonic() + 20
        while not ended and time.monotonic() < deadline:
            read(1.0)
    assert ended
    assert len(b"".join(received)) == 4 + 4 * 1024 * 1024


def stream_blocks(wire: H2Wire, stream_id: int) -> tuple[list[dict[str, str]], bytes]:
    """Every header block of a stream, in order, and its body, up to END_STREAM."""
    deadline = time.monotonic() + 10
    blocks: list[dict[str, str]] = []
    body = b""
    while True:
        event = wire.next_event(deadline)
        assert not isinstance(event, Timeout | Closed), wire.seen[-8:]
        if getattr(event, "stream_id", None) != stream_id:
            continue
        decoded = getattr(event, "decoded", None)
        if decoded is not None:
            blocks.append(dict(decoded))
        if isinstance(event, DataFrame):
            body += event.data
        if isinstance(event, DataFrame | HeadersFrame) and "END_STREAM" in event.flags:
            return blocks, body


def test_asgi_extensions_over_h2(gunicorn: object, tmp_path: Path) -> None:
    """An HTTP/2 scope offers 103 Early Hints and (with `te: trailers`) trailers, not the
    file extensions; early hints go out as an interim HEADERS frame, trailers as the
    stream's last HEADERS frame; Starlette's FileResponse falls back to body messages."""
    (tmp_path / "small.bin").write_bytes(b"0123456789" * 1000)
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        "apps.extension_apps:app", settings=H2C, env={"GAW_TEST_FILES": str(tmp_path)})
    te = [("te", "trailers")]
    with H2Wire.open("127.0.0.1", proc.port) as wire:
        request(wire, 1, "/extensions", te)
        blocks, body = stream_blocks(wire, 1)
        assert blocks[0][":status"] == "200"
        assert sorted(json.loads(body)) == ["http.response.early_hint",
                                            "http.response.trailers"]
        request(wire, 3, "/early")
        blocks, body = stream_blocks(wire, 3)
        assert [b[":status"] for b in blocks] == ["103", "200"]
        assert blocks[0]["link"] == "</app.js>; rel=preload; as=script"  # the last of two
        assert body == b"ok"
        request(wire, 5, "/trailers?parts=3", te)
        blocks, body = stream_blocks(wire, 5)
        assert body == b"part0;part1;part2;"
        assert blocks[-1] == {"x-checksum": "abc", "x-count": "3"}
        request(wire, 7, "/starlette?file=small.bin")
        blocks, body = stream_blocks(wire, 7)
        assert blocks[0][":status"] == "200" and body == b"0123456789" * 1000


def test_proxy_header_then_the_preface(gunicorn: object) -> None:
    """With proxy_protocol, a PROXY header comes first and the HTTP/2 preface after it: the
    connection is HTTP/2 and the scope's client is the header's."""
    proxy_v1: object = "v1" if hasattr(gunicorn_config, "validate_proxy_protocol") else True
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={**H2C, "proxy_protocol": proxy_v1,
                            "proxy_allow_ips": "127.0.0.1"})
    sock = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
    sock.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 40123 80\r\n")
    with H2Wire(sock) as wire:
        wire.handshake()
        request(wire, 1, "/scope")
        response = wire.expect_response(1)
    assert response.status == 200
    scope = json.loads(response.body)
    assert scope["client"] == ["192.0.2.7", 40123]
    assert scope["http_version"] == "2"


@pytest.mark.parametrize("how", ["--http2-prior-knowledge", "--http2"])
def test_curl_prior_knowledge_and_upgrade(gunicorn: object, how: str) -> None:
    """curl with prior knowledge, and with `Upgrade: h2c` (101, then stream 1): both end
    on HTTP/2 with the app's answer."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    out = subprocess.run(
        ["curl", "-sS", how, "-o", "/dev/null", "-w", "%{http_version} %{response_code}",
         f"{proc.url}/head"], capture_output=True, timeout=20, check=True, text=True)
    assert out.stdout == "2 200"


def test_prior_knowledge_only_refuses_http1_from_trusted_peers(gunicorn: object) -> None:
    """`prior-knowledge` alone: a trusted peer is expected to speak HTTP/2 (as in Gunicorn,
    an HTTP/1.1 request from it gets 400); with `both` it is served."""
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={"http_protocols": "h2,h1", "http2_cleartext": "prior-knowledge"})
    assert httpx.get(f"{proc.url}/head", timeout=10).status_code == 400
    with h2_client() as client:
        assert client.get(f"{proc.url}/head").status_code == 200


def test_untrusted_peer_is_served_http1_only(gunicorn: object) -> None:
    """h2c is for peers in forwarded_allow_ips: anyone else is HTTP/1.x as with h2 off (the
    preface is then a bad HTTP/1.1 request)."""
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={**H2C, "forwarded_allow_ips": "10.1.2.3"})
    assert httpx.get(f"{proc.url}/head", timeout=10).status_code == 200
    with h2_client() as client, pytest.raises(httpx.HTTPError):
        client.get(f"{proc.url}/head")


@pytest.mark.skipif(H2LOAD is None, reason="h2load (Debian's nghttp2-client) is not installed")
def test_h2load_many_streams_all_answered(gunicorn: object) -> None:
    """h2load: 4 connections × 10 concurrent streams, 4,000 requests, every one a 2xx."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    assert H2LOAD is not None
    out = subprocess.run([H2LOAD, "-n", "4000", "-c", "4", "-m", "10", f"{proc.url}/head"],
                         capture_output=True, timeout=60, text=True).stdout
    assert "4000 succeeded, 0 failed, 0 errored" in out, out


def test_access_log_and_hooks_per_stream(gunicorn: object, tmp_path: Path) -> None:
    """One access line per stream, `%(H)s` HTTP/2; pre_request and post_request per stream."""
    hooks = tmp_path / "hooks.log"
    access = tmp_path / "access.log"
    config = (
        "def pre_request(worker, req):\n"
        f"    open({str(hooks)!r}, 'a').write('pre %s %s\\n' % (req.path, req.version))\n"
        "def post_request(worker, req, environ, resp):\n"
        f"    open({str(hooks)!r}, 'a').write('post %s %s\\n' % (req.path, resp.status))\n")
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={**H2C, "accesslog": str(access),
                            "access_log_format": "%(H)s %(m)s %(U)s %(s)s"},
        config_text=config)
    with h2_client() as client:
        for path in ("/head", "/status/404", "/head"):
            client.get(f"{proc.url}{path}")
    def lines(path: Path) -> list[str]:  # less the readiness probe's (HTTP/1.1)
        return [line for line in path.read_text().splitlines() if "__ready" not in line]

    wait_for(lambda: access.exists() and len(lines(access)) >= 3, what="three access lines")
    assert lines(access) == [
        "HTTP/2 GET /head 200", "HTTP/2 GET /status/404 404", "HTTP/2 GET /head 200"]
    assert lines(hooks) == ["pre /head (2, 0)", "post /head 200 OK",
                            "pre /status/404 (2, 0)", "post /status/404 404 Not Found",
                            "pre /head (2, 0)", "post /head 200 OK"]


def test_statsd_counts_each_stream(gunicorn: object) -> None:
    """Gunicorn's statsd logger sees one request per stream: its request counter, its
    status counter and a duration for each."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    with sock:
        proc: GunicornProcess = gunicorn(  # type: ignore[operator]
            ASGI_APP, settings={**H2C, "statsd_host": f"127.0.0.1:{sock.getsockname()[1]}",
                                "statsd_prefix": "h2test"})
        with h2_client() as client:
            for path in ("/head", "/head", "/status/404"):
                client.get(f"{proc.url}{path}")
        seen: list[str] = []
        deadline = time.monotonic() + 10

        def counted(name: str) -> int:
            return sum(1 for d in seen if d.startswith(f"h2test.gunicorn.{name}:"))

        while (counted("requests") < 4 or counted("request.status.404") < 1) and \
                time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                seen.append(sock.recv(65536).decode("ascii"))
            except TimeoutError:
                break
    # The readiness probe (HTTP/1.1) is one more request.
    assert counted("request.duration") == 4, seen
    assert counted("requests") == 4, seen
    assert counted("request.status.404") == 1, seen


def test_limits_per_stream(gunicorn: object) -> None:
    """limit_request_fields and max_body_size answer on the stream (431, 413) and the
    connection serves the next stream."""
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={**H2C, "limit_request_fields": 20, "max_body_size": 100000})
    with h2_client() as client:
        many = {f"x-field-{i}": "v" for i in range(30)}
        assert client.get(f"{proc.url}/head", headers=many).status_code == 431
        large = client.post(f"{proc.url}/echo", content=b"x" * 200000)
        assert large.status_code == 413
        assert client.post(f"{proc.url}/echo", content=b"y" * 1000).json()["length"] == 1000
    assert " ERROR " not in error_log(proc)




def read_until_goaway(wire: H2Wire, streams: list[int], timeout: float = 15.0,
                      goaway: GoAwayFrame | None = None) -> tuple[GoAwayFrame, set[int]]:
    """Frames until a GOAWAY has come (unless one is given) and every stream in `streams`
    has ended (or the connection closed): the GOAWAY and the streams that ended."""
    deadline = time.monotonic() + timeout
    ended: set[int] = set()
    while goaway is None or not set(streams) <= ended:
        event = wire.next_event(deadline)
        if isinstance(event, Timeout | Closed):
            break
        if isinstance(event, GoAwayFrame):
            goaway = event
        elif isinstance(event, DataFrame | HeadersFrame) and "END_STREAM" in event.flags:
            ended.add(event.stream_id)
    assert goaway is not None, f"no GOAWAY; frames: {wire.seen[-8:]}"
    return goaway, ended


def test_sigterm_sends_goaway_and_streams_taken_finish(gunicorn: object) -> None:
    """SIGTERM: GOAWAY (NO_ERROR) naming the last stream taken; a stream opened after it is
    refused (REFUSED_STREAM: the app never saw it); the streams already taken are answered
    in full before the connection closes."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    with H2Wire.open("127.0.0.1", proc.port) as wire:
        slow = [1, 3, 5]
        for stream_id in slow:
            request(wire, stream_id, "/stream?parts=3&delay=0.5")
        wire.expect("the first response's HEADERS",
                    lambda e: True if isinstance(e, HeadersFrame) else None)
        os.kill(worker_pid(proc), signal.SIGTERM)
        first = wire.expect_goaway(0)
        request(wire, 7, "/head")  # past the GOAWAY's last stream: refused, unseen
        wire.expect_rst_stream(7, 7)  # REFUSED_STREAM
        goaway, ended = read_until_goaway(wire, slow, goaway=first)
    assert goaway.error_code == 0 and goaway.last_stream_id == 5
    assert set(slow) <= ended


def test_client_goaway_lets_its_open_streams_finish(gunicorn: object) -> None:
    """A client that sends GOAWAY goes on with its open streams (RFC 9113 6.8): the
    WINDOW_UPDATEs it sends for a response larger than the window are taken, the response
    completes, then the server closes the connection."""
    proc: GunicornProcess = gunicorn(ASGI_APP, settings=H2C)  # type: ignore[operator]
    size = 300000  # more than the client's 65,535-byte window
    with H2Wire.open("127.0.0.1", proc.port) as wire:
        request(wire, 1, f"/bigresponse?size={size}")
        wire.expect("the response's HEADERS",
                    lambda e: True if isinstance(e, HeadersFrame) else None)
        wire.goaway(1, 0)
        body = b""
        deadline = time.monotonic() + 15
        while True:
            event = wire.next_event(deadline)
            assert not isinstance(event, Timeout | Closed | GoAwayFrame), wire.seen[-8:]
            if isinstance(event, DataFrame) and event.stream_id == 1:
                body += event.data
                if event.data:
                    wire.window_update(0, len(event.data))
                    wire.window_update(1, len(event.data))
                if "END_STREAM" in event.flags:
                    break
        assert body == pattern(size)
        wire.expect_close()


def test_max_requests_counts_streams(gunicorn: object) -> None:
    """max_requests counts streams: after that many, GOAWAY; the streams it names are
    answered, and the worker is replaced."""
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings={**H2C, "max_requests": 5})
    first = worker_pid(proc)
    with H2Wire.open("127.0.0.1", proc.port) as wire:
        sent = [1, 3, 5, 7, 9]
        # In one write, so one read: the readiness probe (HTTP/1.1) was the first request,
        # and the limit is reached inside this read, before any GOAWAY can go out.
        with wire.together():
            for stream_id in sent:
                request(wire, stream_id, "/head")
        goaway, ended = read_until_goaway(wire, sent)
    assert goaway.error_code == 0 and goaway.last_stream_id == 9
    assert set(sent) <= ended
    wait_for(lambda: [pid for pid in proc.worker_pids() if pid != first],
             what="a new worker after max_requests")


def test_header_timeout_closes_a_silent_h2_connection(gunicorn: object) -> None:
    """A connection that sends the preface and nothing else is closed after header_timeout
    (the idle wait before a first request), with GOAWAY."""
    proc: GunicornProcess = gunicorn(  # type: ignore[operator]
        ASGI_APP, settings=H2C, env={"GAW_HEADER_TIMEOUT": "1"})
    with H2Wire.open("127.0.0.1", proc.port, timeout=10) as wire:
        started = time.monotonic()
        goaway, _ended = read_until_goaway(wire, [])
        assert time.monotonic() - started >= 0.9  # the handshake took some of the second
        assert goaway.error_code == 0
        wire.expect_close()
    assert "Traceback" not in proc.logs()


_SUCCEEDED = re.compile(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded")


@pytest.mark.skipif(H2LOAD is None, reason="h2load (Debian's nghttp2-client) is not installed")
def test_no_stream_lost_across_sighup_and_max_requests(worker_class: str,
                                                       tmp_path: Path) -> None:
    """h2load keeps 4 connections × 10 streams busy (a new h2load whenever one ends: it
    does not reconnect after GOAWAY) across three SIGHUPs and `max_requests` recycling.
    Every stream the app started is answered with a 2xx: the app's count of requests it
    started equals h2load's count of successes. (Streams past a GOAWAY's last stream id
    are refused unseen by the app, which RFC 9113 makes safe to retry.)"""
    assert H2LOAD is not None
    started = tmp_path / "started"
    proc = GunicornProcess(
        "apps.reliability:app", worker_class, workers=2,
        settings={**H2C, "max_requests": 400, "max_requests_jitter": 50,
                  "graceful_timeout": 10},
        env={"GAW_TEST_STARTED": str(started)})
    succeeded: list[int] = []
    outputs: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            out = subprocess.run(
                [H2LOAD, "-n", "2000", "-c", "4", "-m", "10", f"{proc.url}/r?id=s&ms=1"],
                capture_output=True, timeout=60, text=True).stdout
            found = _SUCCEEDED.search(out)
            assert found is not None, out
            succeeded.append(int(found.group(1)))
            outputs.append(out)

    with proc:
        boots = proc.logs().count("Booting worker")
        thread = threading.Thread(target=load)
        thread.start()
        try:
            for _ in range(3):
                wait_for(lambda: len(succeeded) >= 1, timeout=30, what="load running")
                before = len(succeeded)
                assert proc.proc is not None
                os.kill(proc.proc.pid, signal.SIGHUP)
                wait_for(lambda b=before: len(succeeded) > b, timeout=30,  # type: ignore[misc]
                         what="load after a SIGHUP")
            wait_for(lambda: proc.logs().count("Booting worker") >= boots + 8, timeout=60,
                     what="max_requests recycling workers too")
        finally:
            stop.set()
            thread.join(timeout=90)
    assert not thread.is_alive()
    answered = sum(succeeded)
    noted = len(started.read_text().splitlines())
    assert answered > 0
    print(f"h2load runs: {len(succeeded)}, answered: {answered}, boots: "
          f"{proc.logs().count('Booting worker') - boots}")
    assert noted == answered, f"{noted} started by the app, {answered} answered"
