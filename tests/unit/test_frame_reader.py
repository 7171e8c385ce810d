"""`FrameBuffer`: the `websockets` frame parser reading from the buffer the socket is read into
must see exactly the stream, and reach exactly the events, that the library's own reader
does, however the bytes were split across reads."""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterable
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from gunicorn_async_workers.asgi import frame_reader
from gunicorn_async_workers.asgi.frame_reader import FrameBuffer
from gunicorn_async_workers.asgi.websockets_internals import parse_frames_from_buffer


def _run(step: Iterable[Any]) -> tuple[bool, Any]:
    """As `yield from step` in the library's parser: (True, value) when it completes at once,
    (False, None) when it waits."""
    try:
        next(iter(step))
    except StopIteration as done:
        return True, done.value
    return False, None


def _receive(reader: FrameBuffer, data: bytes) -> None:
    """What the transport does: read into the room `get_buffer` offers, as often as needed."""
    while data:
        room = reader.get_buffer(-1)
        assert len(room) >= 1
        n = min(len(room), len(data))
        room[:n] = data[:n]
        reader.buffer_updated(n)
        data = data[n:]


@pytest.mark.parametrize("seed", range(40))
def test_reads_of_any_size_over_any_split_give_back_the_stream(seed: int) -> None:
    rng = random.Random(seed)
    data = os.urandom(rng.randint(1, 300_000))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 30))))
    reader = FrameBuffer()
    pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)],
                                                     strict=True)]
    position = 0
    pending: Generator[None, None, Any] | None = None
    want = 0
    for piece in pieces:
        if rng.random() < 0.5:
            _receive(reader, piece)
        else:
            reader.feed_data(piece)
        while True:  # read what has arrived, in random sizes, some bigger than one buffer
            if pending is None:
                want = min(rng.choice([0, 1, 2, 4, 8, 255, 256, 700, 3000, 200_000]),
                           len(data) - position)
                pending = reader.read_exact(want)
            done, value = _run(pending)
            if not done:
                break
            assert bytes(value) == data[position:position + want]
            position += want
            pending = None
            if position == len(data):
                break
    assert position == len(data)
    # Nothing left, but the stream has not ended: it cannot tell yet.
    assert _run(reader.at_eof()) == (False, None)


def test_a_read_waits_for_its_bytes_and_fails_at_the_end_of_the_stream() -> None:
    reader = FrameBuffer()
    reader.feed_data(b"abc")
    step = reader.read_exact(5)
    assert next(step) is None  # waits
    _receive(reader, b"de")
    with pytest.raises(StopIteration) as done:
        next(step)
    assert done.value.value == b"abcde"
    reader.feed_data(b"f")
    reader.feed_eof()
    with pytest.raises(EOFError):
        _run(reader.read_exact(2))
    assert _run(reader.at_eof()) == (True, None)  # one byte is still there (None: false)
    reader.discard()
    assert _run(reader.at_eof()) == (True, True)
    with pytest.raises(EOFError):
        reader.feed_data(b"g")
    with pytest.raises(EOFError):
        reader.feed_eof()


def test_a_connection_with_nothing_unread_holds_no_buffer() -> None:
    """Idle WebSockets cost no buffer: an emptied one goes to the pool and is reused; a
    connection waiting for the rest of a frame keeps a copy of the few bytes it has."""
    frame_reader._POOL.clear()
    reader, other = FrameBuffer(), FrameBuffer()
    _receive(reader, b"abcd")
    first = reader.buffer
    assert _run(reader.read_exact(4)) == (True, b"abcd")
    reader.release()
    assert reader.buffer is None
    assert len(frame_reader._POOL) == 1 and frame_reader._POOL[0] is first
    _receive(other, b"xy")  # another connection's read reuses it
    assert other.buffer is first and not frame_reader._POOL
    assert _run(other.read_exact(1)) == (True, b"x")
    other.release()
    # Unread: kept, in a copy, with up to a frame header's bytes before it.
    assert other.buffer == b"xy" and other.buffer is not first and other.start == 1
    assert len(frame_reader._POOL) == 1 and frame_reader._POOL[0] is first


def _open_parser() -> tuple[ServerProtocol, FrameBuffer]:
    ws = ServerProtocol()
    ws.state = State.OPEN
    return ws, parse_frames_from_buffer(ws)


def test_the_first_bytes_of_a_frame_are_kept_in_a_copy_of_their_own() -> None:
    """A read that leaves a few bytes of a frame unread (a peer that sends a header and
    stops): they are copied out and the buffer goes back to the pool at once."""
    frame_reader._POOL.clear()
    ws, reader = _open_parser()
    payload = os.urandom(1000)
    frame = Frame(Opcode.BINARY, payload).serialize(mask=True)
    _receive(reader, frame[:10])
    full = reader.buffer
    next(ws.parser)
    reader.release()
    # The header (8 bytes) is parsed, and kept with the rest (see `_payload_frame`).
    assert reader.buffer is not full and len(reader.buffer) == 10 and reader.start == 8
    assert len(frame_reader._POOL) == 1 and frame_reader._POOL[0] is full
    _receive(reader, frame[10:])
    assert reader.buffer is full  # the room came from the pool
    next(ws.parser)
    reader.release()
    assert reader.buffer is None
    [event] = ws.events_received()
    assert event.data == payload


def test_more_of_a_frame_left_waiting_keeps_only_itself_after_a_tick() -> None:
    """More than a few bytes of a frame, then nothing: after a whole tick without a read
    (two `shrink_idle` calls), the connection holds those bytes, not a buffer; the frame
    still parses whole once the rest arrives, through a pooled buffer again."""
    frame_reader._POOL.clear()
    ws, reader = _open_parser()
    payload = os.urandom(50_000)
    frame = Frame(Opcode.BINARY, payload).serialize(mask=True)
    _receive(reader, frame[:12_000])
    next(ws.parser)
    reader.release()
    full = reader.buffer
    assert full is not None and len(full) == frame_reader.BUFFER_SIZE
    reader.shrink_idle()  # the first tick only marks it
    assert reader.buffer is full
    _receive(reader, frame[12_000:12_010])  # a read in between: it is not idle
    next(ws.parser)
    reader.release()
    reader.shrink_idle()
    assert reader.buffer is full
    reader.shrink_idle()  # untouched for a whole tick: only the frame's bytes are kept
    assert reader.buffer is not full and len(reader.buffer) == 12_010
    assert len(frame_reader._POOL) == 1 and frame_reader._POOL[0] is full
    _receive(reader, frame[12_010:])
    assert reader.buffer is full
    next(ws.parser)
    reader.release()
    [event] = ws.events_received()
    assert event.data == payload


def test_a_frame_bigger_than_the_buffer_arrives_whole_as_one_view() -> None:
    reader = FrameBuffer()
    size = frame_reader.BUFFER_SIZE * 3
    payload = os.urandom(size)
    _receive(reader, payload[:1000])
    step = reader.read_exact(size)
    assert next(step) is None
    _receive(reader, payload[1000:])
    with pytest.raises(StopIteration) as done:
        next(step)
    assert isinstance(done.value.value, memoryview) and done.value.value == payload


def test_a_peer_gets_buffer_memory_by_sending_bytes_not_by_announcing_a_length() -> None:
    """A frame header may announce far more than will ever come: the buffer grows with what
    arrives (at most twofold per read), never to the announced length at once."""
    reader = FrameBuffer()
    _receive(reader, b"x")
    step = reader.read_exact(1 << 30)
    for _ in range(200):  # a peer trickling a byte per read
        assert next(step) is None
        _receive(reader, b"x")
    assert reader.buffer is not None and len(reader.buffer) == frame_reader.BUFFER_SIZE
    received = 201
    while received < 4 * frame_reader.BUFFER_SIZE:  # full reads: it grows as they come
        room = len(reader.get_buffer(-1))
        _receive(reader, bytes(room))
        received += room
        assert len(reader.buffer) <= 2 * received + frame_reader.BUFFER_SIZE
        assert next(step) is None


def _request() -> Request:
    headers = Headers()
    headers["Host"] = "example.com"
    headers["Upgrade"] = "websocket"
    headers["Connection"] = "Upgrade"
    headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    headers["Sec-WebSocket-Version"] = "13"
    return Request("/chat", headers)


MAX_SIZE = 300_000


def _library_server() -> ServerProtocol:
    """The library as it is meant to be driven: it parses the handshake itself."""
    ws = ServerProtocol(max_size=MAX_SIZE)
    ws.receive_data(_request().serialize())
    request = ws.events_received()[0]
    ws.send_response(ws.accept(request))
    ws.data_to_send()
    return ws


def _our_server() -> tuple[ServerProtocol, FrameBuffer]:
    ws = ServerProtocol(max_size=MAX_SIZE)
    reader = parse_frames_from_buffer(ws)
    ws.send_response(ws.accept(_request()))
    ws.data_to_send()
    return ws, reader


def _our_receive(ws: ServerProtocol, reader: FrameBuffer, data: bytes) -> None:
    """As `WebSocketSession.buffer_updated` drives the library, one read at a time."""
    while data:
        room = reader.get_buffer(-1)
        n = min(len(room), len(data))
        room[:n] = data[:n]
        reader.buffer_updated(n)
        next(ws.parser)
        reader.release()
        data = data[n:]


def _client_stream(rng: random.Random) -> bytes:
    """Masked client frames: whole and fragmented messages, pings, and sometimes a fault
    (reserved bit, oversized payload, unmasked frame) or a close."""
    frames: list[bytes] = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.choice(["binary", "text", "fragments", "ping", "fault", "close"])
        size = rng.choice([0, 1, 125, 126, 300, 4000, 16384, 140_000])
        if kind == "binary":
            frames.append(Frame(Opcode.BINARY, os.urandom(size)).serialize(mask=True,
                                                                          extensions=[]))
        elif kind == "text":
            frames.append(Frame(Opcode.TEXT, b"x" * size).serialize(mask=True, extensions=[]))
        elif kind == "fragments":
            frames.append(Frame(Opcode.BINARY, os.urandom(size), fin=False)
                          .serialize(mask=True, extensions=[]))
            frames.append(Frame(Opcode.CONT, os.urandom(size))
                          .serialize(mask=True, extensions=[]))
        elif kind == "ping":
            frames.append(Frame(Opcode.PING, os.urandom(size % 126))
                          .serialize(mask=True, extensions=[]))
        elif kind == "fault":
            fault = rng.choice(["rsv", "big", "unmasked"])
            if fault == "rsv":
                valid = Frame(Opcode.BINARY, b"abc").serialize(mask=True, extensions=[])
                frames.append(bytes([valid[0] | 0x20]) + valid[1:])
            elif fault == "big":
                frames.append(Frame(Opcode.BINARY, bytes(MAX_SIZE + 1))
                              .serialize(mask=True, extensions=[]))
            else:
                frames.append(Frame(Opcode.BINARY, b"abc").serialize(mask=False,
                                                                     extensions=[]))
        else:
            frames.append(Frame(Opcode.CLOSE, Close(CloseCode.NORMAL_CLOSURE, "bye")
                                .serialize()).serialize(mask=True, extensions=[]))
    return b"".join(frames)


def _events(ws: ServerProtocol) -> list[tuple[Any, ...]]:
    return [(e.opcode, bytes(e.data), e.fin) for e in ws.events_received()]


@pytest.mark.parametrize("seed", range(60))
def test_the_library_reaches_the_same_events_and_answers_over_either_reader(seed: int) -> None:
    rng = random.Random(seed)
    stream = _client_stream(rng)
    theirs = _library_server()
    ours, reader = _our_server()
    position = 0
    while position < len(stream):
        step = rng.choice([1, 2, 3, 7, 64, 1000, 20_000, 70_000, 200_000])
        chunk = stream[position:position + step]
        position += step
        theirs.receive_data(chunk)
        if rng.random() < 0.2:
            ours.receive_data(chunk)  # what arrived with the upgrade request
        else:
            _our_receive(ours, reader, chunk)
        assert _events(ours) == _events(theirs)
        assert ours.data_to_send() == theirs.data_to_send()
        assert ours.state is theirs.state
    if rng.random() < 0.5:
        for ws in (theirs, ours):
            ws.receive_eof()
        assert ours.data_to_send() == theirs.data_to_send()
    assert ours.state is theirs.state
    assert ours.close_code == theirs.close_code
    assert type(ours.parser_exc) is type(theirs.parser_exc)
