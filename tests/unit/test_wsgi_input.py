"""`wsgi.input` (WsgiInput) read by an app thread while another thread feeds the body one
piece at a time, so every piece boundary is exactly where the test puts it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from gunicorn_async_workers.http.exchange import BodyState
from gunicorn_async_workers.wsgi.input import WsgiInput


class Protocol:
    """What WsgiInput looks at on the connection: it is open and reading."""

    closing = False
    read_paused = False
    loop: Any = None


class TellingCondition(threading.Condition):
    """A Condition whose waiters say so: the feeder learns the reader waits for more."""

    def wait(self, timeout: float | None = None) -> bool:
        self.notify_all()
        return super().wait(timeout)


class Cycle:
    """The fields of a WsgiCycle that WsgiInput uses, fed like the loop feeds them."""

    def __init__(self) -> None:
        self.cond = TellingCondition()
        self.body: list[bytes] = []
        self.body_read = 0
        self.body_state = BodyState.STREAMING
        self.expect_continue = False
        self.waiter: Any = None
        self.protocol = Protocol()


def feed(cycle: Cycle, pieces: list[bytes]) -> threading.Thread:
    """Hand `pieces` over one at a time, each only once the reader waits for more."""
    def run() -> None:
        for piece in pieces:
            with cycle.cond:
                assert cycle.cond.wait_for(lambda: not cycle.body and cycle.waiter, 5)
                cycle.body.append(piece)
                cycle.body_read += len(piece)
                cycle.cond.notify_all()
        with cycle.cond:
            assert cycle.cond.wait_for(lambda: not cycle.body and cycle.waiter, 5)
            cycle.body_state = BodyState.COMPLETE
            cycle.cond.notify_all()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def read_with(pieces: list[bytes], how: Callable[[WsgiInput], list[bytes]]) -> list[bytes]:
    cycle = Cycle()
    stream = WsgiInput(cycle)  # type: ignore[arg-type]
    feeder = feed(cycle, pieces)
    result = how(stream)
    feeder.join(5)
    assert not feeder.is_alive()
    assert stream.read(1) == b"" and stream.readline() == b"" and list(stream) == []
    assert cycle.body_read == 0
    return result


def repeat(call: Callable[[], bytes]) -> list[bytes]:
    out = []
    while True:
        data = call()
        if not data:
            return out
        out.append(data)


PIECES = [b"one\ntw", b"o\n", b"thr", b"ee\n\nfo", b"ur"]
LINES = [b"one\n", b"two\n", b"three\n", b"\n", b"four"]


@pytest.mark.parametrize(("how", "expected"), [
    (lambda s: [s.read()], [b"one\ntwo\nthree\n\nfour"]),
    (lambda s: [s.read(None)], [b"one\ntwo\nthree\n\nfour"]),
    (lambda s: [s.read(-1)], [b"one\ntwo\nthree\n\nfour"]),
    (lambda s: repeat(lambda: s.read(5)), [b"one\nt", b"wo\nth", b"ree\n\n", b"four"]),
    (lambda s: repeat(lambda: s.read(100)), [b"one\ntwo\nthree\n\nfour"]),
    (lambda s: repeat(s.readline), LINES),
    (lambda s: repeat(lambda: s.readline(4)),
     [b"one\n", b"two\n", b"thre", b"e\n", b"\n", b"four"]),
    (lambda s: repeat(lambda: s.readline(1)), [bytes([b]) for b in b"one\ntwo\nthree\n\nfour"]),
    (lambda s: s.readlines(), LINES),
    (lambda s: s.readlines(-1), LINES),
    (lambda s: list(s), LINES),
    (lambda s: [s.read(0), s.readline(0), s.read(3), s.readline(), s.read()],
     [b"", b"", b"one", b"\n", b"two\nthree\n\nfour"]),
], ids=["read", "read-None", "read-minus1", "read5", "read100", "readline", "readline4",
        "readline1", "readlines", "readlines-minus1", "iter", "mixed"])
def test_reading_styles_across_piece_boundaries(
        how: Callable[[WsgiInput], list[bytes]], expected: list[bytes]) -> None:
    assert read_with(PIECES, how) == expected


def test_readlines_hint_stops_after_the_line_that_reaches_it() -> None:
    def how(s: WsgiInput) -> list[bytes]:
        first = s.readlines(5)  # "one\n" is 4 bytes, "two\n" reaches 8 >= 5
        rest = s.readlines()
        return [b"|".join(first), b"|".join(rest)]
    assert read_with(PIECES, how) == [b"one\n|two\n", b"three\n|\n|four"]


def test_an_empty_body_reads_as_empty() -> None:
    assert read_with([], lambda s: [s.read(), s.readline(), *s.readlines()]) == [b"", b""]


def test_a_line_longer_than_any_piece() -> None:
    pieces = [b"a" * 7] * 10 + [b"\nend"]
    assert read_with(pieces, lambda s: list(s)) == [b"a" * 70 + b"\n", b"end"]


def test_a_disconnect_while_the_app_waits_raises_an_oserror() -> None:
    cycle = Cycle()
    stream = WsgiInput(cycle)  # type: ignore[arg-type]

    def disconnect() -> None:
        with cycle.cond:
            assert cycle.cond.wait_for(lambda: cycle.waiter, 5)
            cycle.protocol.closing = True
            cycle.cond.notify_all()

    thread = threading.Thread(target=disconnect, daemon=True)
    thread.start()
    with pytest.raises(OSError):
        stream.read(10)
    thread.join(5)
