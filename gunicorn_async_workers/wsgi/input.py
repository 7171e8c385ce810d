"""`wsgi.input`: a blocking, file-like reader of a request body that arrives on the loop.

The app's thread reads; the event loop feeds. Only what the app has not read yet is held
(the protocol stops reading the socket above the exchange's high-water mark), so a large
upload never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..http.exchange import COMPLETE, ClientDisconnected

if TYPE_CHECKING:
    from .bridge import WsgiCycle

# How long a waiting reader sleeps before it looks again (a safety net, not the signal).
_WAIT = 1.0


class WsgiInput:
    """PEP 3333 input stream: read, readline, readlines and iteration, all bounded."""

    def __init__(self, cycle: WsgiCycle | None) -> None:
        self.cycle = cycle
        self.buffer = b""
        self.done = cycle is None

    def _next_chunk(self) -> bytes:
        """The next body bytes from the loop; b"" at the end of the body."""
        cycle = self.cycle
        if self.done or cycle is None or cycle.cond is None:
            return b""
        cond = cycle.cond
        protocol = cycle.protocol
        loop = protocol.loop
        with cond:
            cycle.waiter = cond  # set before looking: a wake-up cannot be missed
            try:
                while not cycle.body:
                    if cycle.body_state is COMPLETE:
                        self.done = True
                        return b""
                    if protocol.closing:
                        raise ClientDisconnected("client disconnected while sending the body")
                    if cycle.expect_continue:
                        cycle.expect_continue = False
                        loop.call_soon_threadsafe(cycle.send_continue)
                    if protocol.read_paused:
                        loop.call_soon_threadsafe(protocol.resume_reading)
                    cond.wait(_WAIT)
            finally:
                cycle.waiter = None
            chunks = cycle.body
            cycle.body = []
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            cycle.body_read -= len(data)
        if protocol.read_paused:
            loop.call_soon_threadsafe(protocol.resume_reading)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self.buffer]
            self.buffer = b""
            while True:
                data = self._next_chunk()
                if not data:
                    return b"".join(parts)
                parts.append(data)
        while len(self.buffer) < size:
            data = self._next_chunk()
            if not data:
                break
            self.buffer += data
        result, self.buffer = self.buffer[:size], self.buffer[size:]
        return result

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0 and (limit is None or end < limit):
                line, self.buffer = self.buffer[:end + 1], self.buffer[end + 1:]
                return line
            if limit is not None and len(self.buffer) >= limit:
                line, self.buffer = self.buffer[:limit], self.buffer[limit:]
                return line
            data = self._next_chunk()
            if not data:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """Nothing to release: the server owns the connection."""


# The input of every request without a body: one shared, always-empty stream (its buffer
# stays b"", so threads reading it at once see the same nothing).
NO_BODY = WsgiInput(None)
