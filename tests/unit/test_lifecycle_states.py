"""The request lifecycle is two enums on `Exchange`, walked through a real connection.

`BodyState` (streaming, complete, discarding, refused) and `ResponseState` (pending,
started, trailing, finished) replace the flags an exchange used to carry. Each test drives a
real HttpProtocol and Server with bytes, through the `Connection` harness of
test_protocol.py, and reads the states the app's request object is in at each step.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_protocol import Connection, run, settle

from gunicorn_async_workers.http.exchange import BodyState, Exchange, ResponseState
from gunicorn_async_workers.http.parsers import ParserAdapter

STREAMING, COMPLETE, DISCARDING, REFUSED = BodyState
PENDING, STARTED, TRAILING, FINISHED = ResponseState


def test_the_states_are_enums_and_the_flags_are_gone() -> None:
    slots = set(Exchange.__slots__)
    assert {"body_state", "response_state"} <= slots
    assert not slots & {"more_body", "discard", "cancelled", "started", "complete"}
    assert [s.name for s in BodyState] == ["STREAMING", "COMPLETE", "DISCARDING", "REFUSED"]
    assert [s.name for s in ResponseState] == ["PENDING", "STARTED", "TRAILING", "FINISHED"]


class Recorder:
    """An ASGI app that records its request object's states at each of its steps."""

    def __init__(self, read_body: bool) -> None:
        self.read_body = read_body
        self.seen: list[tuple[str, BodyState, ResponseState]] = []
        self.cycle: Any = None
        self.release = asyncio.Event()

    def note(self, step: str) -> None:
        self.seen.append((step, self.cycle.body_state, self.cycle.response_state))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The request object is the bound method's owner: receive is RequestCycle.receive.
        self.cycle = receive.__self__
        self.note("called")
        await self.release.wait()
        if self.read_body:
            while (await receive()).get("more_body"):
                pass
            self.note("body read")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        self.note("started")
        await send({"type": "http.response.body", "body": b"ok"})
        self.note("finished")


HEAD = (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")


def test_a_request_read_whole_walks_streaming_complete_started_finished(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        app = Recorder(read_body=True)
        conn = Connection(parser_class, app)
        conn.feed(HEAD + b"01234")
        await settle()
        conn.feed(b"56789")
        app.release.set()
        await settle()
        assert app.seen == [("called", STREAMING, PENDING),
                            ("body read", COMPLETE, PENDING),
                            ("started", COMPLETE, STARTED),
                            ("finished", COMPLETE, FINISHED)]
        assert conn.transport.output.startswith(b"HTTP/1.1 200 ")
        await conn.close()
    run(test)


def test_a_body_left_unread_is_discarded_after_the_response(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        app = Recorder(read_body=False)
        conn = Connection(parser_class, app)
        conn.feed(HEAD + b"01234")
        app.release.set()
        await settle()
        assert app.seen[-1] == ("finished", DISCARDING, FINISHED)
        conn.feed(b"56789" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # dropped, then the next
        await settle()
        assert app.cycle.body_state is COMPLETE
        assert conn.transport.output.count(b"HTTP/1.1 200 ") == 2
        await conn.close()
    run(test)


def test_a_body_found_bad_is_refused_and_the_app_hears_a_disconnect(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        received: list[dict[str, Any]] = []
        cycles: list[Any] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            cycles.append(receive.__self__)
            received.append(await receive())

        conn = Connection(parser_class, app)
        conn.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        await settle()
        assert cycles[0].body_state is STREAMING
        conn.feed(b"zz\r\n")  # not a chunk size
        await settle()
        assert cycles[0].body_state is REFUSED
        assert cycles[0].response_state is PENDING  # the app's answer never started
        assert received == [{"type": "http.disconnect"}]
        assert conn.transport.output.startswith(b"HTTP/1.1 400 ")
        await conn.close()
    run(test)


@pytest.mark.parametrize("failure", ["raise", "return"])
def test_an_app_that_fails_before_answering_gets_a_500_and_finishes(
        parser_class: type[ParserAdapter], failure: str) -> None:
    async def test() -> None:
        cycles: list[Any] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            cycles.append(receive.__self__)
            if failure == "raise":
                raise RuntimeError("boom")

        conn = Connection(parser_class, app)
        conn.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        assert (cycles[0].body_state, cycles[0].response_state) == (COMPLETE, FINISHED)
        assert conn.transport.output.startswith(b"HTTP/1.1 500 ")
        await conn.close()
    run(test)
