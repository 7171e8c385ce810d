"""The chunked decoder's limits, bytes in and outcome out, at every split.

A chunk-size line (extensions included) may be `MAX_SIZE_LINE` bytes with its CRLF, a trailer
field line `limit_request_field_size` bytes (as a header field); the outcome of a body (its
pieces and what follows it, or the error's status) is the same whether it arrives in one
piece, in 4 KiB pieces, byte by byte or at random splits: the decoder alone, and behind each
parser adapter. The number of random examples comes from `GAW_TEST_FUZZ_EXAMPLES`.
"""

from __future__ import annotations

import os
import random

import pytest
from conftest import PARSER_CLASSES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers import policy

from gunicorn_async_workers.http.chunked import MAX_SIZE_LINE, ChunkedDecoder
from gunicorn_async_workers.http.errors import BadRequest, HeadersTooLarge, RequestError
from gunicorn_async_workers.http.parsers import ParserAdapter

EXAMPLES = int(os.environ.get("GAW_TEST_FUZZ_EXAMPLES", "100"))
FIELD_SIZE = 8190  # limit_request_field_size in these tests
Outcome = tuple[object, ...]


def size_line(length: int, size: int = 5) -> bytes:
    """A chunk-size line of `length` bytes, CRLF included, with one long extension."""
    head = b"%x;x=" % size
    return head + b"e" * (length - len(head) - 2) + b"\r\n"


def trailer_line(length: int) -> bytes:
    """A trailer field line of `length` bytes, CRLF included."""
    return b"X-Big: " + b"t" * (length - 9) + b"\r\n"


def decode(pieces: list[bytes], max_trailer_line: int = FIELD_SIZE) -> Outcome:
    """What a decoder fed `pieces` makes of them: ("body", data, rest) or ("error", status)."""
    body: list[bytes] = []
    decoder = ChunkedDecoder(body.append, 100, 0, max_trailer_line)
    rest = None
    try:
        for i, piece in enumerate(pieces):
            rest = decoder.feed(piece)
            if rest is not None:
                rest += b"".join(pieces[i + 1:])
                break
    except RequestError as exc:
        return ("error", exc.status)
    return ("body", b"".join(body), rest)


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def random_pieces(data: bytes, rng: random.Random, cuts: int) -> list[bytes]:
    points = sorted(rng.sample(range(1, len(data)), min(cuts, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def assert_same_at_every_split(data: bytes, expected: Outcome, *, bytewise: bool = True) -> None:
    assert decode([data]) == expected
    assert decode(pieces_of(data, 4096)) == expected, "in 4 KiB pieces"
    if bytewise:
        assert decode(pieces_of(data, 1)) == expected, "byte by byte"
    rng = random.Random(len(data))
    for _ in range(20):
        pieces = random_pieces(data, rng, rng.randint(1, 40))
        assert decode(pieces) == expected, [len(p) for p in pieces]


# -- the limits, at the limit and beyond ------------------------------------------------------
@pytest.mark.parametrize("length", [MAX_SIZE_LINE - 1, MAX_SIZE_LINE])
def test_size_line_at_the_limit_accepted(length: int) -> None:
    data = size_line(length) + b"hello\r\n0\r\n\r\nNEXT"
    assert_same_at_every_split(data, ("body", b"hello", b"NEXT"))


@pytest.mark.parametrize("length", [MAX_SIZE_LINE + 1, 60 * 1024, 100 * 1024])
def test_longer_size_line_refused_with_400_at_every_split(length: int) -> None:
    data = size_line(length) + b"hello\r\n0\r\n\r\n"
    assert_same_at_every_split(data, ("error", 400), bytewise=length < 10_000)
    # refused as soon as the line is known to be too long, before its end arrives
    assert decode([data[:MAX_SIZE_LINE]]) == ("error", 400)
    assert decode([data[:MAX_SIZE_LINE - 1]]) == ("body", b"", None)


@pytest.mark.parametrize("length", [FIELD_SIZE - 1, FIELD_SIZE])
def test_trailer_line_at_limit_request_field_size_accepted(length: int) -> None:
    data = b"5\r\nhello\r\n0\r\n" + trailer_line(length) + b"\r\nNEXT"
    assert_same_at_every_split(data, ("body", b"hello", b"NEXT"))


@pytest.mark.parametrize("length", [FIELD_SIZE + 1, 60 * 1024, 100 * 1024])
def test_longer_trailer_line_refused_with_431_at_every_split(length: int) -> None:
    data = b"5\r\nhello\r\n0\r\n" + trailer_line(length) + b"\r\n"
    assert_same_at_every_split(data, ("error", 431), bytewise=length < 10_000)


def test_trailer_limit_is_the_one_given() -> None:
    data = b"0\r\n" + trailer_line(100) + b"\r\n"
    assert decode([data], max_trailer_line=100) == ("body", b"", b"")
    assert decode([data], max_trailer_line=99) == ("error", 431)
    assert decode(pieces_of(data, 7), max_trailer_line=99) == ("error", 431)


def test_a_long_line_with_a_bare_cr_is_judged_by_its_length_first() -> None:
    """Which check fires must not depend on the split either: the length is judged on the
    bytes before the LF, before the line's content."""
    data = b"5;x=" + b"e" * 10 + b"\r" + b"e" * MAX_SIZE_LINE + b"\r\nhello\r\n0\r\n\r\n"
    assert_same_at_every_split(data, ("error", 400), bytewise=False)
    data = b"0\r\nX: a\rb" + b"t" * FIELD_SIZE + b"\r\n\r\n"
    assert_same_at_every_split(data, ("error", 431), bytewise=False)


def test_error_classes_name_the_limits() -> None:
    with pytest.raises(BadRequest, match=f"chunk-size line over {MAX_SIZE_LINE} bytes"):
        ChunkedDecoder(lambda _: None).feed(size_line(MAX_SIZE_LINE + 1))
    decoder = ChunkedDecoder(lambda _: None, max_trailer_line=50)
    with pytest.raises(HeadersTooLarge, match="limit_request_field_size is 50"):
        decoder.feed(b"0\r\n" + trailer_line(51))


# -- random bodies at random splits ---------------------------------------------------------
# Line lengths near each limit and far above it: where an outcome could depend on the split.
SIZE_LINES = st.sampled_from([8, 100, MAX_SIZE_LINE - 1, MAX_SIZE_LINE, MAX_SIZE_LINE + 1,
                              MAX_SIZE_LINE + 4096, 60 * 1024])
TRAILER_LINES = st.sampled_from([12, 200, FIELD_SIZE - 1, FIELD_SIZE, FIELD_SIZE + 1,
                                 FIELD_SIZE + 4096, 100 * 1024])


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    """A chunked body of a few chunks and trailers with lines of the lengths above, sometimes
    with one byte changed, dropped or added (a broken body's outcome must not depend on the
    split either)."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        size = draw(st.integers(1, 300))
        parts.append(size_line(draw(SIZE_LINES), size) + b"d" * size + b"\r\n")
    parts.append(b"0\r\n")
    for _ in range(draw(st.integers(0, 2))):
        parts.append(trailer_line(draw(TRAILER_LINES)))
    data = b"".join(parts) + b"\r\nGET / HTTP/1.1\r\n\r\n"
    mutation = draw(st.sampled_from(["none", "none", "change", "drop", "add"]))
    if mutation != "none":
        at = draw(st.integers(0, len(data) - 1))
        byte = bytes([draw(st.sampled_from(b"\r\n\x00;=\" \tz0"))])
        data = {"change": data[:at] + byte + data[at + 1:], "drop": data[:at] + data[at + 1:],
                "add": data[:at] + byte + data[at:]}[mutation]
    return data


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=chunked_bodies(), seed=st.integers(0, 2**32 - 1))
def test_decoder_outcome_does_not_depend_on_the_split(data: bytes, seed: int) -> None:
    expected = decode([data])
    assert decode(pieces_of(data, 4096)) == expected
    rng = random.Random(seed)
    assert decode(random_pieces(data, rng, rng.randint(1, 60))) == expected


def parse(parser_class: type[ParserAdapter], pieces: list[bytes]) -> Outcome:
    """What a parser adapter makes of a request fed in `pieces`: its events, or the error."""
    events: list[object] = []

    class Listener:
        def on_request_head(self, head: ParserAdapter) -> None:
            events.append(("head", head.method, head.target))

        def on_body(self, data: bytes) -> None:
            if events and events[-1][0] == "body":  # type: ignore[index]
                events[-1] = ("body", events[-1][1] + data)  # type: ignore[index]
            else:
                events.append(("body", data))

        def on_request_end(self) -> None:
            events.append(("end",))

    parser = parser_class(Listener(), policy(limit_field_size=FIELD_SIZE), trusted=False,
                          scheme="http")
    try:
        for piece in pieces:
            parser.feed(piece)
    except RequestError as exc:
        return ("error", exc.status, tuple(events))
    return ("ok", tuple(events))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=chunked_bodies(), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("parser_class", PARSER_CLASSES, ids=lambda cls: cls.__name__)
def test_parser_outcome_does_not_depend_on_the_split(
        parser_class: type[ParserAdapter], body: bytes, seed: int) -> None:
    data = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    expected = parse(parser_class, [data])
    assert parse(parser_class, pieces_of(data, 4096)) == expected
    rng = random.Random(seed)
    assert parse(parser_class, random_pieces(data, rng, rng.randint(1, 60))) == expected
