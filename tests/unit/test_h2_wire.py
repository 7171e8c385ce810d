"""The hand-made HPACK bytes of tests/h2_wire.py against RFC 7541's own examples, and its
frame reader against hyperframe's writer: the conformance cases send what they say."""

from __future__ import annotations

import socket

from h2_wire import (
    H2Wire,
    hpack_integer,
    huffman,
    literal_field,
    raw_frame,
    table_size_update,
)
from hpack import Decoder
from hyperframe.frame import GoAwayFrame, HeadersFrame, PingFrame


def test_integers_are_rfc_7541_c_1() -> None:
    assert hpack_integer(10, 5) == b"\x0a"  # C.1.1
    assert hpack_integer(1337, 5) == b"\x1f\x9a\x0a"  # C.1.2
    assert hpack_integer(42, 8) == b"\x2a"  # C.1.3
    assert table_size_update(4096) == b"\x3f\xe1\x1f"


def test_huffman_is_rfc_7541_c_4_1() -> None:
    assert huffman(b"www.example.com") == bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")
    assert huffman(b"no-cache") == bytes.fromhex("a8eb10649cbf")  # C.4.2
    # Padded with zeros instead of the EOS prefix: the last 5 bits, its padding, differ.
    assert huffman(b"no-cache", pad_with_ones=False) == bytes.fromhex("a8eb10649ca0")


def test_literal_fields_decode_as_meant() -> None:
    for kind in ("incremental", "without", "never"):
        for name in (58, b"x-test"):
            for coded in (False, True):
                block = literal_field(name, b"h2spec", indexing=kind, huffman_coded=coded)
                expected = "user-agent" if name == 58 else "x-test"
                assert Decoder().decode(block) == [(expected, "h2spec")], (kind, name, coded)


def test_reader_parses_frames_and_decodes_header_blocks() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        wire = H2Wire(ours, timeout=1.0)
        block = bytes(wire.encoder.encode([(":status", "200"), ("x-a", "b")]))
        theirs.sendall(HeadersFrame(1, block[:3]).serialize()
                       + raw_frame(0x9, 0x4, 1, block[3:])  # CONTINUATION, END_HEADERS
                       + PingFrame(0, b"12345678", flags=["ACK"]).serialize()
                       + GoAwayFrame(0, 1, 0x1).serialize())
        wire.expect_ping_ack(b"12345678")
        assert any("x-a" in line for line in wire.seen), wire.seen
        wire.expect_goaway(0x1)
        theirs.close()
        wire.expect_close()
