"""Limits on what a hostile HTTP/2 peer can make a connection do, decided before `h2` runs.

`FrameGuard` reads the 9-byte frame headers of the bytes a peer sends (type, flags,
length; never a payload, never a copy) in front of `h2.receive_data`, and counts what
costs the worker work without giving it a request. When a limit is passed it returns a
`Refusal`: the connection answers GOAWAY with its code and closes, and h2 never sees the
bytes: the whole read that passed the limit is dropped, so the GOAWAY's last stream is the
last one h2 took before it. Sans-I/O: bytes and the loop's time in, a decision out.

The limits, per connection:

- **A header block's size** (CONTINUATION flood, CVE-2024-27316). A HEADERS frame without
  END_HEADERS and the CONTINUATION frames after it are one block, which h2 buffers whole
  (up to 64 frames of `http2_max_frame_size` each) before decoding it. Here a block may
  carry at most `http2_max_header_list_size` + `HEADER_BLOCK_SLACK` bytes of frame
  payload: HPACK never encodes a field in more bytes than the 32 + name + value the limit
  counts it as, so an honest block under the limit always fits, and the slack covers a
  HEADERS frame's padding and priority. A larger one is refused as soon as the header of
  the frame that crosses the line arrives (its payload is never read): GOAWAY
  ENHANCE_YOUR_CALM. Not PROTOCOL_ERROR, since the peer broke no rule of the protocol
  (the setting is advisory); RFC 9113 10.5.1 lets a server that will not process a
  field block close the connection, and section 7 names ENHANCE_YOUR_CALM for a peer
  "exhibiting a behavior that might be generating excessive load". With
  `http2_max_header_list_size` 0 (no limit) only h2's own 64-frame cap applies.
- **RST_STREAM frames** (rapid reset, CVE-2023-44487): a leaky bucket that holds
  2 × `http2_max_concurrent_streams` resets (at least `MIN_RESET_BURST`) and drains as
  many per second. A client cancelling a page's worth of requests stays far below; a
  peer opening and resetting streams in a loop gets GOAWAY ENHANCE_YOUR_CALM after one
  bucketful. A reset stream's app is woken (it hears `http.disconnect`), so the streams
  that do get through cost no more than answered requests.
- **PING and SETTINGS frames** (PING and SETTINGS floods, CVE-2019-9512 and -9515): each
  makes h2 queue an acknowledgement for the peer, which a peer that never reads lets pile
  up. A leaky bucket of `CONTROL_BURST` frames that drains `CONTROL_RATE` per second;
  past it, GOAWAY ENHANCE_YOUR_CALM. The acknowledgements queued are thus at most about
  `CONTROL_BURST` × 17 bytes, plus `CONTROL_RATE` × 17 bytes a second for as long as the
  connection lives (an idle one is closed after `keepalive`). Acknowledgements (ACK flag)
  from the peer are not counted.

And per stream, `body_overdue`: a request body must arrive within `body_timeout` seconds
and, after `min_rate_grace`, at `body_min_rate` bytes a second, as over HTTP/1.1 (counted
while it is the client's turn: not while the app leaves its body unread, nor before a
`100 Continue`). A stream that falls behind is reset (CANCEL) and its app hears a
disconnect; the connection and its other streams go on.

Not limited here: frames that make h2 answer with RST_STREAM (frames on closed streams,
CVE-2019-9514) and empty DATA frames (CVE-2019-9518) cost CPU only, as much as any frame;
a peer that never opens its window holds its streams (each with about one app write
buffered, the app waiting in `drain`) for as long as it keeps the connection open.

Cost: `scan` runs on every `data_received`; it is a loop over frame headers. Measured with
timeit on the development machine (Python 3.11, 2 shared cores): 0.09 µs for a read wholly
inside a payload, 0.9 µs for a 64 KiB read of four DATA frames, 25 µs for a read of 100
HEADERS frames, which take h2 about 5 ms to process.
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from .h2_preface import PREFACE

# Frame types (RFC 9113 6) and flags the guard reads.
_HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _CONTINUATION = 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
_END_HEADERS = 0x4
_ACK = 0x1
# The types that are looked at beyond their length, as a bit set (DATA is not one).
_WATCHED = ((1 << _HEADERS) | (1 << _RST_STREAM) | (1 << _SETTINGS) | (1 << _PING)
            | (1 << _GOAWAY) | (1 << _CONTINUATION))
# What a peer's GOAWAY frame's type becomes before h2 sees it: a type no one defines, which
# h2 passes over (RFC 9113 5.5). h2 takes a GOAWAY for the end of everything and refuses
# any frame after it, also a PING, a WINDOW_UPDATE for a response still going out or the
# rest of a request body (RFC 9113 6.8 lets the peer go on with its open streams); the
# connection notes the peer's GOAWAY from `peer_goaway` instead.
PEER_GOAWAY = 0xF7

# Bytes a header block's frames may carry beyond the header list size: a HEADERS frame's
# pad length and padding (at most 256) and its priority fields (5).
HEADER_BLOCK_SLACK = 512
# The fewest RST_STREAM frames the bucket holds, whatever http2_max_concurrent_streams is.
MIN_RESET_BURST = 100
# PING and SETTINGS frames (not acknowledgements) a peer may send at once, and per second
# after that. A client sends a handful (a keep-alive PING every few seconds at most).
CONTROL_BURST = 1000
CONTROL_RATE = 100.0


class Refusal:
    """Why a connection is closed, and the GOAWAY error code that tells the peer."""

    __slots__ = ("code", "reason")

    def __init__(self, code: ErrorCodes, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Refusal({self.code.name}, {self.reason!r})"


class LeakyBucket:
    """Events counted against a burst that drains at a steady rate per second."""

    __slots__ = ("burst", "last", "level", "rate")

    def __init__(self, burst: float, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self.level = 0.0
        self.last = 0.0

    def overflows(self, now: float) -> bool:
        """Count one event at `now`: whether the bucket is now over its burst."""
        level = self.level - (now - self.last) * self.rate
        self.last = now
        self.level = level = (level if level > 0.0 else 0.0) + 1.0
        return level > self.burst


class FrameGuard:
    """One connection's limits, fed every byte the peer sends (the preface first)."""

    __slots__ = ("block", "block_limit", "controls", "feed", "partial", "peer_goaway",
                 "resets", "skip")

    def __init__(self, *, max_header_list_size: int, max_concurrent_streams: int) -> None:
        # Payload bytes of the current frame still to come (the preface is skipped whole).
        self.skip = len(PREFACE)
        self.partial = b""  # the start of a frame header cut by the end of a read
        self.feed = b""  # what h2 is fed of the last read (see `scan`)
        self.peer_goaway = False  # the peer has sent GOAWAY
        # The open header block's payload bytes so far, or -1 when none is open.
        self.block = -1
        self.block_limit = (max_header_list_size + HEADER_BLOCK_SLACK
                            if max_header_list_size else 0)
        burst = max(2 * max_concurrent_streams, MIN_RESET_BURST)
        self.resets = LeakyBucket(burst, burst)
        self.controls = LeakyBucket(CONTROL_BURST, CONTROL_RATE)

    def scan(self, data: bytes, now: float) -> Refusal | None:
        """Read the frame headers in `data` (the next bytes from the peer). What h2 is to
        be fed of them is then `feed`: `data` itself, less a frame header cut by the end
        of the read (held back and fed with the next read, so that h2 never holds part of
        a frame header this guard may have to change), with each GOAWAY's type rewritten
        (see `PEER_GOAWAY`)."""
        partial = self.partial
        if partial:  # rare: a frame header was cut by the end of the last read
            data = partial + data
            self.partial = b""
        end = len(data)
        pos = self.skip
        if pos >= end:  # all of it inside one payload
            self.skip = pos - end
            self.feed = data
            return None
        block = self.block
        goaways: list[int] | None = None
        while pos + 9 <= end:
            kind = data[pos + 3]
            length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            if kind < 10 and (_WATCHED >> kind) & 1:
                self.block = block
                if kind == _GOAWAY:
                    refusal = self.goaway(data[pos + 5:pos + 9], length)
                    if goaways is None:
                        goaways = []
                    goaways.append(pos + 3)
                else:
                    refusal = self.frame(kind, data[pos + 4], length, now)
                if refusal is not None:
                    return refusal
                block = self.block
            elif block >= 0:
                block = -1  # h2 refuses a frame between a block's frames (PROTOCOL_ERROR)
            pos += 9 + length
        self.block = block
        if pos > end:
            self.skip = pos - end
        else:
            self.skip = 0
            if pos < end:
                self.partial = data[pos:]
                data = data[:pos]
        if goaways is not None:
            changed = bytearray(data)
            for index in goaways:
                changed[index] = PEER_GOAWAY
            data = bytes(changed)
            self.peer_goaway = True
        self.feed = data
        return None

    def goaway(self, stream_id: bytes, length: int) -> Refusal | None:
        """The peer's GOAWAY, checked here as h2 would (RFC 9113 6.8): it will not see it."""
        if stream_id != b"\0\0\0\0" and stream_id != b"\x80\0\0\0":
            return Refusal(ErrorCodes.PROTOCOL_ERROR, "GOAWAY on a stream")
        if length < 8:
            return Refusal(ErrorCodes.FRAME_SIZE_ERROR, f"GOAWAY of {length} bytes")
        return None

    def frame(self, kind: int, flags: int, length: int, now: float) -> Refusal | None:
        """One frame header of a watched type."""
        if kind in (_HEADERS, _CONTINUATION):
            size = length if kind == _HEADERS or self.block < 0 else self.block + length
            limit = self.block_limit
            if limit and size > limit:
                return Refusal(ErrorCodes.ENHANCE_YOUR_CALM,
                               f"a header block of at least {size} bytes, "
                               f"http2_max_header_list_size allows {limit} with padding")
            self.block = -1 if flags & _END_HEADERS else size
            return None
        if self.block >= 0:
            self.block = -1
        if kind == _RST_STREAM:
            if self.resets.overflows(now):
                return Refusal(ErrorCodes.ENHANCE_YOUR_CALM,
                               f"over {self.resets.burst:.0f} RST_STREAM frames at "
                               f"{self.resets.rate:.0f} a second (rapid reset)")
        elif kind == _SETTINGS and flags & _ACK and length:
            # h2 would call it a PROTOCOL_ERROR; RFC 9113 6.5 says FRAME_SIZE_ERROR.
            return Refusal(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
        elif not flags & _ACK and self.controls.overflows(now):
            return Refusal(ErrorCodes.ENHANCE_YOUR_CALM,
                           f"over {CONTROL_BURST} PING and SETTINGS frames at "
                           f"{CONTROL_RATE:.0f} a second")
        return None


def body_overdue(elapsed: float, received: int, *, timeout: float, min_rate: float,
                 grace: float) -> str | None:
    """Why a request body that has had `elapsed` seconds to send `received` bytes is too
    slow (the limits as the HTTP/1.1 protocol applies them), or None."""
    if timeout > 0 and elapsed > timeout:
        return f"no end of the request body after {elapsed:.1f} s (body_timeout {timeout})"
    if min_rate > 0 and elapsed > grace + received / min_rate:
        return (f"request body of {received} bytes in {elapsed:.1f} s, under "
                f"body_min_rate {min_rate} after min_rate_grace {grace}")
    return None
