"""The ASGI response extensions, bytes in and bytes out: the framing of 103 Early Hints and of
a trailer section (h11 as the client reading them), the TE field each parser reads, the
scope's `extensions`, the order the HTTP cycle accepts the extensions' messages in (through a
real HttpProtocol and Server, the harness of test_protocol.py), and where files are sent
with the loop's sendfile. Files themselves go over real sockets in
tests/integration/test_asgi_extensions.py."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from typing import Any

import h11
import pytest
import uvloop
from gunicorn.config import Config
from gunicorn.glogging import Logger
from test_protocol import Connection, Message, Receive, Send, read_responses, run, settle

from gunicorn_async_workers.asgi.scope import HTTP_EXTENSIONS, request_extensions
from gunicorn_async_workers.config import ServerConfig
from gunicorn_async_workers.http.file_body import file_range, loop_sendfile_usable
from gunicorn_async_workers.http.parsers import ParserAdapter
from gunicorn_async_workers.http.response import (
    ResponseError,
    chunk,
    frame_early_hints,
    frame_trailers,
)

GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
LINKS = [b"</a.css>; rel=preload; as=style", b"</b.js>; rel=preload; as=script"]


def h11_client_events(data: bytes) -> list[object]:
    """What h11, the client of one GET, reads of `data`."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "a")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    events: list[object] = []
    while not events or not isinstance(events[-1], h11.EndOfMessage):
        event = conn.next_event()
        assert event is not h11.NEED_DATA, f"incomplete: {events}"
        events.append(event)
    return events


# -- framing ---------------------------------------------------------------------------------
def test_early_hints_frame_one_link_field_per_value() -> None:
    head = frame_early_hints(LINKS)
    final = b"HTTP/1.1 204 No Content\r\n\r\n"
    events = h11_client_events(head + final)
    hint = events[0]
    assert isinstance(hint, h11.InformationalResponse) and hint.status_code == 103
    assert list(hint.headers) == [(b"link", link) for link in LINKS]
    assert isinstance(events[1], h11.Response) and events[1].status_code == 204
    assert frame_early_hints([]) == b""


@pytest.mark.parametrize("links", [[b"</a>\r\nx-injected: 1"], [b"</a>\0"], ["</a>"], None, 5])
def test_early_hints_refuse_what_is_not_a_clean_bytes_value(links: Any) -> None:
    with pytest.raises(ResponseError):
        frame_early_hints(links)


def test_trailers_end_a_chunked_body_without_the_framing_fields() -> None:
    fields = frame_trailers([(b"x-checksum", b"abc"), (b"Content-Length", b"9"),
                             (b"transfer-encoding", b"gzip"), (b"X-Count", b"2")])
    data = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(chunk(b"body"))
            + b"0\r\n" + fields + b"\r\n")
    events = h11_client_events(data)
    end = events[-1]
    assert isinstance(end, h11.EndOfMessage)
    assert list(end.headers) == [(b"x-checksum", b"abc"), (b"x-count", b"2")]


@pytest.mark.parametrize("fields", [
    [(b"x bad", b"1")], [(b"x-ok", b"a\r\nb")], [(b"x-ok", "text")], [(b"only-name",)], None,
])
def test_trailers_refuse_what_is_not_a_clean_field(fields: Any) -> None:
    with pytest.raises(ResponseError):
        frame_trailers(fields)


# -- the scope -------------------------------------------------------------------------------
def scopes_of(parser_class: type[ParserAdapter], data: bytes, count: int) -> list[Message]:
    seen: list[Message] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    async def test() -> None:
        conn = Connection(parser_class, app)
        conn.feed(data)
        await settle()
        await conn.close()

    run(test)
    assert len(seen) == count
    return seen


def test_a_plaintext_request_shares_one_extensions_dict(
        parser_class: type[ParserAdapter]) -> None:
    first, second = scopes_of(parser_class, GET * 2, 2)
    assert first["extensions"] is HTTP_EXTENSIONS and second["extensions"] is HTTP_EXTENSIONS
    assert sorted(HTTP_EXTENSIONS) == ["http.response.early_hint", "http.response.pathsend",
                                       "http.response.zerocopysend"]


def test_te_trailers_adds_the_trailers_extension_to_its_request_only(
        parser_class: type[ParserAdapter]) -> None:
    te = b"GET /x HTTP/1.1\r\nHost: a\r\nTE: gzip;q=0.5, trailers\r\n\r\n"
    other = b"GET /x HTTP/1.1\r\nHost: a\r\nTE: gzip\r\n\r\n"
    with_te, without, after = scopes_of(parser_class, te + other + GET, 3)
    assert "http.response.trailers" in with_te["extensions"]
    assert without["extensions"] is HTTP_EXTENSIONS
    assert after["extensions"] is HTTP_EXTENSIONS  # the parser forgot the TE field


def test_request_extensions_less_for_http10_and_with_tls() -> None:
    tls = {"tls": {"tls_version": 0x0304}}
    assert sorted(request_extensions(None, "1.0", True)) == [
        "http.response.pathsend", "http.response.zerocopysend"]
    assert sorted(request_extensions(tls, "1.1", False)) == [
        "http.response.early_hint", "http.response.pathsend", "http.response.zerocopysend",
        "tls"]
    assert "http.response.trailers" in request_extensions(tls, "1.1", True)
    assert request_extensions(None, "1.1", True) is not HTTP_EXTENSIONS
    assert "http.response.trailers" not in HTTP_EXTENSIONS  # the shared one is untouched


# -- the order of the extensions' messages ----------------------------------------------------
def respond(parser_class: type[ParserAdapter], *messages: Message,
            request: bytes = GET) -> tuple[bytes, bool, list[BaseException]]:
    """What the connection wrote for an app sending `messages`, whether it cut the
    connection, and what `send` raised (the app stops at the first)."""
    raised: list[BaseException] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        for message in messages:
            try:
                await send(message)
            except Exception as exc:
                raised.append(exc)
                raise

    async def test() -> tuple[bytes, bool]:
        conn = Connection(parser_class, app)
        conn.feed(request)
        await settle()
        return conn.transport.output, conn.transport.aborted

    output, aborted = asyncio.run(test())
    return output, aborted, raised


START = {"type": "http.response.start", "status": 200, "headers": []}
TRAILED = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
LAST = {"type": "http.response.body", "body": b"ok"}
MORE = {"type": "http.response.body", "body": b"o", "more_body": True}
TRAILERS = {"type": "http.response.trailers", "headers": [(b"x-t", b"1")]}
HINT = {"type": "http.response.early_hint", "links": LINKS}
TE = b"GET /x HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"


@pytest.mark.parametrize(("messages", "error"), [
    ((TRAILERS,), f"before {START['type']}"),
    ((START, MORE, TRAILERS), "without 'trailers': True"),
    ((TRAILED, MORE, TRAILERS), "before the last body message"),
    ((TRAILED, LAST, LAST), "trailers are due"),
    (({"type": "http.response.pathsend", "path": "/x"},),
     "http.response.pathsend sent before http.response.start"),
    ((START, MORE, {"type": "http.response.pathsend", "path": "/x"}),
     "after http.response.body"),
    ((START, {"type": "http.response.push", "path": "/x", "headers": []}),
     "unexpected ASGI message type"),
], ids=["trailers-first", "not-announced", "trailers-mid-body", "body-after-last",
        "pathsend-first", "pathsend-after-body", "push"])
def test_messages_out_of_order_are_refused(parser_class: type[ParserAdapter],
                                           messages: tuple[Message, ...], error: str) -> None:
    _, _, raised = respond(parser_class, *messages, request=TE)
    assert len(raised) == 1 and isinstance(raised[0], RuntimeError), raised
    assert error in str(raised[0])


def test_an_app_ending_before_its_trailers_cuts_the_response(
        parser_class: type[ParserAdapter]) -> None:
    output, aborted, _ = respond(parser_class, TRAILED, LAST, request=TE)
    assert output.startswith(b"HTTP/1.1 200 OK\r\n") and aborted


def test_trailers_messages_write_one_trailer_section(parser_class: type[ParserAdapter]) -> None:
    more = {"type": "http.response.trailers", "headers": [(b"x-a", b"1")],
            "more_trailers": True}
    output, aborted, raised = respond(parser_class, TRAILED, MORE, LAST, more, TRAILERS,
                                      request=TE)
    assert not aborted and not raised
    assert output.endswith(b"1\r\no\r\n2\r\nok\r\n0\r\nx-a: 1\r\nx-t: 1\r\n\r\n")


def test_a_bad_trailer_cuts_the_response(parser_class: type[ParserAdapter]) -> None:
    bad = {"type": "http.response.trailers", "headers": [(b"x-t", b"a\nb")]}
    output, aborted, raised = respond(parser_class, TRAILED, LAST, bad, request=TE)
    assert aborted and isinstance(raised[0], ResponseError)
    assert b"a\nb" not in output


def test_early_hints_go_before_the_head_only(parser_class: type[ParserAdapter]) -> None:
    output, _, raised = respond(parser_class, HINT, START, HINT, MORE, HINT, LAST)
    assert not raised
    assert output.count(b"HTTP/1.1 103 Early Hints\r\n") == 2
    [(status, _, body)] = read_responses(output, [b"GET"])
    assert (status, body) == (200, b"ook")


def test_a_bad_early_hint_answers_500(parser_class: type[ParserAdapter]) -> None:
    output, _, raised = respond(parser_class,
                                {"type": "http.response.early_hint", "links": ["</a>"]})
    assert isinstance(raised[0], ResponseError)
    assert output.startswith(b"HTTP/1.1 500 ")


# -- zerocopysend's file and where sendfile is used ------------------------------------------
def test_file_range_reads_the_spec_defaults(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as f:
        f.read(3)
        assert file_range(f, None, None) == (f.fileno(), 3, 7)  # tell(), not the fd's place
        assert file_range(f.fileno(), 2, 5) == (f.fileno(), 2, 5)
        for offset, count in ((-1, None), (0, 11), (5, 6), ("1", None), (0, -2)):
            with pytest.raises(ResponseError):
                file_range(f, offset, count)
    with pytest.raises(ResponseError, match="open file descriptor"):
        file_range(io.BytesIO(b"abc"), None, None)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ResponseError, match="regular file"):
            file_range(read_end, None, None)
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(("loop_factory", "settings", "expected"), [
    (asyncio.new_event_loop, {}, True),
    (asyncio.new_event_loop, {"sendfile": False}, False),
    (uvloop.new_event_loop, {}, False),
    (asyncio.new_event_loop, {"certfile": "server.pem", "keyfile": "server.key"}, False),
], ids=["asyncio", "asyncio-no-sendfile", "uvloop", "asyncio-tls"])
def test_where_files_go_out_with_loop_sendfile(loop_factory: Any, settings: dict[str, Any],
                                               expected: bool) -> None:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    config = ServerConfig.from_gunicorn(cfg, Logger(cfg), {}, sys.maxsize)
    loop = loop_factory()
    try:
        assert loop_sendfile_usable(loop, config) is expected
    finally:
        loop.close()
