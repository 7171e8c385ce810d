"""The ASGI response extensions on a real Gunicorn, for every worker class: `pathsend` and
`zerocopysend` (files sent by the server: the loop's sendfile on the stdlib loop, 256 KiB
pieces read in a thread on uvloop), `early_hint` (103 Early Hints) and `trailers`, each
offered in the scope only where the connection can honour it, over plaintext and TLS. Raw
sockets and h11 (an independent client) read what went on the wire; one server per worker
class (and one TLS server).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import struct
import termios
from collections.abc import Iterator
from pathlib import Path

import h11
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, rss, serving, wait_for, worker_pid
from raw_http import RawResponse, ResponseReader, http
from test_tls import Pki, TlsGunicorn

APP = "apps.extension_apps:app"
SMALL = 5000
MEDIUM = (1 << 20) + 123  # more than one 256 KiB piece, not a multiple of one
BIG = 100 * (1 << 20)
SHRINKING = 8 * (1 << 20)
# What a worker may hold or read ahead while its client reads nothing: the piece in hand,
# the transport's buffer, the kernel's socket buffers. Far below the 100 MB file.
BOUND = 32 * (1 << 20)
CLOSE = "Connection: close"
# Long: a connection the server leaves open after a short body is not closed as idle
# before the test has seen it stay open.
KEEPALIVE = 30


def pattern(size: int, seed: bytes) -> bytes:
    """`size` bytes that differ from block to block (a misplaced piece shows)."""
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    return b"".join(b"%08d" % i + block[8:] for i in range(size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("extension-files")
    (base / "small.bin").write_bytes(pattern(SMALL, b"small"))
    (base / "medium.bin").write_bytes(pattern(MEDIUM, b"medium"))
    (base / "empty.bin").write_bytes(b"")
    (base / "dir").mkdir()
    block = pattern(MEDIUM, b"big")
    with open(base / "big.bin", "wb") as f:
        for index in range(BIG // MEDIUM + 1):
            f.write(b"%08d" % index + block[8:])
        f.truncate(BIG)
    return base


@pytest.fixture(scope="module")
def big_digest(files: Path) -> str:
    digest = hashlib.sha256()
    with open(files / "big.bin", "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest, files: Path) -> Iterator[GunicornProcess]:
    # DEBUG: a client gone mid-file is told by its DEBUG line.
    yield from serving(GunicornProcess(APP, request.param, settings={"keepalive": KEEPALIVE},
                                       env={"GAW_TEST_FILES": str(files)}, loglevel="debug"))


def exchange(server: GunicornProcess, *requests: bytes, head: bool = False
             ) -> list[RawResponse]:
    """Send the requests on one connection and read a response to each."""
    with server.connect() as s:
        s.sendall(b"".join(requests))
        reader = ResponseReader(s, 10)
        return [reader.read_response(head_request=head) for _ in requests]


def get(server: GunicornProcess, target: str, *headers: str, **kwargs: str) -> RawResponse:
    return exchange(server, http("GET", target, CLOSE, *headers, **kwargs))[0]


def h11_events(server: GunicornProcess, target: str, *headers: str) -> list[object]:
    """The events h11, as the client, reads of the response to one GET."""
    client = h11.Connection(h11.CLIENT)
    events: list[object] = []
    with server.connect() as s:
        s.settimeout(10)
        s.sendall(http("GET", target, CLOSE, *headers))
        client.send(h11.Request(method="GET", target=target,
                                headers=[("host", "test"), ("connection", "close")]))
        client.send(h11.EndOfMessage())
        while not events or not isinstance(events[-1], h11.EndOfMessage):
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(s.recv(65536))
            else:
                events.append(event)
    return events


def error_lines(server: GunicornProcess, mark: int) -> list[str]:
    return [line for line in error_log(server)[mark:].splitlines() if "[ERROR]" in line]


# -- the scope -------------------------------------------------------------------------------
def test_the_scope_offers_what_the_connection_can_honour(server: GunicornProcess) -> None:
    always = ["http.response.pathsend", "http.response.zerocopysend"]
    plain = json.loads(get(server, "/extensions").body)
    assert plain == sorted([*always, "http.response.early_hint"])
    for te in ("TE: trailers", "TE: deflate;q=0.5, Trailers"):
        assert json.loads(get(server, "/extensions", te).body) == sorted(
            [*always, "http.response.early_hint", "http.response.trailers"])
    assert json.loads(get(server, "/extensions", "TE: gzip").body) == plain
    # HTTP/1.0 has no interim responses and no chunked coding.
    assert json.loads(get(server, "/extensions", "TE: trailers",
                          version="HTTP/1.0").body) == sorted(always)


# -- pathsend ----------------------------------------------------------------------------------
def test_pathsend_sends_the_file_with_its_length(server: GunicornProcess,
                                                 files: Path) -> None:
    small = (files / "small.bin").read_bytes()
    medium = (files / "medium.bin").read_bytes()
    responses = exchange(server, http("GET", "/pathsend?file=medium.bin"),
                         http("GET", "/pathsend?file=small.bin"),
                         http("GET", "/pathsend?file=empty.bin"),
                         http("GET", "/pathsend?file=small.bin&length=5000", CLOSE))
    assert [(r.status, r.header(b"content-length"), r.body) for r in responses] == [
        (200, b"%d" % MEDIUM, medium), (200, b"5000", small), (200, b"0", b""),
        (200, b"5000", small)]
    assert all(not r.chunked for r in responses)


def test_pathsend_sends_no_body_to_head_nor_for_304(server: GunicornProcess) -> None:
    head, after = exchange(server, http("HEAD", "/pathsend?file=medium.bin"),
                           http("HEAD", "/pathsend?file=small.bin", CLOSE), head=True)
    assert (head.status, head.header(b"content-length")) == (200, b"%d" % MEDIUM)
    assert (after.status, after.header(b"content-length")) == (200, b"5000")
    # The connection went on after the first HEAD: no body was sent to it.
    not_modified, ok = exchange(server, http("GET", "/pathsend?file=medium.bin&status=304"),
                                http("GET", "/extensions", CLOSE))
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert ok.status == 200 and b"pathsend" in ok.body


@pytest.mark.parametrize(("target", "found"), [
    ("/pathsend?file=missing.bin", "No such file or directory"),
    ("/pathsend?file=dir", "not a regular file"),
    ("/pathsend?file=small.bin&length=4999", "content-length is 4999, its file 5000 bytes"),
], ids=["missing", "directory", "length-mismatch"])
def test_pathsend_of_a_file_that_cannot_be_sent_answers_500(
        server: GunicornProcess, target: str, found: str) -> None:
    pid = worker_pid(server)
    mark = len(error_log(server))
    with server.connect() as s:
        s.sendall(http("GET", target))
        reader = ResponseReader(s, 10)
        response = reader.read_response()
        assert response.status == 500
        assert response.header(b"connection") == b"close" and reader.at_eof()
    wait_for(lambda: any(found in line for line in error_log(server)[mark:].splitlines()),
             what=f"an error naming {found!r}")
    assert get(server, "/extensions").status == 200
    assert worker_pid(server) == pid


def proc_rchar(pid: int) -> int:
    """Bytes the process has read from files and sockets (sendfile counts too)."""
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def unread(sock: socket.socket) -> int:
    """Bytes waiting in a client socket, not read yet."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0])


def wait_until_stalled(pid: int, sock: socket.socket) -> None:
    """Until the worker has stopped reading the file for its client that reads nothing: what
    it read and what waits in the client's socket the same for 0.3 s (polled, bounded)."""
    samples: list[tuple[int, int]] = []

    def stalled() -> bool:
        samples.append((proc_rchar(pid), unread(sock)))
        return len(samples) >= 16 and len(set(samples[-16:])) == 1

    wait_for(stalled, timeout=20, what="the worker waiting for its client to read")


def slow_client(server: GunicornProcess) -> socket.socket:
    """A client whose socket holds little: what the server sends beyond it waits."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(10)
    s.connect((server.host, server.port))
    return s


def read_head(s: socket.socket) -> tuple[bytes, bytes]:
    """The response head (up to its blank line) and what came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(4096)
        assert piece, f"closed inside the head: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_pathsend_of_100_mb_holds_memory_bounded(server: GunicornProcess,
                                                 big_digest: str) -> None:
    pid = worker_pid(server)
    rss_before, read_before = rss(pid), proc_rchar(pid)
    with slow_client(server) as s:
        s.sendall(http("GET", "/pathsend?file=big.bin", CLOSE))
        head, rest = read_head(s)
        assert b"content-length: %d" % BIG in head.lower()
        wait_until_stalled(pid, s)
        read_ahead = proc_rchar(pid) - read_before
        grown = rss(pid) - rss_before
        assert read_ahead < BOUND, f"the worker read {read_ahead} bytes ahead of its client"
        assert grown < BOUND, f"the worker grew by {grown} bytes"
        digest = hashlib.sha256(rest)
        received = len(rest)
        while received < BIG:
            piece = s.recv(1 << 20)
            assert piece, f"closed after {received} of {BIG} bytes"
            digest.update(piece)
            received += len(piece)
    assert (received, digest.hexdigest()) == (BIG, big_digest)


def test_a_file_that_shrinks_while_sent_cuts_the_connection(server: GunicornProcess,
                                                             files: Path) -> None:
    name = f"shrinking-{server.port}.bin"
    (files / name).write_bytes(pattern(SHRINKING, b"shrinking"))
    pid = worker_pid(server)
    with slow_client(server) as s:
        # Kept alive: only the server's cutting the connection tells the body is short.
        s.sendall(http("GET", f"/pathsend?file={name}"))
        head, rest = read_head(s)
        assert b"content-length: %d" % SHRINKING in head.lower()
        wait_until_stalled(pid, s)
        os.truncate(files / name, 1 << 20)
        received = len(rest)
        s.settimeout(5)  # far below KEEPALIVE: a connection left open would outlast it
        try:
            while piece := s.recv(1 << 20):
                received += len(piece)
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError("the connection stayed open under a body it cannot "
                                 f"finish ({received} of {SHRINKING} bytes)") from None
    assert received < SHRINKING
    assert get(server, "/extensions").status == 200
    assert worker_pid(server) == pid


def test_a_client_gone_mid_file_is_no_error(server: GunicornProcess) -> None:
    pid = worker_pid(server)
    mark = len(error_log(server))
    with slow_client(server) as s:
        s.sendall(http("GET", "/pathsend?file=big.bin"))
        read_head(s)
        wait_until_stalled(pid, s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    wait_for(lambda: "client went away during the response" in error_log(server)[mark:],
             what="the worker noticing its client went away")
    assert get(server, "/extensions").status == 200
    assert error_lines(server, mark) == [] and worker_pid(server) == pid


# -- Starlette's FileResponse -----------------------------------------------------------------
def test_starlette_file_response_goes_through_pathsend(server: GunicornProcess,
                                                       files: Path) -> None:
    medium = (files / "medium.bin").read_bytes()
    response = get(server, "/starlette?file=medium.bin")
    assert (response.status, response.header(b"content-length")) == (200, b"%d" % MEDIUM)
    assert response.body == medium
    # Starlette reads a file itself in 64 KiB body messages; offered pathsend, it hands the
    # path over in one message and never reads the file.
    sent = json.loads(get(server, "/starlette-sent").body)
    assert sent == ["http.response.start", "http.response.pathsend"]
    # A range is the app's to serve: Starlette reads that part itself.
    ranged = get(server, "/starlette?file=medium.bin", "Range: bytes=300000-300009")
    assert (ranged.status, ranged.body) == (206, medium[300000:300010])
    assert "http.response.pathsend" not in json.loads(get(server, "/starlette-sent").body)


# -- zerocopysend ------------------------------------------------------------------------------
def test_zerocopysend_sends_the_range_asked_for(server: GunicornProcess, files: Path) -> None:
    medium = (files / "medium.bin").read_bytes()
    small = (files / "small.bin").read_bytes()
    ranged, positioned, parts = exchange(
        server, http("GET", "/zerocopy?file=medium.bin&mode=range&offset=1000&count=600000"),
        http("GET", "/zerocopy?file=small.bin&mode=position&seek=1234"),
        http("GET", "/zerocopy?file=small.bin&mode=parts", CLOSE))
    assert (ranged.status, ranged.header(b"content-length")) == (200, b"600000")
    assert ranged.body == medium[1000:601000]
    # From the file object's position (not its descriptor's, which read ahead), to its end;
    # the file is left after what was sent.
    assert positioned.chunked
    assert positioned.body == small[1234:] + b"|%d" % SMALL
    assert parts.chunked and parts.body == b"<" + small[0:10] + small[20:30] + b">"


@pytest.mark.parametrize("mode", ["bytesio", "past-end"])
def test_zerocopysend_without_a_file_to_send_answers_500(server: GunicornProcess,
                                                         mode: str) -> None:
    response = get(server, f"/zerocopy?mode={mode}")
    assert response.status == 500
    assert get(server, "/extensions").status == 200


# -- early hints -------------------------------------------------------------------------------
def informational(events: list[object]) -> list[tuple[int, list[tuple[bytes, bytes]]]]:
    return [(e.status_code, list(e.headers)) for e in events
            if isinstance(e, h11.InformationalResponse)]


def final(events: list[object]) -> tuple[int, bytes]:
    status = next(e.status_code for e in events if isinstance(e, h11.Response))
    return status, b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))


LINK_FIELDS = [(b"link", b"</style.css>; rel=preload; as=style"),
               (b"link", b"</app.js>; rel=preload; as=script")]


@pytest.mark.parametrize("at", ["before", "after-start"])
def test_an_early_hint_goes_out_before_the_response(server: GunicornProcess, at: str) -> None:
    events = h11_events(server, f"/early?at={at}")
    assert informational(events) == [(103, LINK_FIELDS)]
    assert final(events) == (200, b"ok")


def test_an_early_hint_is_dropped_after_the_head_and_for_http10(
        server: GunicornProcess) -> None:
    events = h11_events(server, "/early?at=after-body")
    assert informational(events) == [] and final(events) == (200, b"ok")
    with server.connect() as s:
        s.sendall(http("GET", "/early", version="HTTP/1.0"))
        reader = ResponseReader(s, 10)
        response = reader.read_response()
        assert (response.status, response.body) == (200, b"ok")  # not a 103 first


# -- trailers ----------------------------------------------------------------------------------
def trailers_of(events: list[object]) -> list[tuple[bytes, bytes]]:
    end = events[-1]
    assert isinstance(end, h11.EndOfMessage)
    return list(end.headers)


@pytest.mark.parametrize("parts", [1, 3])
def test_trailers_go_out_when_the_request_takes_them(server: GunicornProcess,
                                                     parts: int) -> None:
    events = h11_events(server, f"/trailers?parts={parts}", "TE: trailers")
    response = next(e for e in events if isinstance(e, h11.Response))
    assert (b"transfer-encoding", b"chunked") in list(response.headers)
    assert final(events) == (200, b"".join(b"part%d;" % i for i in range(parts)))
    # Both messages' fields, less the content-length a trailer must not carry.
    assert trailers_of(events) == [(b"x-checksum", b"abc"), (b"x-count", b"%d" % parts)]


def test_trailers_are_dropped_when_not_asked_for_or_not_chunked(
        server: GunicornProcess) -> None:
    # Without TE: the whole body at hand gets its length, the connection goes on.
    untaken, after = exchange(server, http("GET", "/trailers?parts=1"),
                              http("GET", "/trailers?parts=2", CLOSE))
    assert (untaken.header(b"content-length"), untaken.body) == (b"6", b"part0;")
    assert after.chunked and (after.body, after.trailers) == (b"part0;part1;", [])
    # The app's own Content-Length: no chunked coding, so no trailer section.
    events = h11_events(server, "/trailers?parts=2&length=12", "TE: trailers")
    assert final(events) == (200, b"part0;part1;") and trailers_of(events) == []
    # HTTP/1.0: neither chunked nor trailers.
    with server.connect() as s:
        s.sendall(http("GET", "/trailers?parts=2", "TE: trailers", version="HTTP/1.0"))
        response = ResponseReader(s, 10).read_response()
        assert (response.chunked, response.body) == (False, b"part0;part1;")


# -- over TLS -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def tls_server(request: pytest.FixtureRequest, pki: Pki,
               files: Path) -> Iterator[TlsGunicorn]:
    yield from serving(TlsGunicorn(
        APP, request.param, settings=pki.tls_settings(), env={"GAW_TEST_FILES": str(files)},
        client_context=pki.client_context()))


def test_over_tls_files_and_trailers_are_served_too(tls_server: TlsGunicorn,
                                                    files: Path) -> None:
    """The kernel cannot encrypt: files go in pieces read in a thread on every loop."""
    medium = (files / "medium.bin").read_bytes()
    small = (files / "small.bin").read_bytes()
    with tls_server.tls_connect(timeout=10) as s:
        s.sendall(http("GET", "/extensions", "TE: trailers")
                  + http("GET", "/pathsend?file=medium.bin")
                  + http("GET", "/zerocopy?file=small.bin&mode=parts")
                  + http("GET", "/trailers?parts=2", "TE: trailers", CLOSE))
        reader = ResponseReader(s, 10)
        extensions, pathsent, zerocopied, trailed = (reader.read_response() for _ in range(4))
    assert json.loads(extensions.body) == [
        "http.response.early_hint", "http.response.pathsend", "http.response.trailers",
        "http.response.zerocopysend", "tls"]
    assert (pathsent.header(b"content-length"), pathsent.body) == (b"%d" % MEDIUM, medium)
    assert zerocopied.body == b"<" + small[0:10] + small[20:30] + b">"
    assert trailed.trailers == [(b"x-checksum", b"abc"), (b"x-count", b"2")]


def test_no_error_is_logged_for_the_extensions_served(server: GunicornProcess) -> None:
    mark = len(error_log(server))
    get(server, "/pathsend?file=small.bin")
    get(server, "/zerocopy?file=small.bin&mode=parts")
    h11_events(server, "/early")
    h11_events(server, "/trailers", "TE: trailers")
    assert get(server, "/extensions").status == 200
    assert error_lines(server, mark) == []
