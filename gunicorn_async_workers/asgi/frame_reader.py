"""The buffer the socket is read into once a connection is a WebSocket.

The transport reads straight into a `FrameBuffer` (`asyncio.BufferedProtocol`'s
`get_buffer`/`buffer_updated`). On the fast path the `websockets` frame parser reads from that
same buffer (`websockets_library.ParserInput`): the library's own `StreamReader` would take a
fresh `bytes` per read from the transport, append it to a `bytearray` and slice each payload
out as another one: three copies of every byte before the unmasking, the payload's own. Here
the kernel's copy into the buffer is the only one; a payload reaches the unmasking as a view of
it. (Through the library's public API, `websocket_public.PublicApiInput`, a read is copied out
once and the buffer is emptied at once.)

Frame parsing, unmasking and every check stay the library's: this is only where its parser
gets its bytes from (the `read_exact`, `at_eof`, `discard`, `feed_data`, `feed_eof` and `eof`
it uses once the handshake is over). A server's parser unmasks every payload, so a view
handed out is copied by the unmasking at once and never kept; the buffer may then be reused.

While the parser waits for the rest of a frame's payload, `pending` names that frame (its
first header byte and mask) and `pending_payload` gives what has arrived of it, so that the
session can check a text frame's UTF-8 as it comes in.

Idle connections hold no buffer: a buffer with nothing unread goes back to a small pool; one
that has received only a few bytes (the start of a frame) gives them a copy of their own and
goes back too; and one that has held more of a frame for a second untouched keeps only those
bytes. This module imports nothing of the library.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

# What one read may fill, and the most a connection holds while frames are small.
BUFFER_SIZE = 128 * 1024
# A read is offered at least this much room (the unread tail is moved to the front first).
_MIN_ROOM = 32 * 1024
# Reads shorter than this are sliced (a small copy is cheaper than a view object).
_VIEW_FROM = 256
# A buffer that has received no more than this gives its unread bytes a copy of their own.
_KEEP_COPIED = 8 * 1024
# A moved buffer keeps up to this many bytes read before the unread ones: a frame header
# (2 + 8 + 4), so that `_payload_frame` finds the header of the payload being waited for.
_HEADER_MAX = 14
# Buffers with nothing unread, kept for the next read of any connection of this process.
_POOL: list[bytearray] = []
_POOL_MAX = 16


class FrameBuffer:
    """Received bytes, read from the front in exact sizes; the transport reads into its tail."""

    __slots__ = ("buffer", "end", "eof", "idle_mark", "mask_at", "pending", "start", "wanted")

    def __init__(self) -> None:
        self.buffer: bytearray | None = None  # None while nothing is unread
        self.start = 0  # bytes of the buffer already read by the parser
        self.end = 0  # bytes of the buffer received
        self.wanted = 0  # the read the parser waits for, counted from `start`
        self.eof = False
        self.idle_mark: tuple[int, int] | None = None  # (start, end) at the last shrink_idle
        # Where the last 4-byte read began (a mask, or a 4-byte payload); -1 once the buffer
        # has moved. While the parser waits for a payload, its frame's (first header byte,
        # mask); a new tuple for each frame.
        self.mask_at = -1
        self.pending: tuple[int, bytes] | None = None

    # -- the transport's side ----------------------------------------------------------
    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Room for the next read (at least `sizehint` bytes, `_MIN_ROOM` at the least)."""
        buffer = self.buffer
        if buffer is None:
            buffer = self.buffer = _POOL.pop() if _POOL else bytearray(BUFFER_SIZE)
        room = max(sizehint, _MIN_ROOM)
        if len(buffer) - self.end < room:
            buffer = self._make_room(room)
        return memoryview(buffer)[self.end:]

    def _make_room(self, room: int) -> bytearray:
        """Move the unread bytes (and up to `_HEADER_MAX` read before them) to the front,
        into a bigger buffer when they and `room` do not fit. A buffer grows towards the
        frame being waited for at most twofold per read, so a peer gets memory by sending
        bytes, never by announcing a length."""
        buffer = self.buffer
        assert buffer is not None
        start = self.start
        first = max(0, start - _HEADER_MAX)
        kept = self.end - first
        size = max(kept + room, min(self.wanted + _MIN_ROOM, 2 * len(buffer)))
        if size > len(buffer):
            if size <= BUFFER_SIZE:  # a buffer `shrink_idle` made small: back to a full one
                bigger = _POOL.pop() if _POOL else bytearray(BUFFER_SIZE)
            else:
                bigger = bytearray(size)
            bigger[:kept] = memoryview(buffer)[first:self.end]
            buffer = self.buffer = bigger
        elif first >= kept:  # the two ranges do not overlap
            buffer[:kept] = memoryview(buffer)[first:self.end]
        elif first:
            buffer[:kept] = buffer[first:self.end]
        self.start, self.end = start - first, kept
        self.mask_at -= first
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes

    def release(self) -> None:
        """Once the parser has read what it can: an emptied buffer goes back to the pool, and
        so does one that has received only a few bytes (up to `_KEEP_COPIED`), whose unread
        ones are kept in a copy of their own: a peer that sends a frame's first bytes and
        stops holds about what it sent. (More than that stays until `shrink_idle`.)"""
        buffer = self.buffer
        if buffer is None:
            return
        if self.start == self.end:
            if self.wanted:  # inside a frame's header: keep what was read of it
                self._keep_only_unread(buffer)
            else:
                self.buffer = None
                self.start = self.end = 0
                _give_back(buffer)
        elif self.end <= _KEEP_COPIED < len(buffer):  # little received: the copy is cheap
            self._keep_only_unread(buffer)

    def shrink_idle(self) -> None:
        """Called once a second: a buffer that has held part of a frame, untouched, since
        the last call keeps only those bytes, and gives its room back to the pool. So a
        peer that sends a frame's first bytes and stops holds what it sent, not a buffer."""
        buffer = self.buffer
        mark = (self.start, self.end)
        if buffer is None or len(buffer) == self.end:  # kept to what it received
            self.idle_mark = None
        elif self.idle_mark != mark:
            self.idle_mark = mark  # read since the last call (or the first call): not yet
        else:
            self.idle_mark = None
            self._keep_only_unread(buffer)

    def _keep_only_unread(self, buffer: bytearray) -> None:
        """A copy of the unread bytes (and up to `_HEADER_MAX` before them) takes the place
        of `buffer`, which goes back to the pool."""
        first = max(0, self.start - _HEADER_MAX)
        self.buffer = buffer[first:self.end]
        self.start, self.end = self.start - first, self.end - first
        self.mask_at -= first
        _give_back(buffer)

    # -- the library's StreamReader interface ------------------------------------------
    def feed_data(self, data: bytes) -> None:
        """Bytes that did not come through `get_buffer` (those after the upgrade request)."""
        if self.eof:
            raise EOFError("stream ended")
        if data:
            self.get_buffer(len(data))[:len(data)] = data
            self.end += len(data)

    def feed_eof(self) -> None:
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        self.start = self.end
        self.pending = None
        self.release()

    def at_eof(self) -> Iterable[None]:
        """`yield from` it: true once the stream has ended with nothing left to read; waits
        while it cannot tell. The library asks before every frame, and a frame has usually
        arrived: then `yield from ()` gives None (false) without making a generator."""
        if self.start != self.end:
            return ()
        return self._wait_for_eof_or_data()

    def _wait_for_eof_or_data(self) -> Generator[None, None, bool]:
        while self.start == self.end:
            if self.eof:
                return True
            yield
        return False

    def read_exact(self, n: int) -> Generator[None, None, bytes | bytearray | memoryview]:
        """The next `n` bytes, waiting until they have arrived; EOFError if they never
        will."""
        start = self.start
        end = start + n
        if end <= self.end:
            self.start = end
            if n == 4:
                self.mask_at = start
            buffer = self.buffer
            if n < _VIEW_FROM:  # (buffer is None only when nothing was ever received, n == 0)
                return buffer[start:end] if buffer is not None else b""
            assert buffer is not None  # something was received: n bytes
            return memoryview(buffer)[start:end]
        self.wanted = n
        self.pending = self._payload_frame(start, n)
        while self.end - self.start < n:
            if self.eof:
                raise EOFError(f"stream ends after {self.end - self.start} bytes, "
                               f"expected {n} bytes")
            yield
        self.wanted = 0
        self.pending = None
        return (yield from self.read_exact(n))

    def _payload_frame(self, start: int, n: int) -> tuple[int, bytes] | None:
        """When the read of `n` bytes at `start` is a frame's payload: (its first header byte,
        its mask), else None.

        The parser reads a frame as head (2 bytes), extended length (0, 2 or 8), mask (4),
        payload. A payload read follows a 4-byte read; so does a head read, after a 4-byte
        payload, which is why `n` == 2 is left out. The header must be whole in the buffer
        just before the mask (a masked client frame whose length field says `n`), else the
        frame is not named: only a check comes later, never a wrong one.
        """
        at = start - 4
        if n == 2 or at < 2 or self.mask_at != at:
            return None
        buffer = self.buffer
        assert buffer is not None
        for extended, code in ((0, n), (2, 126), (8, 127)):
            head = at - 2 - extended
            if head < 0:
                return None
            fits = int.from_bytes(buffer[head + 2:at], "big") == n if extended else n < 126
            if fits and buffer[head + 1] == 0x80 | code:  # the mask bit, the length code
                return buffer[head], bytes(buffer[at:start])
        return None

    def pending_payload(self) -> tuple[int, memoryview]:
        """What has arrived of the payload the parser waits for (see `pending`), masked, and
        where in the payload it starts (here always 0: all of it)."""
        assert self.buffer is not None
        return 0, memoryview(self.buffer)[self.start:self.end]


def _give_back(buffer: bytearray) -> None:
    """A buffer this connection no longer needs: kept for another read if it is a full one."""
    if len(buffer) == BUFFER_SIZE and len(_POOL) < _POOL_MAX:
        _POOL.append(buffer)

