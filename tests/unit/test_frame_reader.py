"""`ChunkReader`: the `websockets` frame parser reading received chunks without copying them
must see exactly the stream, and reach exactly the events, that the library's own reader
does, however the bytes were split."""

from __future__ import annotations

import os
import random
from collections.abc import Generator
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from gunicorn_async_workers.asgi.frame_reader import ChunkReader, parse_frames_from_chunks


def _run(step: Generator[None, None, Any]) -> tuple[bool, Any]:
    """(True, value) when the read completes at once, (False, None) when it waits."""
    try:
        next(step)
    except StopIteration as done:
        return True, done.value
    return False, None


@pytest.mark.parametrize("seed", range(40))
def test_reads_of_any_size_over_any_split_give_back_the_stream(seed: int) -> None:
    rng = random.Random(seed)
    data = os.urandom(rng.randint(1, 6000))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 30))))
    reader = ChunkReader()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        reader.feed_data(data[start:end])
    position = 0
    while position < len(data):
        n = min(rng.choice([0, 1, 2, 4, 8, 255, 256, 700, 3000]), len(data) - position)
        done, value = _run(reader.read_exact(n))
        assert done
        assert bytes(value) == data[position:position + n]
        position += n
    # Nothing left, but the stream has not ended: it cannot tell yet.
    assert _run(reader.at_eof()) == (False, None)


def test_a_read_waits_for_its_bytes_and_fails_at_the_end_of_the_stream() -> None:
    reader = ChunkReader()
    reader.feed_data(b"abc")
    step = reader.read_exact(5)
    assert next(step) is None  # waits
    reader.feed_data(b"de")
    with pytest.raises(StopIteration) as done:
        next(step)
    assert done.value.value == b"abcde"
    reader.feed_data(b"f")
    reader.feed_eof()
    with pytest.raises(EOFError):
        _run(reader.read_exact(2))
    assert _run(reader.at_eof()) == (True, False)  # one byte is still there
    reader.discard()
    assert _run(reader.at_eof()) == (True, True)
    with pytest.raises(EOFError):
        reader.feed_data(b"g")
    with pytest.raises(EOFError):
        reader.feed_eof()


def _request() -> Request:
    headers = Headers()
    headers["Host"] = "example.com"
    headers["Upgrade"] = "websocket"
    headers["Connection"] = "Upgrade"
    headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    headers["Sec-WebSocket-Version"] = "13"
    return Request("/chat", headers)


def _library_server() -> ServerProtocol:
    """The library as it is meant to be driven: it parses the handshake itself."""
    ws = ServerProtocol(max_size=20_000)
    ws.receive_data(_request().serialize())
    request = ws.events_received()[0]
    ws.send_response(ws.accept(request))
    ws.data_to_send()
    return ws


def _our_server() -> ServerProtocol:
    ws = ServerProtocol(max_size=20_000)
    parse_frames_from_chunks(ws)
    ws.send_response(ws.accept(_request()))
    ws.data_to_send()
    return ws


def _client_stream(rng: random.Random) -> bytes:
    """Masked client frames: whole and fragmented messages, pings, and sometimes a fault
    (reserved bit, oversized payload, unmasked frame) or a close."""
    frames: list[bytes] = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.choice(["binary", "text", "fragments", "ping", "fault", "close"])
        size = rng.choice([0, 1, 125, 126, 300, 4000, 16384])
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
                frames.append(Frame(Opcode.BINARY, bytes(20_001))
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
    theirs, ours = _library_server(), _our_server()
    position = 0
    while position < len(stream):
        step = rng.choice([1, 2, 3, 7, 64, 1000, 20_000, 70_000])
        chunk = stream[position:position + step]
        position += step
        for ws in (theirs, ours):
            ws.receive_data(chunk)
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
