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

    __slots__ = ("chunks", "eof", "offset", "size")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.offset = 0  # bytes of chunks[0] already read
        self.size = 0  # bytes not read yet
        self.eof = False

    def feed_data(self, data: bytes) -> None:
        if self.eof:
            raise EOFError("stream ended")
        if data:
            self.chunks.append(data)
            self.size += len(data)

    def feed_eof(self) -> None:
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        self.chunks.clear()
        self.offset = self.size = 0

    def at_eof(self) -> Generator[None, None, bool]:
        """True once the stream has ended with nothing left to read; waits while it cannot
        tell."""
        while not self.size:
            if self.eof:
                return True
            yield
        return False

    def read_exact(self, n: int) -> Generator[None, None, bytes | memoryview]:
        """The next `n` bytes, waiting until they have arrived; EOFError if they never
        will."""
        while self.size < n:
            if self.eof:
                raise EOFError(f"stream ends after {self.size} bytes, expected {n} bytes")
            yield
        if not n:
            return b""
        self.size -= n
        chunks = self.chunks
        first = chunks[0]
        start = self.offset
        end = start + n
        length = len(first)
        if end < length:
            self.offset = end
            return first[start:end] if n < _VIEW_FROM else memoryview(first)[start:end]
        chunks.popleft()
        self.offset = 0
        if end == length:
            return first if not start else (
                first[start:] if n < _VIEW_FROM else memoryview(first)[start:])
        parts = [memoryview(first)[start:]]
        missing = end - length
        while missing:
            chunk = chunks[0]
            if len(chunk) <= missing:
                chunks.popleft()
                parts.append(chunk)
                missing -= len(chunk)
            else:
                parts.append(memoryview(chunk)[:missing])
                self.offset = missing
                missing = 0
        return b"".join(parts)


def parse_frames_from_chunks(ws: Protocol) -> None:
    """Start `ws`'s frame parser over a `ChunkReader`, before any byte is received.

    A server protocol's parser would first read the upgrade request; the HTTP protocol has
    parsed it already (and `ServerProtocol.accept` judges it), so frames are parsed at once.
    """
    ws.reader = ChunkReader()  # type: ignore[assignment]
    ws.parser = Protocol.parse(ws)
    next(ws.parser)
