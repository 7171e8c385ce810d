"""Hostile HTTP/2 peers (issue 24): each attack gets the answer RFC 9113 prescribes (a GOAWAY
or RST_STREAM with its error code, or a close), the worker goes on serving an honest HTTP/2
client and an HTTP/1.1 one, logs nothing at ERROR, and where memory is the attack its RSS
stays within a generous bound.

The attackers write raw frames (hyperframe, hpack), so they can send what h2 as a client
refuses to; each attack is bounded in bytes and sent in one write, so the server has read
all of it when it closes (no RST hides the GOAWAY). One server per worker class serves the
module, with short timeouts (`header_timeout`, `keepalive`, `body_timeout`) and a small
`http2_max_header_list_size`. The limits under test are `http/h2_guard.py`'s and h2's.
App: `tests/apps/h2_apps.py`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hpack
import httpx
import pytest
from conftest import H2_WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, rss, wait_for, worker_pid
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from raw_http import ResponseReader
from soak import wait_until_steady

from gunicorn_async_workers.http.h2_preface import PREFACE

APP = "apps.h2_apps:app"
MiB = 1024 * 1024
MAX_HEADER_LIST = 16384  # the server's http2_max_header_list_size
TIMEOUT = 2  # seconds: the server's header_timeout, keepalive and body_timeout
CUT_WITHIN = 20.0  # generous: the tick that enforces a timeout runs once a second
RSS_BOUND = 50 * MiB  # the most one attack may grow the worker by
INITIAL_WINDOW_SIZE = 0x4


@pytest.fixture(scope="module", params=H2_WORKER_CLASSES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[GunicornProcess]:
    markers = tmp_path_factory.mktemp("h2") / "markers"
    markers.touch()
    proc = GunicornProcess(APP, request.param, settings={
        # "both": HTTP/2 by prior knowledge, and HTTP/1.1 still served to an HTTP/1.1
        # client (with "prior-knowledge" alone a trusted peer must speak HTTP/2).
        "http_protocols": "h2,h1", "http2_cleartext": "both", "keepalive": TIMEOUT,
        "http2_max_header_list_size": MAX_HEADER_LIST,
    }, env={"GAW_HEADER_TIMEOUT": str(TIMEOUT), "GAW_BODY_TIMEOUT": str(TIMEOUT),
            "GAW_TEST_MARKERS": str(markers)})
    with proc:
        yield proc


@pytest.fixture(autouse=True)
def healthy(server: GunicornProcess) -> Iterator[None]:
    """After each attack: the same worker serves both kinds of honest client, and nothing
    was logged at ERROR."""
    pid = worker_pid(server)
    mark = len(error_log(server))
    yield
    assert_serving(server)
    assert worker_pid(server) == pid
    errors = [line for line in error_log(server)[mark:].splitlines() if " [ERROR] " in line]
    assert not errors, f"logged at ERROR level: {errors}"


def assert_serving(server: GunicornProcess) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(f"{server.url}/")
    assert (response.http_version, response.status_code, response.content) == (
        "HTTP/2", 200, b"ok")
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        answer = ResponseReader(s, 10).read_response()
    assert (answer.status, answer.body) == (200, b"ok")


def markers(server: GunicornProcess) -> list[str]:
    """What the app noted (`tests/apps/h2_apps.py`)."""
    return Path(server.extra_env["GAW_TEST_MARKERS"]).read_text().splitlines()


class Peer:
    """A raw HTTP/2 client: frames out as given, frames in as hyperframe parses them."""

    def __init__(self, server: GunicornProcess, settings: dict[int, int] | None = None,
                 rcvbuf: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((server.host, server.port))
        self.encoder = hpack.Encoder()
        self.buffer = b""
        self.closed = False
        self.send(PREFACE, SettingsFrame(0, settings=settings or {}))

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def block(self, path: str, method: str = "GET", *extra: tuple[str, str]) -> bytes:
        return self.encoder.encode([(":method", method), (":scheme", "http"),
                                    (":authority", "h"), (":path", path), *extra])

    def headers(self, stream_id: int, path: str = "/", *, end_stream: bool = True,
                method: str = "GET") -> HeadersFrame:
        flags = ["END_HEADERS", "END_STREAM"] if end_stream else ["END_HEADERS"]
        return HeadersFrame(stream_id, self.block(path, method), flags=flags)

    def send(self, *frames: Frame | bytes) -> None:
        self.sock.sendall(b"".join(f if isinstance(f, bytes) else f.serialize()
                                   for f in frames))

    def frame(self, deadline: float) -> Frame | None:
        """The next frame, or None once the server has closed."""
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(self.buffer[9:9 + length]))
                    self.buffer = self.buffer[9 + length:]
                    return frame
            if self.closed:
                return None
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                raise AssertionError("the server neither answered nor closed") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
            self.buffer += data

    def until(self, wanted: Callable[[Frame], bool], timeout: float = 10.0) -> Frame | None:
        """The first frame that is `wanted`, or None if the server closes first."""
        deadline = time.monotonic() + timeout
        while (frame := self.frame(deadline)) is not None:
            if wanted(frame):
                return frame
        return None

    def goaway(self, timeout: float = 10.0) -> GoAwayFrame:
        """The server's GOAWAY; the server must then close."""
        frame = self.until(lambda f: isinstance(f, GoAwayFrame), timeout)
        assert isinstance(frame, GoAwayFrame), "closed without a GOAWAY"
        assert self.until(lambda f: False, timeout) is None  # then the close
        return frame

    def error(self, stream_id: int, timeout: float = 10.0) -> RstStreamFrame | GoAwayFrame:
        """The stream's RST_STREAM, or the connection's GOAWAY, whichever comes first."""
        frame = self.until(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame))
                           and (f.stream_id == stream_id or f.stream_id == 0), timeout)
        assert isinstance(frame, (RstStreamFrame, GoAwayFrame)), "closed without a word"
        return frame

    def reset(self, stream_id: int, timeout: float = 10.0) -> RstStreamFrame:
        frame = self.error(stream_id, timeout)
        assert isinstance(frame, RstStreamFrame), f"{frame!r} instead of RST_STREAM"
        return frame

    def answer(self, stream_id: int) -> bytes:
        """The body of the response on `stream_id` (its window opened as it comes)."""
        body = b""
        while True:
            frame = self.until(lambda f: f.stream_id == stream_id)
            assert frame is not None, "closed before the response ended"
            if isinstance(frame, DataFrame):
                body += frame.data
                if frame.flow_controlled_length:
                    self.send(WindowUpdateFrame(0, window_increment=len(frame.data) or 1))
            assert not isinstance(frame, RstStreamFrame), frame
            if "END_STREAM" in frame.flags:
                return body


def code(frame: GoAwayFrame | RstStreamFrame) -> ErrorCodes:
    return ErrorCodes(frame.error_code)


def grown_by(pid: int, before: int) -> int:
    """The worker's RSS growth over `before`, once it has settled."""
    return wait_until_steady(lambda: rss(pid), 0.5, 30, "the worker's RSS settling") - before


# -- 1. rapid reset (CVE-2023-44487) --------------------------------------------------------------
def test_rapid_reset_is_refused_with_enhance_your_calm(server: GunicornProcess) -> None:
    """Streams opened and reset at once, 50 to a write (a PING after each, its ACK awaited,
    so each write is read on its own), until the server refuses."""
    with Peer(server) as peer:
        goaway = None
        for first in range(1, 2001, 100):
            frames: list[Frame] = []
            for stream_id in range(first, first + 100, 2):
                frames += [peer.headers(stream_id, "/hold?id=rapid"),
                           RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL)]
            peer.send(*frames, PingFrame(0, b"%08d" % first))
            answer = peer.until(lambda f: isinstance(f, GoAwayFrame) or (
                isinstance(f, PingFrame) and "ACK" in f.flags))
            if isinstance(answer, GoAwayFrame):
                goaway = answer
                assert peer.until(lambda f: False) is None  # then the close
                break
    assert goaway is not None, "2000 streams reset, and no GOAWAY"
    assert code(goaway) is ErrorCodes.ENHANCE_YOUR_CALM
    assert 0 < goaway.last_stream_id < 1999  # refused part way
    # An app started for a stream before its reset was read heard of the reset.
    wait_for(lambda: markers(server).count("disconnected rapid")
             == markers(server).count("holding rapid"),
             what="the reset streams' apps hearing the reset")


def test_a_reset_stream_s_app_hears_a_disconnect(server: GunicornProcess) -> None:
    with Peer(server) as peer:
        peer.send(peer.headers(1, "/hold?id=one"))
        wait_for(lambda: "holding one" in markers(server), what="the app starting")
        peer.send(RstStreamFrame(1, error_code=ErrorCodes.CANCEL))
        wait_for(lambda: "disconnected one" in markers(server), what="the app's disconnect")
        peer.send(peer.headers(3))  # the connection still serves
        assert peer.answer(3) == b"ok"


# -- 2. CONTINUATION flood (CVE-2024-27316) -------------------------------------------------------
def test_continuation_flood_is_refused_before_decoding(server: GunicornProcess) -> None:
    with Peer(server) as peer:
        # A header block that never ends: its frames pass the limit long before h2's own
        # cap of 64 CONTINUATION frames.
        frames: list[Frame] = [HeadersFrame(1, peer.block("/"))]
        frames += [ContinuationFrame(1, b"\x00" * 4096) for _ in range(10)]
        peer.send(*frames)
        goaway = peer.goaway()
    assert code(goaway) is ErrorCodes.ENHANCE_YOUR_CALM
    assert goaway.last_stream_id == 0  # the block's stream was never taken


# -- 3. HPACK bomb -------------------------------------------------------------------------------
def test_hpack_bomb_is_refused_with_bounded_memory(server: GunicornProcess) -> None:
    pid = worker_pid(server)
    before = rss(pid)
    for _ in range(20):
        with Peer(server) as peer:
            # One 4000-byte field in the dynamic table (index 62), then 12000 references
            # to it: 16 KB of frame that decodes to 48 MB of fields.
            value = b"v" * 4000
            block = (peer.block("/") + b"\x40\x06x-bomb" + hpack.hpack.encode_integer(
                len(value), 7) + value + b"\xbe" * 12000)
            assert len(block) < 16384
            peer.send(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]))
            goaway = peer.goaway()
        # RFC 9113 10.5.1: a field block over the limit is answered 431 or the connection
        # is closed; h2 closes it (hpack's OversizedHeaderListError: ENHANCE_YOUR_CALM).
        assert code(goaway) is ErrorCodes.ENHANCE_YOUR_CALM
    assert grown_by(pid, before) < RSS_BOUND


# -- 4. SETTINGS and PING floods ------------------------------------------------------------------
@pytest.mark.parametrize("flood", ["PING", "SETTINGS"])
def test_control_frame_flood_is_refused(server: GunicornProcess, flood: str) -> None:
    pid = worker_pid(server)
    before = rss(pid)
    with Peer(server, rcvbuf=4096) as peer:
        if flood == "PING":
            frames: list[Frame] = [PingFrame(0, opaque_data=b"%08d" % i) for i in range(3000)]
        else:
            frames = [SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 65535 + i % 2})
                      for i in range(3000)]
        peer.send(*frames)  # and nothing read until all is sent
        goaway = peer.goaway()
    assert code(goaway) is ErrorCodes.ENHANCE_YOUR_CALM
    assert grown_by(pid, before) < RSS_BOUND


# -- 5. a window that never opens -----------------------------------------------------------------
def test_a_peer_that_never_opens_its_window_holds_one_chunk(server: GunicornProcess) -> None:
    pid = worker_pid(server)
    before = rss(pid)
    # One stream of 64 MiB with the default window never updated, then twenty of 16 MiB
    # each with windows of 0: were the app's writes not held, 384 MiB would be buffered.
    with Peer(server) as one, Peer(server, settings={INITIAL_WINDOW_SIZE: 0}) as many:
        one.send(one.headers(1, f"/stream?size={64 * MiB}&chunk={64 * 1024}"))
        many.send(*(many.headers(i, f"/stream?size={16 * MiB}&chunk={64 * 1024}")
                    for i in range(1, 41, 2)))
        assert one.until(lambda f: isinstance(f, HeadersFrame)) is not None
        for _ in range(20):
            assert many.until(lambda f: isinstance(f, HeadersFrame)) is not None
        # While they wait, the worker serves others.
        assert_serving(server)
        assert grown_by(pid, before) < RSS_BOUND


# -- 6. stream ids and frames out of place (RFC 9113 5.1, 5.1.1, 6.1, 6.9) -----------------------
CONNECTION_ERRORS = {
    "even stream id": (lambda p: [p.headers(2)], ErrorCodes.PROTOCOL_ERROR),
    "lower stream id": (lambda p: [p.headers(5), p.headers(3)], ErrorCodes.PROTOCOL_ERROR),
    # hyperframe refuses to build DATA on stream 0: the frame's bytes, by hand.
    "DATA on stream 0": (lambda p: [b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"],
                         ErrorCodes.PROTOCOL_ERROR),
    "WINDOW_UPDATE of 0": (lambda p: [WindowUpdateFrame(0, window_increment=0)],
                           ErrorCodes.PROTOCOL_ERROR),
    "connection window over 2^31-1": (
        lambda p: [WindowUpdateFrame(0, window_increment=2**31 - 1)],
        ErrorCodes.FLOW_CONTROL_ERROR),
}


@pytest.mark.parametrize("case", CONNECTION_ERRORS)
def test_connection_error(server: GunicornProcess, case: str) -> None:
    build, expected = CONNECTION_ERRORS[case]
    with Peer(server) as peer:
        peer.send(*build(peer))
        assert code(peer.goaway()) is expected


STREAM_ERRORS = {
    "stream WINDOW_UPDATE of 0": (
        lambda p: [WindowUpdateFrame(1, window_increment=0)], ErrorCodes.PROTOCOL_ERROR),
    "stream window over 2^31-1": (
        lambda p: [WindowUpdateFrame(1, window_increment=2**31 - 1)],
        ErrorCodes.FLOW_CONTROL_ERROR),
    "HEADERS on a half-closed (remote) stream": (
        lambda p: [p.headers(1, "/hold?id=half", end_stream=False)],
        ErrorCodes.STREAM_CLOSED),
}


@pytest.mark.parametrize("case", STREAM_ERRORS)
def test_stream_error(server: GunicornProcess, case: str) -> None:
    """The stream is reset with the code and the connection serves its next stream, or
    (RFC 9113 5.4: an endpoint may treat a stream error as a connection error; h2 does
    for a WINDOW_UPDATE of 0) the connection ends with the code."""
    build, expected = STREAM_ERRORS[case]
    with Peer(server) as peer:
        peer.send(peer.headers(1, "/hold?id=half"))
        peer.send(*build(peer))
        error = peer.error(1)
        assert code(error) is expected
        if isinstance(error, RstStreamFrame):
            peer.send(peer.headers(3))
            assert peer.answer(3) == b"ok"
        else:
            assert peer.until(lambda f: False) is None


def test_data_on_a_closed_stream(server: GunicornProcess) -> None:
    """RFC 9113 5.1: a frame after END_STREAM is a STREAM_CLOSED error (h2 resets the
    stream; the RFC allows the connection's too)."""
    with Peer(server) as peer:
        peer.send(peer.headers(1))
        assert peer.answer(1) == b"ok"
        peer.send(DataFrame(1, b"late"))
        frame = peer.until(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame)))
        assert frame is not None and code(frame) is ErrorCodes.STREAM_CLOSED


# -- 7. idle and slow peers -----------------------------------------------------------------------
def test_idle_and_slow_peers_are_let_go(server: GunicornProcess) -> None:
    """A connection with nothing after its preface is closed after `header_timeout`, an idle
    one after `keepalive`; a request body that stops coming is reset (CANCEL) after
    `body_timeout`, and its app hears a disconnect. All three at once."""
    with Peer(server) as silent, Peer(server) as idle, Peer(server) as slow:
        idle.send(idle.headers(1))
        assert idle.answer(1) == b"ok"
        slow.send(slow.headers(1, "/body?id=slow", method="POST", end_stream=False),
                  DataFrame(1, b"a"))
        assert code(silent.goaway(CUT_WITHIN)) is ErrorCodes.NO_ERROR
        assert code(idle.goaway(CUT_WITHIN)) is ErrorCodes.NO_ERROR
        assert code(slow.reset(1, CUT_WITHIN)) is ErrorCodes.CANCEL
        wait_for(lambda: "disconnected slow" in markers(server), what="the app's disconnect")
