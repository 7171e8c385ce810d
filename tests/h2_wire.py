"""A raw-frame HTTP/2 client for conformance tests: it writes any frame, well-formed or not,
and reads the server's frames with bounded waits that say what arrived instead.

Well-formed frames are built with hyperframe and header blocks with an hpack Encoder; malformed
ones (bad lengths, bad padding, reserved bits, unknown types, frames on the wrong stream) are
written as hand-made bytes with `raw_frame`. The `expect_*` methods read until the awaited
outcome or a contradiction, each within `timeout` seconds, and fail with the list of what came.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
READ_TIMEOUT = 3.0  # how long any expectation waits for the server
FRAME_HEADER_SIZE = 9
DEFAULT_MAX_FRAME_SIZE = 16384  # ours, as a client: we never raise it, so more is not a frame
STATIC_TABLE_SIZE = 61  # RFC 7541 Appendix A

# Frame types (RFC 9113 section 6) and flags, for hand-made frames.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# SETTINGS identifiers (RFC 9113 section 6.5.2).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

Headers = list[tuple[str, str]]


class Closed:
    """The server closed the connection (EOF or reset)."""

    def __init__(self, how: str, partial: int = 0) -> None:
        self.how = how
        self.partial = partial  # bytes of an unfinished frame read before the close

    def __repr__(self) -> str:
        tail = f" after {self.partial} bytes of an unfinished frame" if self.partial else ""
        return f"connection closed ({self.how}){tail}"


class NotAFrame:
    """Bytes that cannot be an HTTP/2 frame to us (a length above our SETTINGS_MAX_FRAME_SIZE),
    such as an HTTP/1.x response."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"bytes that are not a frame: {self.data[:60]!r}"


class Timeout:
    """Nothing more arrived within the wait."""

    def __repr__(self) -> str:
        return "nothing more (timeout)"


Event = Frame | Closed | NotAFrame | Timeout


@dataclass
class Response:
    """One response stream as received: its header blocks, DATA and how it ended."""

    stream_id: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    trailers: Headers = field(default_factory=list)
    data_frames: list[int] = field(default_factory=list)  # the length of each DATA frame

    @property
    def status(self) -> int:
        return int(dict(self.headers)[":status"])


def error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def describe(event: Event) -> str:
    """One line per event for failure messages: type, stream, flags and what matters."""
    if not isinstance(event, Frame):
        return repr(event)
    flags = ",".join(sorted(event.flags))
    text = f"{type(event).__name__.removesuffix('Frame').upper()}(stream {event.stream_id}"
    if flags:
        text += f", {flags}"
    if isinstance(event, GoAwayFrame | RstStreamFrame):
        text += f", {error_name(event.error_code)}"
    if isinstance(event, GoAwayFrame) and event.additional_data:
        text += f", {event.additional_data[:80]!r}"
    if isinstance(event, DataFrame):
        text += f", {len(event.data)} bytes"
    if isinstance(event, PingFrame):
        text += f", {event.opaque_data!r}"
    if isinstance(event, SettingsFrame) and event.settings:
        text += f", {dict(event.settings)}"
    if isinstance(event, WindowUpdateFrame):
        text += f", +{event.window_increment}"
    decoded = getattr(event, "decoded", None)
    if decoded is not None:
        text += f", {decoded}"
    return text + ")"


def raw_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"", *,
              length: int | None = None, reserved_bit: bool = False) -> bytes:
    """A frame built by hand: `length` overrides the length field (the payload is sent as
    given), `reserved_bit` sets the R bit before the stream identifier."""
    n = len(payload) if length is None else length
    sid = stream_id | (0x80000000 if reserved_bit else 0)
    return (n.to_bytes(3, "big") + bytes((frame_type, flags)) + sid.to_bytes(4, "big")
            + payload)


# -- HPACK representations built by hand (RFC 7541 sections 5 and 6) -------------------------
def hpack_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """An integer with an N-bit prefix (RFC 7541 section 5.1); `first_byte` holds the
    representation's pattern bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def huffman(text: bytes, *, pad_with_ones: bool = True, extra: bytes = b"",
            eos: bool = False) -> bytes:
    """`text` Huffman-coded (RFC 7541 Appendix B) then padded to a byte: with ones as the
    RFC requires, or with zeros; `eos` adds the EOS symbol, `extra` whole bytes after it."""
    codes = [(REQUEST_CODES[b], REQUEST_CODES_LENGTH[b]) for b in text]
    if eos:
        codes.append((REQUEST_CODES[256], REQUEST_CODES_LENGTH[256]))
    bits, nbits = 0, 0
    for code, length in codes:
        bits = (bits << length) | code
        nbits += length
    pad = -nbits % 8
    bits = (bits << pad) | ((1 << pad) - 1 if pad_with_ones else 0)
    return (bits.to_bytes((nbits + pad) // 8, "big") if nbits else b"") + extra


def string_literal(text: bytes, *, huffman_coded: bool = False) -> bytes:
    """A string literal (RFC 7541 section 5.2): H bit, length, octets."""
    data = huffman(text) if huffman_coded else text
    return hpack_integer(len(data), 7, 0x80 if huffman_coded else 0) + data


LITERAL_KINDS = {"incremental": (0x40, 6), "without": (0x00, 4), "never": (0x10, 4)}


def literal_field(name: int | bytes, value: bytes, *, indexing: str = "without",
                  huffman_coded: bool = False) -> bytes:
    """A literal header field (RFC 7541 section 6.2): `name` is a table index or a new name."""
    pattern, prefix = LITERAL_KINDS[indexing]
    if isinstance(name, int):
        head = hpack_integer(name, prefix, pattern)
    else:
        head = bytes((pattern,)) + string_literal(name, huffman_coded=huffman_coded)
    return head + string_literal(value, huffman_coded=huffman_coded)


def table_size_update(size: int) -> bytes:
    """A dynamic table size update (RFC 7541 section 6.3)."""
    return hpack_integer(size, 5, 0x20)


class H2Wire:
    """One client connection. `H2Wire.open(host, port)` connects and does the handshake of h2spec:
    preface, our SETTINGS, then both the server's SETTINGS (acknowledged) and its ACK of ours."""

    def __init__(self, sock: socket.socket, timeout: float = READ_TIMEOUT) -> None:
        self.sock = sock
        self.timeout = timeout
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.buffer = b""
        self.closed: Closed | None = None
        self.server_settings: dict[int, int] = {}
        self.seen: list[str] = []  # every event read, described, for failure messages
        self._block: tuple[Frame, bytearray] | None = None  # a header block being received
        self._held: list[bytes] | None = None  # writes kept by together()

    @classmethod
    def open(cls, host: str, port: int, *, handshake: bool = True,
             timeout: float = READ_TIMEOUT) -> H2Wire:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire = cls(sock, timeout)
        if handshake:
            try:
                wire.handshake()
            except BaseException:
                wire.close()
                raise
        return wire

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        """Write bytes as they are (or keep them, inside `together()`). A write into a
        connection the server already closed is not an error here (h2spec's rule too): the
        next read reports the close."""
        if self._held is not None:
            self._held.append(data)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """The frames written inside leave in one write, so the server reads them in one
        piece (separate writes may or may not be coalesced: the outcome would vary)."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
        self.send_bytes(b"".join(held))

    def send_raw(self, frame_type: int, flags: int, stream_id: int, payload: bytes = b"", *,
                 length: int | None = None, reserved_bit: bool = False) -> None:
        self.send_bytes(raw_frame(frame_type, flags, stream_id, payload, length=length,
                                  reserved_bit=reserved_bit))

    def send_frame(self, frame: Frame) -> None:
        self.send_bytes(frame.serialize())

    def encode(self, headers: Iterable[tuple[str, str]]) -> bytes:
        """A header block from the connection's encoder (its dynamic table is kept in step
        with the server's decoder only if the block is then sent)."""
        return bytes(self.encoder.encode(list(headers)))

    def settings(self, settings: dict[int, int] | None = None) -> None:
        self.send_frame(SettingsFrame(0, settings or {}))

    def settings_pairs(self, pairs: list[tuple[int, int]]) -> None:
        """SETTINGS with the pairs in order, repeats included (hyperframe keeps one per id)."""
        payload = b"".join(i.to_bytes(2, "big") + v.to_bytes(4, "big") for i, v in pairs)
        self.send_raw(SETTINGS, 0, 0, payload)

    def settings_ack(self) -> None:
        self.send_frame(SettingsFrame(0, flags=["ACK"]))

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        self.send_bytes(PREFACE)
        self.settings(settings if settings is not None else {INITIAL_WINDOW_SIZE: 65535})
        got_settings = got_ack = False
        deadline = time.monotonic() + self.timeout
        while not (got_settings and got_ack):
            event = self.next_event(deadline)
            if isinstance(event, SettingsFrame):
                if "ACK" in event.flags:
                    got_ack = True
                else:
                    got_settings = True  # recorded and acknowledged by next_event
            elif not isinstance(event, Frame):
                self.fail("the handshake: the server's SETTINGS and its ACK of ours")

    def headers(self, stream_id: int, headers: Iterable[tuple[str, str]], *,
                end_stream: bool = True, end_headers: bool = True, pad_length: int = 0,
                depends_on: int | None = None, weight: int = 16, exclusive: bool = False,
                block: bytes | None = None) -> None:
        """HEADERS with the block encoded from `headers` (or `block` as given)."""
        flags = []
        if end_stream:
            flags.append("END_STREAM")
        if end_headers:
            flags.append("END_HEADERS")
        if pad_length:
            flags.append("PADDED")
        if depends_on is not None:
            flags.append("PRIORITY")
        frame = HeadersFrame(stream_id, self.encode(headers) if block is None else block,
                             pad_length=pad_length, flags=flags, depends_on=depends_on or 0,
                             stream_weight=weight - 1, exclusive=exclusive)
        self.send_frame(frame)

    def continuation(self, stream_id: int, block: bytes, *, end_headers: bool = True) -> None:
        if stream_id == 0:  # hyperframe refuses to build it: by hand
            self.send_raw(CONTINUATION, END_HEADERS if end_headers else 0, 0, block)
            return
        self.send_frame(ContinuationFrame(stream_id, block,
                                          flags=["END_HEADERS"] if end_headers else []))

    def data(self, stream_id: int, payload: bytes, *, end_stream: bool = True,
             pad_length: int = 0) -> None:
        flags = (["END_STREAM"] if end_stream else []) + (["PADDED"] if pad_length else [])
        if stream_id == 0:  # hyperframe refuses to build it: by hand
            self.send_raw(DATA, END_STREAM if end_stream else 0, 0, payload)
            return
        self.send_frame(DataFrame(stream_id, payload, pad_length=pad_length, flags=flags))

    def priority(self, stream_id: int, *, depends_on: int = 0, weight: int = 16,
                 exclusive: bool = False) -> None:
        payload = ((depends_on | (0x80000000 if exclusive else 0)).to_bytes(4, "big")
                   + bytes((weight - 1,)))
        self.send_raw(PRIORITY, 0, stream_id, payload)

    def rst_stream(self, stream_id: int, error_code: int) -> None:
        self.send_raw(RST_STREAM, 0, stream_id, error_code.to_bytes(4, "big"))

    def ping(self, opaque_data: bytes = bytes(8), *, ack: bool = False) -> None:
        self.send_frame(PingFrame(0, opaque_data, flags=["ACK"] if ack else []))

    def goaway(self, last_stream_id: int, error_code: int, debug: bytes = b"") -> None:
        self.send_frame(GoAwayFrame(0, last_stream_id, error_code, debug))

    def window_update(self, stream_id: int, increment: int) -> None:
        self.send_raw(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))

    def push_promise(self, stream_id: int, promised_stream_id: int, block: bytes) -> None:
        self.send_frame(PushPromiseFrame(stream_id, promised_stream_id, block,
                                         flags=["END_HEADERS"]))

    # -- reading ---------------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on timeout or close (then `self.closed` says which)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            self.closed = Closed("reset", len(self.buffer))
            return False
        if not data:
            self.closed = Closed("EOF", len(self.buffer))
            return False
        self.buffer += data
        return True

    def read_bytes(self, deadline: float) -> bytes:
        """Whatever bytes arrive first (for a reply that may not be HTTP/2 at all)."""
        if not self.buffer:
            self._fill(deadline)
        data, self.buffer = self.buffer, b""
        return data

    def next_event(self, deadline: float) -> Event:
        """The next frame (HEADERS and CONTINUATION carry `.decoded` once a block ends), or
        Closed, NotAFrame, Timeout. The server's SETTINGS are recorded and acknowledged, as
        any client does (a server may send more than one)."""
        event = self._next_event(deadline)
        self.seen.append(describe(event))
        if isinstance(event, SettingsFrame) and "ACK" not in event.flags:
            self.server_settings.update(event.settings)
            self.settings_ack()
        return event

    def _next_event(self, deadline: float) -> Event:
        while len(self.buffer) < FRAME_HEADER_SIZE:
            if self.closed or not self._fill(deadline):
                return self.closed or Timeout()
        frame, length = Frame.parse_frame_header(memoryview(self.buffer[:FRAME_HEADER_SIZE]))
        if length > DEFAULT_MAX_FRAME_SIZE:
            data, self.buffer = self.buffer, b""
            return NotAFrame(data)
        while len(self.buffer) < FRAME_HEADER_SIZE + length:
            if self.closed or not self._fill(deadline):
                return self.closed or Timeout()
        body = self.buffer[FRAME_HEADER_SIZE:FRAME_HEADER_SIZE + length]
        self.buffer = self.buffer[FRAME_HEADER_SIZE + length:]
        frame.parse_body(memoryview(body))
        if isinstance(frame, HeadersFrame | PushPromiseFrame):
            self._block = (frame, bytearray(frame.data))
        elif isinstance(frame, ContinuationFrame) and self._block is not None:
            self._block[1].extend(frame.data)
        if isinstance(frame, HeadersFrame | PushPromiseFrame | ContinuationFrame) \
                and "END_HEADERS" in frame.flags and self._block is not None:
            decoded = [(str(k), str(v)) for k, v in
                       self.decoder.decode(bytes(self._block[1]), raw=False)]
            frame.decoded = decoded  # type: ignore[attr-defined]
            self._block = None
        return frame

    def fail(self, expected: str) -> None:
        raise AssertionError(
            f"expected {expected} within {self.timeout} s; the server sent: "
            + ("; ".join(self.seen) or "nothing"))

    def expect(self, expected: str, judge: Callable[[Event], bool | None]) -> Event:
        """Read events until `judge` returns True (the outcome: returned) or False (a
        contradiction: fail); None skips the event. Closed, NotAFrame and Timeout end the wait
        unless judged."""
        self.seen = []
        deadline = time.monotonic() + self.timeout
        while True:
            event = self.next_event(deadline)
            verdict = judge(event)
            if verdict:
                return event
            if verdict is False or not isinstance(event, Frame):
                self.fail(expected)

    # -- the outcomes ----------------------------------------------------------------------
    def expect_goaway(self, *codes: int) -> GoAwayFrame:
        """A GOAWAY with one of `codes`: the close alone does not do."""
        names = "/".join(error_name(c) for c in codes)

        def judge(event: Event) -> bool | None:
            if isinstance(event, GoAwayFrame):
                return event.error_code in codes
            return False if isinstance(event, Closed) else None
        event = self.expect(f"GOAWAY({names})", judge)
        assert isinstance(event, GoAwayFrame)
        return event

    def expect_rst_stream(self, stream_id: int, *codes: int) -> RstStreamFrame:
        """RST_STREAM on `stream_id` with one of `codes`; a GOAWAY or a close contradicts."""
        names = "/".join(error_name(c) for c in codes)

        def judge(event: Event) -> bool | None:
            if isinstance(event, RstStreamFrame) and event.stream_id == stream_id:
                return event.error_code in codes
            return False if isinstance(event, GoAwayFrame | Closed) else None
        event = self.expect(f"RST_STREAM(stream {stream_id}, {names})", judge)
        assert isinstance(event, RstStreamFrame)
        return event

    def expect_connection_error(self, *codes: int) -> Event:
        """A connection error: GOAWAY with one of `codes`, or (as h2spec accepts) the
        connection closing. A GOAWAY with another code contradicts."""
        names = "/".join(error_name(c) for c in codes)

        def judge(event: Event) -> bool | None:
            if isinstance(event, GoAwayFrame):
                return event.error_code in codes
            return True if isinstance(event, Closed) else None
        return self.expect(f"GOAWAY({names}) or the connection closing", judge)

    def expect_stream_or_connection_error(self, stream_id: int, *codes: int) -> Event:
        """A stream error on `stream_id` (RST_STREAM with one of `codes`) or a connection
        error (GOAWAY with one of `codes`, or the connection closing)."""
        names = "/".join(error_name(c) for c in codes)

        def judge(event: Event) -> bool | None:
            if isinstance(event, RstStreamFrame) and event.stream_id == stream_id:
                return event.error_code in codes
            if isinstance(event, GoAwayFrame):
                return event.error_code in codes
            return True if isinstance(event, Closed) else None
        return self.expect(f"RST_STREAM(stream {stream_id}, {names}), GOAWAY({names}) or "
                           "the connection closing", judge)

    def expect_close(self) -> Closed:
        """The connection closing (a GOAWAY before it is fine)."""
        event = self.expect("the connection closing",
                            lambda event: True if isinstance(event, Closed) else None)
        assert isinstance(event, Closed)
        return event

    def expect_ping_ack(self, opaque_data: bytes = bytes(8), *,
                        or_close: bool = False) -> Event:
        """PING with ACK echoing `opaque_data` (or, with `or_close`, the connection closing,
        maybe after a GOAWAY with NO_ERROR); a PING ACK with other data, a GOAWAY with an error
        code or (without `or_close`) any GOAWAY or a close contradicts."""
        def judge(event: Event) -> bool | None:
            if isinstance(event, PingFrame) and "ACK" in event.flags:
                return event.opaque_data == opaque_data
            if isinstance(event, Closed):
                return or_close
            if isinstance(event, GoAwayFrame):  # only a graceful one may precede the close
                return None if or_close and event.error_code == ErrorCodes.NO_ERROR else False
            return None
        what = f"PING(ACK, {opaque_data!r})" + (" or the connection closing" if or_close else "")
        return self.expect(what, judge)

    def expect_settings_ack(self) -> SettingsFrame:
        def judge(event: Event) -> bool | None:
            if isinstance(event, SettingsFrame) and "ACK" in event.flags:
                return True
            return False if isinstance(event, GoAwayFrame | Closed) else None
        event = self.expect("SETTINGS(ACK)", judge)
        assert isinstance(event, SettingsFrame)
        return event

    def expect_data(self, stream_id: int) -> DataFrame:
        """The next DATA frame on `stream_id`."""
        def judge(event: Event) -> bool | None:
            if isinstance(event, DataFrame) and event.stream_id == stream_id:
                return True
            if isinstance(event, RstStreamFrame) and event.stream_id == stream_id:
                return False
            return False if isinstance(event, GoAwayFrame | Closed) else None
        event = self.expect(f"DATA(stream {stream_id})", judge)
        assert isinstance(event, DataFrame)
        return event

    def expect_response(self, stream_id: int) -> Response:
        """A whole response on `stream_id`: HEADERS with :status, DATA, maybe trailers, up to
        END_STREAM. RST_STREAM on the stream, a GOAWAY with an error or a close contradicts."""
        response = Response(stream_id)
        ended = []

        def judge(event: Event) -> bool | None:
            if isinstance(event, RstStreamFrame) and event.stream_id == stream_id:
                return False
            if isinstance(event, GoAwayFrame):
                return False if event.error_code else None
            if isinstance(event, Closed):
                return False
            if not isinstance(event, Frame) or event.stream_id != stream_id:
                return None
            decoded = getattr(event, "decoded", None)
            if decoded is not None:
                if not response.headers:
                    response.headers = decoded
                else:
                    response.trailers = decoded
            if isinstance(event, DataFrame):
                response.body += event.data
                response.data_frames.append(len(event.data))
            if "END_STREAM" in event.flags:
                ended.append(event)
            return True if ended and self._block is None else None
        self.expect(f"a response on stream {stream_id}, up to END_STREAM", judge)
        if not response.headers or ":status" not in dict(response.headers):
            self.fail(f"a response on stream {stream_id} with a :status")
        return response
