"""The byte stream that the `websockets` frame parser reads, without copying received data.

The library's own `StreamReader` appends every received chunk to one `bytearray` and hands
each frame's payload out as a fresh `bytearray` slice: two copies of every byte before the
unmasking copy, the payload's own. `ChunkReader` keeps the chunks the transport delivered as
they are and hands out read-only views of them; bytes are joined only for a read that spans
two chunks. Frame parsing, unmasking and every check stay the library's: this is only where
its parser gets its bytes from (the `read_exact`, `at_eof`, `discard`, `feed_data`,
`feed_eof` and `eof` it uses once the handshake is over). A server's parser unmasks every
payload, so a view handed out is copied once, by the unmasking, and never kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator

from websockets.protocol import Protocol

# Reads shorter than this are sliced (a small copy is cheaper than a view object).
_VIEW_FROM = 256


class ChunkReader:
    """Received chunks, read from the front in exact sizes."""

    __slots__ = ("eof", "head", "head_end", "offset", "rest", "rest_size")

    def __init__(self) -> None:
        self.head = b""  # the chunk being read
        self.head_end = 0  # its length
        self.offset = 0  # bytes of it already read
        self.rest: deque[bytes] = deque()  # the chunks after it
        self.rest_size = 0
        self.eof = False

    def feed_data(self, data: bytes) -> None:
        if self.eof:
            raise EOFError("stream ended")
        if not data:
            return
        if self.offset == self.head_end and not self.rest:  # everything was read
            self.head = data
            self.head_end = len(data)
            self.offset = 0
        else:
            self.rest.append(data)
            self.rest_size += len(data)

    def feed_eof(self) -> None:
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        self.head = b""
        self.head_end = self.offset = self.rest_size = 0
        self.rest.clear()

    def at_eof(self) -> Generator[None, None, bool]:
        """True once the stream has ended with nothing left to read; waits while it cannot
        tell."""
        while self.offset == self.head_end and not self.rest:
            if self.eof:
                return True
            yield
        return False

    def read_exact(self, n: int) -> Generator[None, None, bytes | memoryview]:
        """The next `n` bytes, waiting until they have arrived; EOFError if they never
        will."""
        start = self.offset
        end = start + n
        if end <= self.head_end:  # the common case: within the chunk being read
            self.offset = end
            return self.head[start:end] if n < _VIEW_FROM else memoryview(self.head)[start:end]
        return (yield from self._read_across(n))

    def _read_across(self, n: int) -> Generator[None, None, bytes | memoryview]:
        """A read that goes past the chunk being read."""
        while self.head_end - self.offset + self.rest_size < n:
            if self.eof:
                have = self.head_end - self.offset + self.rest_size
                raise EOFError(f"stream ends after {have} bytes, expected {n} bytes")
            yield
        if self.offset == self.head_end:  # the chunk being read is used up: on to the next
            self._next_chunk()
            if n <= self.head_end:  # the read lies within it: no copy
                return (yield from self.read_exact(n))
        parts: list[bytes | memoryview] = []
        missing = n
        while True:
            start = self.offset
            if start + missing <= self.head_end:
                self.offset = start + missing
                parts.append(memoryview(self.head)[start:self.offset])
                return b"".join(parts)
            parts.append(memoryview(self.head)[start:])
            missing -= self.head_end - start
            self._next_chunk()

    def _next_chunk(self) -> None:
        head = self.head = self.rest.popleft()
        self.head_end = len(head)
        self.rest_size -= self.head_end
        self.offset = 0


def parse_frames_from_chunks(ws: Protocol) -> None:
    """Start `ws`'s frame parser over a `ChunkReader`, before any byte is received.

    A server protocol's parser would first read the upgrade request; the HTTP protocol has
    parsed it already (and `ServerProtocol.accept` judges it), so frames are parsed at once.
    """
    ws.reader = ChunkReader()  # type: ignore[assignment]
    ws.parser = Protocol.parse(ws)
    next(ws.parser)
