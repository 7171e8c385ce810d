"""`http/h2_guard.py`, bytes in and decisions out: the header block's size read from frame
headers (whole, or cut anywhere across reads), the RST_STREAM and PING/SETTINGS buckets,
and the slow-body rule."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from gunicorn_async_workers.http.h2_guard import (
    CONTROL_BURST,
    HEADER_BLOCK_SLACK,
    MIN_RESET_BURST,
    PEER_GOAWAY,
    FrameGuard,
    Refusal,
    body_overdue,
)
from gunicorn_async_workers.http.h2_preface import PREFACE

LIMIT = 16384  # http2_max_header_list_size


def guard(streams: int = 100) -> FrameGuard:
    return FrameGuard(max_header_list_size=LIMIT, max_concurrent_streams=streams)


def scan(data: bytes, piece: int = 0, now: float = 0.0) -> Refusal | None:
    """`data` (after the preface) through a new guard, whole or in `piece`-byte reads; the
    first refusal."""
    g = guard()
    data = PREFACE + data
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)] if piece else [data]
    for chunk in pieces:
        refusal = g.scan(chunk, now)
        if refusal is not None:
            return refusal
    return None


def frames(*fs: Frame) -> bytes:
    return b"".join(f.serialize() for f in fs)


def block(size: int, pieces: int, *, end: bool) -> bytes:
    """A header block of `size` payload bytes in a HEADERS frame and CONTINUATIONs."""
    each = size // pieces
    out = [HeadersFrame(1, b"h" * each)]
    out += [ContinuationFrame(1, b"c" * each) for _ in range(pieces - 1)]
    if end:
        out[-1].flags.add("END_HEADERS")
    return frames(*out)


SPLITS = [0, 1, 7, 9, 10, 4096]


@pytest.mark.parametrize("piece", SPLITS)
def test_a_header_block_within_the_limit_passes(piece: int) -> None:
    data = block(LIMIT + HEADER_BLOCK_SLACK, 4, end=True) + frames(
        DataFrame(1, b"d" * 20000, flags=["END_STREAM"]))
    assert scan(data, piece) is None


@pytest.mark.parametrize("piece", SPLITS)
def test_a_header_block_over_the_limit_is_refused(piece: int) -> None:
    refusal = scan(block(LIMIT + HEADER_BLOCK_SLACK + 8, 8, end=False), piece)
    assert refusal is not None and refusal.code is ErrorCodes.ENHANCE_YOUR_CALM


def test_the_refusal_comes_with_the_frame_header_before_its_payload() -> None:
    data = block(LIMIT, 4, end=False) + frames(ContinuationFrame(1, b"c" * 4096))[:9]
    refusal = scan(data)
    assert refusal is not None and "header block" in refusal.reason


def test_blocks_are_counted_each_on_its_own() -> None:
    """Many blocks each under the limit never add up to a refusal."""
    assert scan(block(LIMIT, 4, end=True) * 20) is None


def test_no_header_list_limit_means_no_block_limit() -> None:
    g = FrameGuard(max_header_list_size=0, max_concurrent_streams=100)
    assert g.scan(PREFACE + block(10 * LIMIT, 40, end=False), 0.0) is None


def test_rapid_resets_are_refused_after_a_bucketful() -> None:
    g = guard(streams=100)
    g.scan(PREFACE, 0.0)
    reset = frames(RstStreamFrame(1, error_code=8))
    for _ in range(200):
        assert g.scan(reset, 0.0) is None
    refusal = g.scan(reset, 0.0)
    assert refusal is not None and refusal.code is ErrorCodes.ENHANCE_YOUR_CALM
    assert "rapid reset" in refusal.reason


def test_resets_spread_over_time_drain_away() -> None:
    g = guard(streams=1)  # the bucket's floor: MIN_RESET_BURST a second
    g.scan(PREFACE, 0.0)
    reset = frames(RstStreamFrame(1, error_code=8))
    for i in range(10 * MIN_RESET_BURST):
        assert g.scan(reset, i * 2.0 / MIN_RESET_BURST) is None


@pytest.mark.parametrize("control", [PingFrame(0, b"12345678"), SettingsFrame(0)])
def test_a_control_frame_flood_is_refused(control: Frame) -> None:
    data = frames(*[control] * (CONTROL_BURST + 1))
    refusal = scan(data, 4096)
    assert refusal is not None and refusal.code is ErrorCodes.ENHANCE_YOUR_CALM


def test_acknowledgements_are_not_counted() -> None:
    acks = frames(*[PingFrame(0, b"12345678", flags=["ACK"]),
                    SettingsFrame(0, flags=["ACK"])] * CONTROL_BURST)
    assert scan(acks) is None


def test_data_payloads_that_look_like_frames_are_skipped() -> None:
    """A DATA payload full of what would be RST_STREAM frame headers is not read."""
    fake = frames(RstStreamFrame(1, error_code=8)) * 1000
    data = frames(DataFrame(1, fake[:16000]), DataFrame(1, fake[16000:]))
    assert scan(data, 1000) is None


def test_body_overdue() -> None:
    limits = {"timeout": 10.0, "min_rate": 100.0, "grace": 2.0}
    assert body_overdue(1.0, 0, **limits) is None
    assert body_overdue(3.0, 100, **limits) is None  # 2 s grace + 1 s for 100 bytes
    assert "body_min_rate" in str(body_overdue(3.5, 100, **limits))
    assert "body_timeout" in str(body_overdue(10.5, 10**9, **limits))
    assert body_overdue(1000.0, 0, timeout=0, min_rate=0, grace=0) is None


@pytest.mark.parametrize("piece", [0, 1, 5, 9, 10, 17])
def test_what_h2_is_fed_is_the_bytes_less_goaways_whole_frames_only(piece: int) -> None:
    """Fed in reads of any size, h2 gets every byte in order, each frame header whole
    within one feed (a cut one is held back to the next read), and the peer's GOAWAY with
    its type rewritten to PEER_GOAWAY, noted in `peer_goaway`."""
    goaway = GoAwayFrame(0, last_stream_id=0, error_code=0)
    data = PREFACE + frames(HeadersFrame(1, b"h" * 20, flags=["END_HEADERS"]), goaway,
                            PingFrame(0, b"12345678"), DataFrame(1, b"d" * 30))
    g = guard()
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)] if piece else [data]
    fed: list[bytes] = []
    for chunk in pieces:
        assert g.scan(chunk, 0.0) is None
        fed.append(g.feed)
    whole = b"".join(fed)
    start = len(PREFACE) + 9 + 20
    assert whole[start + 3] == PEER_GOAWAY
    assert whole[:start + 3] + b"\x07" + whole[start + 4:] == data
    assert g.peer_goaway
    # No feed ends inside a frame header: each ends at a frame's start or in a payload.
    offsets = [len(PREFACE)]
    for frame_bytes in (9 + 20, 9 + 8, 9 + 8, 9 + 30):
        offsets.append(offsets[-1] + frame_bytes)
    position = 0
    for piece_fed in fed:
        position += len(piece_fed)
        inside_header = any(o < position < o + 9 for o in offsets[:-1])
        assert not inside_header, (position, offsets)


def test_goaway_on_a_stream_or_short_is_refused() -> None:
    on_stream = bytearray(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
    on_stream[8] = 1  # stream 1
    refusal = scan(bytes(on_stream))
    assert refusal is not None and refusal.code == ErrorCodes.PROTOCOL_ERROR
    short = b"\x00\x00\x04\x07\x00\x00\x00\x00\x00" + bytes(4)
    refusal = scan(short)
    assert refusal is not None and refusal.code == ErrorCodes.FRAME_SIZE_ERROR


def test_settings_ack_with_a_payload_is_a_frame_size_error() -> None:
    ack = b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + bytes(6)
    refusal = scan(ack)
    assert refusal is not None and refusal.code == ErrorCodes.FRAME_SIZE_ERROR
    assert scan(SettingsFrame(0, flags=["ACK"]).serialize()) is None
