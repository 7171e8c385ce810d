"""Gunicorn's HTTP/1.x request corpus, sent to a real gunicorn running each worker class.

Every `.http` file (fetched once from Gunicorn's pinned sdist, see tests/corpus.py) is decoded
as Gunicorn's own tests decode it, checked against our manifest's length and SHA-256, then
sent twice on fresh connections: in one write, and in seeded random pieces. Valid files must
reach the app with what the manifest says was parsed; invalid files must get a 4xx (501 for a
transfer coding) or a close, and never reach the app.
One server per distinct `config` of the manifest, kept while the tests that need it run.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from corpus import MANIFEST, wire_bytes
from gunicorn.config import KNOWN_SETTINGS
from gunicorn_process import GunicornProcess, read_until_close
from raw_http import RawResponse, ResponseReader

GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}
# Files Gunicorn accepts and we refuse on purpose, with the status we answer and why.
# RFC 9112 6.1: a transfer coding the server does not implement is answered 501; Gunicorn
# hands a gzip- or identity-coded body to the app still coded (and, for gzip, closes after).
NOT_IMPLEMENTED_CODING = (501, "a transfer coding besides chunked (RFC 9112 6.1)")
DELIBERATE_DIFFERENCES: dict[str, tuple[int, str]] = {
    "valid/025.http": NOT_IMPLEMENTED_CODING,
    "valid/025_line.http": NOT_IMPLEMENTED_CODING,
    "valid/029.http": NOT_IMPLEMENTED_CODING,
    "valid/030.http": NOT_IMPLEMENTED_CODING,
    "valid/rfc9112_smuggle_gzip_chunked_01.http": NOT_IMPLEMENTED_CODING,
    "valid/rfc9112_smuggle_te_identity_chunked_01.http": NOT_IMPLEMENTED_CODING,
}

APP = "apps.conformance:app"
# No header at all, so that it passes even limit_request_field_size = 10.
PROBE = b"GET /__probe HTTP/1.0\r\n\r\n"
READ_TIMEOUT = 5.0
# Servers alive at once per test process: tests run grouped by config, so two is plenty.
LIVE_SERVERS = 2
# Pause between the pieces of a split send so that each is its own TCP segment and the
# server really parses incrementally. It paces the client; it synchronises nothing.
PIECE_GAP = 0.002
_SHORTENED = re.compile(r"^(.*)\.\.\.\((\d+) chars\)$", re.DOTALL)
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*$")


def truncated_body(data: bytes) -> bool:
    """Whether the body on the wire is shorter than its Content-Length (valid/099 is: gunicorn's
    test only reads what is there). Such a request cannot complete: after the half-close the
    app may see the bytes that came, then a disconnect, but never a complete body."""
    head, _, body = data.partition(b"\r\n\r\n")
    declared = _CONTENT_LENGTH.search(head)
    return declared is not None and int(declared.group(1)) > len(body)


def config_key(entry: dict[str, Any]) -> str:
    return json.dumps(entry.get("config", {}), sort_keys=True)


_HTTP11_REQUEST_LINE = re.compile(rb"(?m)^[^\r\n ]+ [^\r\n ]+ HTTP/1\.1\r?$")
_HOST_LINE = re.compile(rb"(?im)^host[ \t]*:")


def our_options(data: bytes) -> dict[str, str]:
    """Our compatibility options a file needs, as its `config` gives Gunicorn's: a file with
    an HTTP/1.1 request without Host (Gunicorn accepts those, we refuse them by default, as
    RFC 9112 3.2 asks) runs with `require_host` off, so that it is judged on what it tests."""
    if len(_HOST_LINE.findall(data)) < len(_HTTP11_REQUEST_LINE.findall(data)):
        return {"GAW_REQUIRE_HOST": "false"}
    return {}


def split_points(name: str, size: int) -> list[int]:
    """Seeded random cut points for one file: the same pieces on every run."""
    rng = random.Random(zlib.crc32(name.encode()))
    count = rng.randint(2, min(8, size - 1))
    return sorted(rng.sample(range(1, size), count))


class ServerPool:
    """Servers running `apps.conformance:app`, keyed by (worker class, config)."""

    def __init__(self) -> None:
        self.live: OrderedDict[tuple[str, str], GunicornProcess] = OrderedDict()
        self.retiring: list[GunicornProcess] = []

    def retire(self, server: GunicornProcess) -> None:
        """Ask a server to stop now and reap it in close(), without waiting for it here."""
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGTERM)
        self.retiring.append(server)

    def get(self, worker_class: str, config: dict[str, Any],
            env: dict[str, str]) -> GunicornProcess:
        key = (worker_class, json.dumps([config, env], sort_keys=True))
        server = self.live.get(key)
        if server is not None and server.proc is not None and server.proc.poll() is None:
            self.live.move_to_end(key)
            return server
        if server is not None:
            self.retire(self.live.pop(key))
        while len(self.live) >= LIVE_SERVERS:
            self.retire(self.live.popitem(last=False)[1])
        server = GunicornProcess(APP, worker_class, settings=config, env=env)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        self.live[key] = server
        return server

    def close(self) -> None:
        while self.live:
            self.retire(self.live.popitem()[1])
        for server in self.retiring:
            server.stop()


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    pool.close()


def probe(server: GunicornProcess) -> dict[str, Any]:
    """One request the app answers: its `calls` counter and pid right now."""
    with server.connect(READ_TIMEOUT) as s:
        s.sendall(PROBE)
        resp = ResponseReader(s, READ_TIMEOUT).read_response()
    assert resp.status == 200, f"probe answered {resp.status}: {resp.body[:200]!r}"
    return json.loads(resp.body)


def send(server: GunicornProcess, data: bytes, cuts: list[int]) -> ResponseReader:
    """Open a connection, send `data` cut at `cuts` and half-close it. The server may close
    early on an invalid request, so a failed write just ends the sending."""
    s = server.connect(READ_TIMEOUT)
    if s.family != socket.AF_UNIX:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        start = 0
        for end in [*cuts, len(data)]:
            s.sendall(data[start:end])
            start = end
            if end != len(data):
                time.sleep(PIECE_GAP)
        s.shutdown(socket.SHUT_WR)
    except OSError:  # EPIPE, ECONNRESET, or ENOTCONN on the half-close
        pass
    return ResponseReader(s, READ_TIMEOUT)


def read_all(reader: ResponseReader, limit: int = 4) -> list[RawResponse]:
    """Responses until the server closes; fails on a truncated response or no close."""
    responses: list[RawResponse] = []
    while len(responses) < limit:
        try:
            responses.append(reader.read_response())
        except EOFError:
            assert not reader.buf, f"connection closed inside a response: {reader.buf[:200]!r}"
            break
    return responses


def check_echo(answer: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    assert answer["method"] == expected["method"], where
    path = unquote(expected["path"])
    shortened = _SHORTENED.match(path)
    if shortened:
        assert answer["path"].startswith(shortened.group(1)), where
        assert len(answer["path"]) == int(shortened.group(2)), where
    elif expected["method"] == "CONNECT":
        # The manifest's path of an authority-form target comes from gunicorn's urlsplit
        # ("example.com:443" -> "443"); ASGI defines none, so the target itself is fine too.
        assert answer["path"] in (path, expected["uri"]), where
    else:
        assert answer["path"] == path, where
    if answer["raw_path"] is not None:
        assert unquote(answer["raw_path"]) == answer["path"], f"{where}: raw_path"
    assert answer["query"] == expected["query"], where
    assert answer["http_version"] == expected["version"], where
    assert answer["body_length"] == expected["body_length"], where
    assert answer["header_count"] == expected["header_count"], f"{where}: header count"


def check_valid(entry: dict[str, Any], reader: ResponseReader, how: str) -> None:
    expected_requests = entry.get("requests", [entry])
    for i, expected in enumerate(expected_requests):
        where = f"{entry['file']} sent {how}, request {i + 1} of {len(expected_requests)}"
        try:
            resp = reader.read_response()
        except EOFError as exc:
            raise AssertionError(f"{where}: connection closed without a response") from exc
        assert resp.status == 200, f"{where}: status {resp.status} {resp.body[:300]!r}"
        assert resp.header(b"x-reached-app") == b"1", f"{where}: response not from the app"
        check_echo(json.loads(resp.body), expected, where)
    rest = reader.buf + read_until_close(reader.sock, timeout=READ_TIMEOUT)
    assert rest == b"", f"{entry['file']} sent {how}: unexpected bytes after the responses"


def check_invalid(entry: dict[str, Any], data: bytes, reader: ResponseReader, how: str) -> None:
    where = f"{entry['file']} sent {how}"
    try:
        responses = read_all(reader)
    except TimeoutError as exc:
        raise AssertionError(f"{where}: neither answered nor closed in {READ_TIMEOUT} s") from exc
    allowed = set(range(400, 500))
    if b"transfer-encoding" in data.lower():
        allowed.add(501)
    if entry["file"] in DELIBERATE_DIFFERENCES:
        allowed = {DELIBERATE_DIFFERENCES[entry["file"]][0]}
        assert responses, f"{where}: closed without the {allowed} answer"
    for resp in responses:
        assert resp.header(b"x-reached-app") is None, f"{where}: the app answered it"
        assert resp.status in allowed, f"{where}: status {resp.status}, expected 4xx"


def _params() -> list[Any]:
    entries = sorted(MANIFEST, key=lambda e: (config_key(e), e["file"]))
    return [pytest.param(entry, id=entry["file"]) for entry in entries]


@pytest.mark.parametrize("entry", _params())
def test_corpus_file(entry: dict[str, Any], worker_class: str, servers: ServerPool) -> None:
    data = wire_bytes(entry)  # skips the test, with the reason, where the corpus is missing

    config = entry.get("config", {})
    missing = sorted(set(config) - GUNICORN_SETTINGS)
    if missing:
        pytest.skip(f"the installed gunicorn has no setting {', '.join(missing)}")
    server = servers.get(worker_class, config, our_options(data))

    # A valid file whose body is cut short is held to the rules of an invalid one.
    answerable = (entry["expect"] == "valid" and not truncated_body(data)
                  and entry["file"] not in DELIBERATE_DIFFERENCES)
    before = probe(server)
    for how, cuts in (("whole", []), ("in pieces", split_points(entry["file"], len(data)))):
        reader = send(server, data, cuts)
        try:
            if answerable:
                check_valid(entry, reader, how)
            else:
                check_invalid(entry, data, reader, how)
        finally:
            reader.sock.close()
    after = probe(server)

    expected_calls = 2 * len(entry.get("requests", [entry])) if answerable else 0
    assert after["pid"] == before["pid"], "the worker process changed (did it crash?)"
    completed = after["calls"] - before["calls"] - 1
    assert completed == expected_calls, (
        f"the app completed {completed} requests of this file, expected {expected_calls}"
    )
