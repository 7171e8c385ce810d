"""One ASGI HTTP request-response cycle: `receive`, `send`, and running the app.

The cycle knows nothing of sockets or parsers: the ASGI bridge (`asgi/bridge.py`) builds it
with its scope, and the body-in, response-out half it shares with the WSGI bridge lives in
`http/exchange.py`. The response head is held back until the first
body message so that a small response leaves in a single transport write, with a
Content-Length the server computes itself when the app gave none.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from ..http.exchange import (
    COMPLETE,
    CONTINUE,
    FINISHED,
    PENDING,
    REFUSED,
    STARTED,
    ClientDisconnected,
    Exchange,
)

if TYPE_CHECKING:
    from ..accesslog import Record
    from .bridge import AsgiBridge
    from .types import (
        ASGISendEvent,
        HTTPDisconnectEvent,
        HTTPReceiveEvents,
        HTTPRequestEvent,
        HTTPScope,
    )

_DISCONNECT: HTTPDisconnectEvent = {"type": "http.disconnect"}
_EMPTY_BODY: HTTPRequestEvent = {"type": "http.request", "body": b"", "more_body": False}
_START: Final = "http.response.start"
_BODY: Final = "http.response.body"


class RequestCycle(Exchange):
    """One ASGI HTTP cycle: the scope, `receive` and `send`, and the app's task."""

    __slots__ = ("bridge", "scope")

    bridge: AsgiBridge
    scope: HTTPScope
    record: Record | None

    def start(self) -> None:
        recorder = self.bridge.recorder
        if recorder is not None:
            recorder.start(self)
        self.protocol.loop.create_task(self.run())

    # -- the ASGI callables ------------------------------------------------------------
    async def receive(self) -> HTTPReceiveEvents:
        protocol = self.protocol
        while not self.body:
            if self.response_state is FINISHED or protocol.closing:
                return _DISCONNECT.copy()
            if self.body_state is COMPLETE:
                if self.body_read >= 0:
                    self.body_read = -1  # the final (empty) body message was handed out
                    return _EMPTY_BODY.copy()
                if protocol.eof:
                    # The client half-closed and the app listens for a disconnect: it is one.
                    protocol.close()
                    return _DISCONNECT.copy()
            elif self.expect_continue:
                self.expect_continue = False
                protocol.write(CONTINUE)
            protocol.resume_reading()
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.body = []
        if self.body_state is not COMPLETE:
            self.body_read = 0
            protocol.resume_reading()
            return {"type": "http.request", "body": body, "more_body": True}
        self.body_read = -1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: ASGISendEvent) -> None:
        protocol = self.protocol
        # (The message's type is compared in place: the type checker tells the events apart
        # by it.)
        if message["type"] == _BODY:
            state = self.response_state
            if state is not STARTED:
                if state is PENDING and protocol.closing:
                    raise ClientDisconnected("client disconnected")
                raise RuntimeError(
                    f"{_BODY} sent " + ("after the response completed" if state is FINISHED
                                        else f"before {_START}"))
            if protocol.closing:
                raise ClientDisconnected("client disconnected")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            # The send-body step, the same as WsgiCycle._write_on_loop: inline here, as a
            # shared method would cost every request one more call. Change both together.
            if self.framing is None:
                self.write_head(body, more)
            elif body:
                self.write_body(body)
            if not more:
                self.finish()
            elif protocol.write_paused:
                await protocol.drain()
        elif message["type"] == _START:
            if protocol.closing:
                raise ClientDisconnected("client disconnected")
            if self.response_state is not PENDING:
                raise RuntimeError(f"{_START} sent twice")
            self.response_state = STARTED
            self.status = message["status"]
            self.headers = message.get("headers", ())
        else:
            raise RuntimeError(f"unexpected ASGI message type {message['type']!r} in an HTTP "
                               "cycle")

    # -- running the app ---------------------------------------------------------------
    async def run(self) -> None:
        protocol = self.protocol
        bridge = self.bridge
        if self.body_state is REFUSED:
            return
        try:
            await bridge.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or (protocol.lost and isinstance(exc, OSError)):
                bridge.log.debug("client went away during the response")
            elif isinstance(exc, asyncio.CancelledError):
                protocol.abort()
                raise
            elif self.body_state is REFUSED:
                # Its request was refused while it ran (its body read failed): the client's
                # mistake, already answered.
                bridge.log.debug("ASGI application raised %r after its request "
                                          "was refused", exc)
            else:
                bridge.log.exception(  # as Gunicorn: statsd counts log.exception
                    "Exception in ASGI application serving %s %s",
                    self.scope["method"], self.scope["path"], exc_info=exc)
            if self.body_state is not REFUSED:  # else the refusal is on its way: keep it
                self.fail()
            if not isinstance(exc, Exception):
                raise
        else:
            finished = self.response_state is FINISHED
            if not finished and (protocol.lost or self.body_state is REFUSED):
                # The client went away, or its body was refused (the app saw
                # http.disconnect): no one to answer.
                bridge.log.debug("client went away or was refused before the response")
            elif not finished:
                bridge.log.error(
                    "ASGI application returned without %s response to %s %s",
                    "completing its" if self.response_state is STARTED else "sending a",
                    self.scope["method"], self.scope["path"])
                self.fail()
        finally:
            if bridge.recorder is not None:
                bridge.recorder.end(self)

