"""`access_log_json`: each access-log line is one JSON object of every atom, through
Gunicorn's logger, and it says what the text line of the same request says.

Two servers per worker class serve the same ASGI app with an `access_log_format` naming every
atom: one with `access_log_json` on (the format unused, with a warning), one with it off.
The same requests (the same bytes, one connection each; a WebSocket session among them) go
to both, and each JSON object is read back into the atoms by the documented mapping
(docs/logging.md) and compared with the text line atom by atom. The JSON server's log is
also rotated (SIGUSR1), and one more server routes its JSON lines through `logconfig_dict`
for a WSGI app, whose environ the app reports itself.
"""

from __future__ import annotations

import contextlib
import json
import locale
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, read_until_close, wait_for, worker_pid
from ws_frames import CLOSE, TEXT, frame, upgrade_request

APP = "apps.ws_apps:app"
# Every atom of Gunicorn's access-log format, with request headers ({}i), response headers
# ({}o) and environ variables ({}e) (credentials among them), and one missing of each kind.
ATOMS = [
    "h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "D", "M", "L",
    "p", "{x-test}i", "{user-agent}i", "{authorization}i", "{cookie}i", "{upgrade}i",
    "{missing}i", "{content-type}o", "{content-length}o", "{sec-websocket-accept}o",
    "{x-missing}o", "{request_method}e", "{raw_uri}e", "{path_info}e", "{query_string}e",
    "{server_protocol}e", "{remote_addr}e", "{remote_port}e", "{http_x_test}e",
    "{http_authorization}e", "{http_cookie}e", "{content_type}e", "{content_length}e",
    "{wsgi.url_scheme}e", "{nothing}e",
]
SEPARATOR = " ¦ "
FORMAT = SEPARATOR.join(f"%({atom})s" for atom in ATOMS)
# The documented mapping: atom -> JSON key (b and B share one; T, D, M and L one duration).
KEYS = {"t": "time", "h": "remote_addr", "l": "remote_logname", "u": "remote_user",
        "r": "request_line", "m": "method", "U": "path", "q": "query_string",
        "H": "protocol", "s": "status", "B": "response_length", "b": "response_length",
        "f": "referer", "a": "user_agent", "T": "request_time", "D": "request_time",
        "M": "request_time", "L": "request_time", "p": "pid"}
GROUPS = {"i": "request_headers", "o": "response_headers", "e": "environ"}
REDACTED = {"{authorization}i", "{cookie}i", "{http_authorization}e", "{http_cookie}e"}
# Atoms that differ between two servers by nature: the time (compared by shape and by when
# the request was made), the worker's pid and the client's port (each its own).
TIME_SHAPES = {
    "t": r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]",
    "T": r"\d+", "D": r"\d+", "M": r"\d+", "L": r"\d+\.\d{6}",
}

HOST = "Host: example.test"
AUTH = "Authorization: Basic dXNlcjpwYXNz"  # user:pass


def http_requests(tag: str) -> list[bytes]:
    """HTTP requests whose access lines carry `tag` (and `n=`, their order) in `q`."""
    return [(text % {"tag": tag}).encode("latin-1") for text in (
        f"GET /plain?tag=%(tag)s&n=1 HTTP/1.1\r\n{HOST}\r\nUser-Agent: probe/1.0\r\n"
        f"Referer: http://ref.test/\r\nX-Test: one\r\n{AUTH}\r\nCookie: session=secret\r\n"
        "Connection: close\r\n\r\n",
        f"HEAD /head?tag=%(tag)s&n=2 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n",
        # Quotes, which the text format escapes as \", and a non-ASCII byte.
        f'GET /q?tag=%(tag)s&n=3&say="hi" HTTP/1.1\r\n{HOST}\r\nX-Test: say "hi" \xe9\r\n'
        'User-Agent: agent "007"\r\nConnection: close\r\n\r\n',
        f"POST /form?tag=%(tag)s&n=4 HTTP/1.1\r\n{HOST}\r\nContent-Type: text/plain\r\n"
        "Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        f"GET /old?tag=%(tag)s&n=5 HTTP/1.0\r\n{HOST}\r\n\r\n",
        f"GET /twice?tag=%(tag)s&n=6 HTTP/1.1\r\n{HOST}\r\nX-Test: a\r\nX-Test: b\r\n"
        "Connection: close\r\n\r\n",
        f"GET /bearer?tag=%(tag)s&n=7 HTTP/1.1\r\n{HOST}\r\nAuthorization: Bearer abc\r\n"
        "Connection: close\r\n\r\n",
    )]


def websocket_session(tag: str) -> bytes:
    """A whole WebSocket session from the client: the upgrade, one message, the close."""
    return (upgrade_request(f"/echo?tag={tag}&n=8", "User-Agent: ws-probe", "X-Test: ws")
            + frame(TEXT, b"hello") + frame(CLOSE, (1000).to_bytes(2, "big")))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[GunicornProcess, GunicornProcess]]:
    """(JSON on, JSON off), the same app and class, both given FORMAT; started side by
    side."""
    base = tmp_path_factory.mktemp("access-json")
    on = GunicornProcess(APP, request.param, settings={
        "accesslog": str(base / "json.log"), "access_log_format": FORMAT,
        "access_log_json": True})
    off = GunicornProcess(APP, request.param, settings={
        "accesslog": str(base / "text.log"), "access_log_format": FORMAT})
    with contextlib.ExitStack() as stack:
        for server in (on, off):
            stack.callback(server.stop)
            server.start(wait=False)
        for server in (on, off):
            server.wait_ready()
        yield on, off


def access_log(server: GunicornProcess) -> Path:
    return Path(str(server.settings.get("accesslog")))


def lines_of(path: Path) -> list[str]:
    """The lines of a log file so far, read as Gunicorn's file handler wrote them: in the
    locale's encoding, which the server inherits from us (the text log holds a non-ASCII
    atom; the JSON log is checked to be ASCII on its own)."""
    try:
        return path.read_text(encoding=locale.getpreferredencoding(False)).splitlines()
    except FileNotFoundError:
        return []


def send(server: GunicornProcess, data: bytes) -> int:
    """Send one connection's bytes, read the answer to its end; the client's port."""
    with server.connect() as s:
        s.sendall(data)
        port: int = s.getsockname()[1]
        read_until_close(s)
    return port


def tagged(path: Path, tag: str, count: int) -> list[str]:
    """The `count` lines of `path` that carry `tag`, waiting for them."""
    def found() -> list[str]:
        return [line for line in lines_of(path) if tag in line]

    wait_for(lambda: len(found()) >= count, 10, what=f"{count} access lines tagged {tag}")
    lines = found()
    assert len(lines) == count, lines
    return lines


def atom_of(doc: dict[str, Any], atom: str) -> str:
    """What the text format writes for `atom`, read from a JSON line by the mapping."""
    if atom.startswith("{"):
        value = doc[GROUPS[atom[-1]]].get(atom[1:-2])
    elif atom == "p":
        return f"<{doc['pid']}>"
    elif atom in "TDML":
        micros = round(doc["request_time"] * 1_000_000)
        seconds, fraction = divmod(micros, 1_000_000)
        return {"T": str(seconds), "D": str(micros), "M": str(micros // 1000),
                "L": f"{seconds}.{fraction:06d}"}[atom]
    elif atom == "t":
        return datetime.fromisoformat(doc["time"]).strftime("[%d/%b/%Y:%H:%M:%S %z]")
    else:
        value = doc[KEYS[atom]]
    return "-" if value is None else str(value).replace('"', '\\"')


def when(atom: str, text: str) -> float:
    """The POSIX time of a `t` atom."""
    return datetime.strptime(text, "[%d/%b/%Y:%H:%M:%S %z]").timestamp()


def test_json_lines_agree_with_the_text_lines_atom_by_atom(
        servers: tuple[GunicornProcess, GunicornProcess]) -> None:
    on, off = servers
    tag = uuid.uuid4().hex
    exchanges = [*http_requests(tag), websocket_session(tag)]
    began = time.time()
    ports = {name: [send(server, data) for data in exchanges]
             for name, server in (("on", on), ("off", off))}
    docs = [json.loads(line) for line in tagged(access_log(on), tag, len(exchanges))]
    texts = [line.split(SEPARATOR) for line in tagged(access_log(off), tag, len(exchanges))]
    ended = time.time()
    # Every line of the JSON log, the readiness probe's too, is one JSON object, in ASCII
    # (non-ASCII characters escaped) whatever the locale of the file's encoding.
    assert access_log(on).read_bytes().isascii()
    assert all(isinstance(json.loads(line), dict) for line in lines_of(access_log(on)))
    docs.sort(key=lambda doc: doc["query_string"])
    texts.sort(key=lambda atoms: atoms[ATOMS.index("q")])
    assert [d["query_string"] for d in docs] == [t[ATOMS.index("q")].replace('\\"', '"')
                                                 for t in texts]
    pids = {"on": worker_pid(on), "off": worker_pid(off)}
    for doc, text in zip(docs, texts, strict=True):
        assert len(text) == len(ATOMS), text
        for atom, theirs in zip(ATOMS, text, strict=True):
            ours = atom_of(doc, atom)
            where = f"{doc['request_line']!r}, atom {atom}: JSON {ours!r}, text {theirs!r}"
            if atom in TIME_SHAPES:
                assert re.fullmatch(TIME_SHAPES[atom], ours), where
                assert re.fullmatch(TIME_SHAPES[atom], theirs), where
                if atom == "t":
                    assert began - 1 <= when(atom, ours) <= ended, where
                    assert began - 1 <= when(atom, theirs) <= ended, where
            elif atom == "p":
                assert (ours, theirs) == (f"<{pids['on']}>", f"<{pids['off']}>"), where
            elif atom == "{remote_port}e":
                assert int(ours) in ports["on"] and int(theirs) in ports["off"], where
            elif atom in REDACTED and theirs != "-":
                assert ours == "[redacted]", where
            else:
                assert ours == theirs, where
    # The JSON server was given FORMAT too: unused, as its one warning says.
    assert on.logs().count("access_log_format is not used") == 1, on.logs()
    first, head, quoted = docs[0], docs[1], docs[2]
    # The JSON types: numbers as numbers, absent values as null.
    assert (first["status"], first["response_length"], first["remote_user"]) == (200, 2, "user")
    assert (head["response_length"], head["referer"], head["remote_user"]) == (0, None, None)
    assert head["remote_logname"] is None
    assert isinstance(first["request_time"], float) and first["request_time"] >= 0
    assert quoted["request_headers"]["x-test"] == 'say "hi" \xe9'
    assert quoted["user_agent"] == 'agent "007"'


def test_websocket_session_lines_are_json(
        servers: tuple[GunicornProcess, GunicornProcess]) -> None:
    """An accepted session's line (101, written when the session ends) and a denied
    handshake's (the app's own status, headers and body), both JSON."""
    on, _ = servers
    tag = uuid.uuid4().hex
    with on.connect() as s:
        s.sendall(websocket_session(tag))
        answer = read_until_close(s)
    assert answer.startswith(b"HTTP/1.1 101 "), answer[:100]
    with on.connect() as s:
        s.sendall(upgrade_request(f"/deny?status=401&tag={tag}&n=9"))
        denied = read_until_close(s)
    assert denied.startswith(b"HTTP/1.1 401 "), denied[:100]
    by_path = {doc["path"]: doc for doc in map(json.loads, tagged(access_log(on), tag, 2))}
    accepted, refused = by_path["/echo"], by_path["/deny"]
    assert accepted["request_line"] == f"GET /echo?tag={tag}&n=8 HTTP/1.1"
    assert (accepted["method"], accepted["path"], accepted["status"]) == ("GET", "/echo", 101)
    assert accepted["request_headers"]["upgrade"] == "websocket"
    assert accepted["environ"]["wsgi.url_scheme"] == "ws"
    assert accepted["user_agent"] == "ws-probe"
    assert accepted["pid"] == worker_pid(on)
    assert (refused["path"], refused["status"]) == ("/deny", 401)
    assert refused["response_headers"]["x-denied"] == "yes"
    assert refused["response_length"] == len(b"denied: go away")


def test_sigusr1_reopens_the_json_log(servers: tuple[GunicornProcess, GunicornProcess]) -> None:
    """Rotation as logrotate does it: move the file away, SIGUSR1 the arbiter; the lines
    after it go to a new file at the configured path, still JSON."""
    on, _ = servers
    path = access_log(on)
    rotated = path.with_name(path.name + ".1")
    os.replace(path, rotated)
    assert on.proc is not None
    os.kill(on.proc.pid, signal.SIGUSR1)
    attempt = 0

    def reopened() -> bool:
        nonlocal attempt
        attempt += 1
        marker = f"rotated-{uuid.uuid4().hex}-{attempt}"
        send(on, f"GET /after?{marker} HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n"
             .encode())
        wait_for(lambda: any(marker in line for line in lines_of(path) + lines_of(rotated)),
                 5, what="the request's access line in either file")
        return any(marker in line for line in lines_of(path))

    wait_for(reopened, 10, what="the worker writing to the reopened access log")
    assert lines_of(path) and all(isinstance(json.loads(line), dict)
                                  for line in lines_of(path) + lines_of(rotated))
    assert "Traceback" not in error_log(on)


def test_logconfig_dict_routes_json_lines(gunicorn: Any, tmp_path: Path) -> None:
    """No `accesslog`: a `logconfig_dict` handler of `gunicorn.access` gets the JSON lines
    (the option from its GAW_* variable); for a WSGI app, `environ` holds the app's own
    environ, but for the values JSON cannot hold and the credentials."""
    shipped = tmp_path / "shipped.log"
    logconfig = {
        "version": 1,
        "root": {"level": "WARNING", "handlers": []},
        "formatters": {"bare": {"format": "%(message)s"}},
        "handlers": {"shipped": {"class": "logging.FileHandler", "filename": str(shipped),
                                 "formatter": "bare"}},
        "loggers": {"gunicorn.access": {"level": "INFO", "handlers": ["shipped"],
                                        "propagate": False}},
    }
    server = gunicorn("apps.wsgi_apps:app", settings={"logconfig_dict": logconfig},
                      env={"GAW_ACCESS_LOG_JSON": "true"})
    tag = uuid.uuid4().hex
    response = httpx.get(f"{server.url}/environ?tag={tag}",
                         headers={"Authorization": "Basic dXNlcjpwYXNz", "X-Test": "one"})
    assert response.status_code == 200
    [line] = tagged(shipped, tag, 1)
    doc = json.loads(line)
    assert (doc["path"], doc["status"], doc["remote_user"]) == ("/environ", 200, "user")
    assert doc["response_length"] == len(response.content)
    seen = {key.lower(): value for key, value in response.json().items()
            if not key.startswith("_")}
    seen["http_authorization"] = "[redacted]"
    assert doc["environ"] == seen
    assert doc["request_headers"]["x-test"] == "one"
    assert doc["request_headers"]["authorization"] == "[redacted]"
    assert tag not in server.logs(), "the access line went to the error log or stdout too"
    assert "[ERROR]" not in server.logs()
