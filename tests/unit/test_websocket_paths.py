"""The WebSocket session both ways it can drive the `websockets` library: the fast path (its
frame parser over our read buffer, `websockets_internals`) and the public API only
(`websockets_public_api`, used where the fast path's self-test fails). Every case runs on
both, bytes in, bytes out, on a real HttpProtocol and Server; the `websockets_internals`
self-test and its switch are tested last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import test_protocol as cases
from test_protocol import WS_UPGRADE, Connection, Message, Receive, Send, read_responses, settle
from ws_frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, frame

from gunicorn_async_workers.asgi import websockets_internals
from gunicorn_async_workers.asgi.websocket_connection import SessionState, WebSocketConnection
from gunicorn_async_workers.http.parsers import HttptoolsParser

INPUTS = {"fast": "ParserInput", "public": "PublicApiInput"}


@pytest.fixture(params=list(INPUTS))
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The way sessions started in the test drive the library."""
    monkeypatch.setattr(websockets_internals, "FAST_PATH", request.param == "fast")
    return str(request.param)


# -- the cases of test_protocol.py, both ways ---------------------------------------------------
EXISTING: list[tuple[Callable[..., None], dict[str, Any]]] = [
    (cases.test_bad_websocket_handshake_is_refused_without_the_app, {}),
    (cases.test_send_after_the_library_failed_the_websocket_raises_an_oserror, {}),
    (cases.test_a_burst_of_websocket_sends_is_one_write, {}),
    (cases.test_invalid_utf8_in_a_text_frame_fails_as_soon_as_its_piece_arrives, {"size": 17}),
    (cases.test_invalid_utf8_in_a_text_frame_fails_as_soon_as_its_piece_arrives, {"size": 300}),
    (cases.test_invalid_utf8_in_a_text_frame_fails_as_soon_as_its_piece_arrives,
     {"size": 70_000}),
    (cases.test_valid_text_in_pieces_of_any_size_is_delivered_whole, {"piece": 1}),
    (cases.test_valid_text_in_pieces_of_any_size_is_delivered_whole, {"piece": 5}),
    (cases.test_binary_frame_in_pieces_is_not_checked_as_text, {}),
    (cases.test_invalid_utf8_in_a_continuation_arriving_in_pieces_fails_at_its_piece, {}),
    (cases.test_a_length_in_its_long_form_is_checked_or_delivered_alike, {}),
]


@pytest.mark.parametrize(("case", "kwargs"), EXISTING,
                         ids=[f"{c.__name__[5:]}{kw or ''}" for c, kw in EXISTING])
def test_protocol_cases(api: str, case: Callable[..., None], kwargs: dict[str, Any]) -> None:
    case(HttptoolsParser, **kwargs)


@pytest.mark.parametrize(("offer", "answer"), [
    ("permessage-deflate; client_max_window_bits",
     "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate",
     "permessage-deflate; server_max_window_bits=12"),
], ids=["defaults", "unsupported-8-declined"])
def test_permessage_deflate(api: str, offer: str, answer: str,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    cases.test_permessage_deflate_negotiation_and_windows(HttptoolsParser, offer, {}, answer,
                                                          monkeypatch)


# -- more of the session's behaviour, both ways -------------------------------------------------
def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each unmasked server frame in `data`."""
    frames = []
    while data:
        n, at = data[1] & 0x7F, 2
        if n == 126:
            n, at = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            n, at = int.from_bytes(data[2:10], "big"), 10
        assert not data[1] & 0x80, "a masked server frame"
        frames.append((data[0], data[at:at + n]))
        data = data[at + n:]
    return frames


def close_frame(code: int, reason: bytes = b"") -> tuple[int, bytes]:
    return 0x88, code.to_bytes(2, "big") + reason


async def echo(scope: Message, receive: Receive, send: Send) -> None:
    """Accepts, echoes every message, records what it received in `scope["seen"]`."""
    seen = scope["state"]["seen"]
    seen.append(await receive())
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        seen.append(message)
        if message["type"] != "websocket.receive":
            return
        await send({**message, "type": "websocket.send"})


class Session:
    """A WebSocket session on a Connection: feed it reads, see the frames it writes."""

    def __init__(self, app: Any = echo, upgrade: bytes = WS_UPGRADE,
                 options: dict[str, object] | None = None, **settings: object) -> None:
        self.conn = Connection(HttptoolsParser, app, options, **settings)
        self.conn.server.bridge.state["seen"] = []  # the scope's state is a shallow copy: shared
        self.conn.feed(upgrade)
        self.mark = 0

    async def opened(self) -> Session:
        await settle()
        output = self.conn.transport.output
        assert output.startswith(b"HTTP/1.1 101 "), output[:200]
        self.mark = output.index(b"\r\n\r\n") + 4
        return self

    async def read(self, *pieces: bytes) -> list[tuple[int, bytes]]:
        """Each piece one read; the frames written since the last call."""
        reader = self.conn.transport.protocol
        for piece in pieces:
            if not self.conn.transport.closed:
                reader.get_buffer(len(piece))[:len(piece)] = piece
                reader.buffer_updated(len(piece))
            await settle()
        output = self.conn.transport.output
        frames = server_frames(output[self.mark:])
        self.mark = len(output)
        return frames

    @property
    def messages(self) -> list[Message]:
        """What `echo` received after websocket.connect."""
        return self.conn.server.bridge.state["seen"][1:]


def test_the_path_asked_for_is_the_one_taken(api: str) -> None:
    async def test() -> None:
        session = await Session().opened()
        connection = session.conn.protocol.websocket.connection
        assert type(connection.input).__name__ == INPUTS[api]
        assert await session.read(frame(BINARY, b"hi")) == [(0x82, b"hi")]
        await session.conn.close()

    cases.run(test)


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "byte-by-byte"])
def test_close_between_fragments_closes_1000_and_drops_the_message(api: str,
                                                                    split: bool) -> None:
    """RFC 6455 5.4 lets control frames come between fragments, a close too (Autobahn
    7.1.5): the library alone would fail the connection with 1002."""
    async def test() -> None:
        session = await Session().opened()
        data = (frame(TEXT, b"fragment1", fin=False) + frame(CLOSE, b"\x03\xe8bye")
                + frame(CONT, b"fragment2"))
        pieces = [data[i:i + 1] for i in range(len(data))] if split else [data]
        assert await session.read(*pieces) == [close_frame(1000, b"bye")]
        assert session.conn.transport.closed
        assert session.messages == [{"type": "websocket.disconnect", "code": 1000,
                                     "reason": "bye"}]

    cases.run(test)


def test_messages_before_the_peers_close_are_answered_before_ours(api: str) -> None:
    async def test() -> None:
        session = await Session().opened()
        frames = await session.read(frame(TEXT, b"one") + frame(BINARY, b"two")
                                    + frame(CLOSE, b"\x03\xe8") + frame(TEXT, b"after"))
        assert frames == [(0x81, b"one"), (0x82, b"two"), close_frame(1000)]
        assert session.conn.transport.closed
        assert session.messages[-1] == {"type": "websocket.disconnect", "code": 1000,
                                        "reason": ""}

    cases.run(test)


def test_fragments_pings_and_frames_sent_with_the_upgrade(api: str) -> None:
    async def test() -> None:
        session = await Session(upgrade=WS_UPGRADE + frame(BINARY, b"early")).opened()
        frames = await session.read(frame(TEXT, "one \xe9".encode()[:-1], fin=False),
                                    frame(PING, b"between"),
                                    frame(CONT, "é".encode()[1:] + b" two", fin=False)
                                    + frame(CONT, b" three"), frame(PONG, b"unasked"))
        assert frames == [(0x82, b"early"), (0x8A, b"between"), (0x81, "one é two three".encode())]
        await session.conn.close()

    cases.run(test)


@pytest.mark.parametrize(("count", "fails"), [(10, False), (11, True)])
def test_fragments_count_toward_ws_max_size_with_their_header_bytes(
        api: str, count: int, fails: bool) -> None:
    async def test() -> None:
        session = await Session(options={"ws_max_size": 60}).opened()
        frames = await session.read(b"".join(frame(BINARY if i == 0 else CONT, b"",
                                                   fin=i == count - 1) for i in range(count)))
        if fails:
            assert [f[0] for f in frames] == [0x88] and frames[0][1][:2] == b"\x03\xf1"
            assert session.conn.transport.closed
        else:
            assert frames == [(0x82, b"")]
            frames = await session.read(frame(BINARY, bytes(61)))  # one frame over: the library
            assert frames[0][1][:2] == b"\x03\xf1"
        await session.conn.close()

    cases.run(test)


def test_graceful_shutdown_closes_1001_and_the_peer_answers(api: str) -> None:
    async def test() -> None:
        session = await Session().opened()
        session.conn.protocol.websocket.going_away()
        await settle()
        assert await session.read() == [close_frame(1001, b"server shutting down")]
        assert session.conn.protocol.websocket.connection.state is SessionState.CLOSING
        await session.read(frame(CLOSE, b"\x03\xe9"))
        assert session.conn.transport.closed
        assert session.messages[-1]["code"] == 1001

    cases.run(test)


# -- the answer to the handshake, over HTTP ----------------------------------------------------
def refusing(*messages: Message) -> Any:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        for message in messages:
            await send(message)
    return app


@pytest.mark.parametrize(("messages", "status", "headers", "body"), [
    pytest.param([{"type": "websocket.close"}], 403, {}, b"", id="close-before-accept"),
    pytest.param([], 403, {}, b"", id="returns-without-accepting"),
    pytest.param([{"type": "websocket.http.response.start", "status": 401,
                   "headers": [(b"x-denied", b"yes")]},
                  {"type": "websocket.http.response.body", "body": b"denied: ",
                   "more_body": True},
                  {"type": "websocket.http.response.body", "body": b"go away"}],
                 401, {b"x-denied": b"yes", b"transfer-encoding": b"chunked"},
                 b"denied: go away", id="denial-in-two-parts"),
    pytest.param([{"type": "websocket.http.response.start", "status": 404},
                  {"type": "websocket.http.response.body", "body": b"none"}],
                 404, {b"content-length": b"4"}, b"none", id="denial-in-one-part"),
])
def test_the_handshake_answered_over_http(api: str, messages: list[Message], status: int,
                                          headers: dict[bytes, bytes], body: bytes) -> None:
    """Written as any HTTP response (the shared writer frames it), then the connection
    closes."""
    async def test() -> None:
        conn = Connection(HttptoolsParser, refusing(*messages))
        conn.feed(WS_UPGRADE)
        await settle()
        [(got_status, got_headers, got_body)] = read_responses(conn.transport.output,
                                                                [b"GET"], eof=True)
        assert (got_status, got_body) == (status, body)
        assert headers.items() <= got_headers.items()
        assert got_headers[b"connection"] == b"close"
        assert conn.transport.closed and not conn.transport.aborted

    cases.run(test)


def test_a_denial_the_app_leaves_unfinished_is_cut(api: str) -> None:
    async def test() -> None:
        conn = Connection(HttptoolsParser, refusing(
            {"type": "websocket.http.response.start", "status": 401},
            {"type": "websocket.http.response.body", "body": b"more", "more_body": True}))
        conn.feed(WS_UPGRADE)
        await settle()
        assert conn.transport.output.startswith(b"HTTP/1.1 401 ")
        assert conn.transport.aborted

    cases.run(test)


@pytest.mark.parametrize(("messages", "error"), [
    ([{"type": "websocket.send", "text": "x"}],
     "websocket.send while the WebSocket is connecting: the app may send websocket.accept, "
     "websocket.close, websocket.http.response.start, websocket.http.response.body"),
    ([{"type": "websocket.accept"}, {"type": "websocket.accept"}],
     "websocket.accept while the WebSocket is open: the app may send websocket.send, "
     "websocket.close"),
    ([{"type": "websocket.http.response.start", "status": 401},
      {"type": "websocket.accept"}], "websocket.accept after websocket.http.response.start"),
    ([{"type": "websocket.http.response.body", "body": b""}],
     "websocket.http.response.body before websocket.http.response.start"),
])
def test_messages_out_of_order_are_refused_naming_the_state(
        api: str, messages: list[Message], error: str) -> None:
    raised: list[BaseException] = []

    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()
            try:
                for message in messages:
                    await send(message)
            except RuntimeError as exc:
                raised.append(exc)

        conn = Connection(HttptoolsParser, app)
        conn.feed(WS_UPGRADE)
        await settle()
        await conn.close()

    cases.run(test)
    assert [str(exc) for exc in raised] == [error]


def test_a_session_step_not_in_the_table_raises_naming_both_states() -> None:
    async def test() -> None:
        conn = Connection(HttptoolsParser, echo)
        connection = WebSocketConnection(conn.protocol, conn.server.config.options,
                                         lambda: None)
        connection.close_transport()
        assert connection.state is SessionState.CLOSED
        with pytest.raises(RuntimeError, match="session closed cannot become open"):
            connection._move(SessionState.OPEN)

    cases.run(test)


def test_a_request_the_library_cannot_take_is_refused_on_the_public_path(api: str) -> None:
    """The public path hands the library the upgrade request again, and its limits hold
    (128 header fields): beyond them, 400; the fast path never gives it the request."""
    many = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(130))

    async def test() -> None:
        conn = Connection(HttptoolsParser, refusing({"type": "websocket.accept"}),
                          limit_request_fields=200)
        conn.feed(WS_UPGRADE[:-2] + many + b"\r\n")
        await settle()
        status = int(conn.transport.output[9:12])
        assert status == (101 if api == "fast" else 400)
        await conn.close()

    cases.run(test)


# -- the fast path's self-test and its switch --------------------------------------------------
def test_the_installed_websockets_passes_the_fast_paths_self_test() -> None:
    assert websockets_internals._self_test() is None


def test_the_switch_turns_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    env = websockets_internals.PUBLIC_API_ENV
    monkeypatch.setenv(env, "1")
    problem = websockets_internals._problem()
    assert problem is not None and problem.startswith(f"{env} is set") and "\n" not in problem
    monkeypatch.setenv(env, "0")
    assert websockets_internals._problem() is None


def test_an_internal_that_changed_turns_the_fast_path_off_saying_which(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from websockets.server import ServerProtocol

    # A release whose parser no longer resets the message size our way:
    monkeypatch.setattr(websockets_internals.FastServerProtocol, "recv_frame",
                        ServerProtocol.recv_frame)
    assert websockets_internals._self_test() == (
        "taking a close between the fragments of a message cleanly")
    monkeypatch.undo()

    def gone(ws: Any) -> Any:
        raise AttributeError("'ServerProtocol' object has no attribute 'parser'")

    # One whose protocol object has no `parser` any more:
    monkeypatch.setattr(websockets_internals, "parse_frames_from_buffer", gone)
    problem = websockets_internals._problem()
    assert problem is not None and "fails the WebSocket fast path's self-test (building a " \
        "server protocol: AttributeError: 'ServerProtocol' object has no attribute 'parser')" \
        in problem and "tested with websockets>=13,<18" in problem

