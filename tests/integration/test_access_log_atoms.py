"""Every access-log atom Gunicorn documents renders in our workers as in Gunicorn's own.

The same requests (the same bytes, one connection each) go to our worker and to Gunicorn's
reference worker serving the same app with the same `access_log_format`: `-k sync` for a
WSGI app, Gunicorn 27's `-k asgi` for an ASGI app. The lines are compared atom by atom: the
time-dependent atoms (t T D M L) by their shape, `p` by being each server's worker pid, the
client and server ports by being each connection's own.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

from gunicorn_process import (
    GUNICORN_MAJOR,
    GunicornProcess,
    needs_gunicorn_asgi,
    read_until_close,
    wait_for,
    worker_pid,
)

# Every atom of Gunicorn's "Access log format" documentation, with request headers ({}i),
# response headers ({}o) and environ variables ({}e); one missing of each kind.
ATOMS = [
    "h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "D", "M", "L",
    "p", "{x-test}i", "{user-agent}i", "{connection}i", "{missing}i", "{content-type}o",
    "{content-length}o", "{x-route}o", "{transfer-encoding}o", "{connection}o", "{x-missing}o",
    "{request_method}e", "{raw_uri}e", "{path_info}e", "{query_string}e", "{server_protocol}e",
    "{remote_addr}e", "{remote_port}e", "{server_port}e", "{http_x_test}e", "{http_host}e",
    "{content_length}e", "{content_type}e", "{wsgi.url_scheme}e", "{script_name}e",
    "{nothing}e",
]
SEPARATOR = " ¦ "
FORMAT = SEPARATOR.join(f"%({atom})s" for atom in ATOMS)
# Apache's common log time, e.g. [23/Nov/2026:08:30:00 +0000].
TIME_SHAPES: dict[str, str] = {
    "t": r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]",
    "T": r"\d+", "D": r"\d+", "M": r"\d+", "L": r"\d+\.\d{6}",
}

HOST = "Host: example.test"
WSGI_REQUESTS: list[bytes] = [
    f"GET /plain?n=1 HTTP/1.1\r\n{HOST}\r\nUser-Agent: probe/1.0\r\nReferer: http://ref.test/"
    "\r\nX-Test: one\r\nAuthorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n".encode(),
    f"POST /input?how=read&n=2 HTTP/1.1\r\n{HOST}\r\nContent-Type: text/plain\r\n"
    "Content-Length: 5\r\nConnection: close\r\n\r\nhello".encode(),
    f"HEAD /head?n=3 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /stream?parts=3&n=4 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /nothere?n=5 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /pl%61in?n=6&x=%41 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /plain?n=7 HTTP/1.0\r\n{HOST}\r\n\r\n".encode(),
    f"GET /plain?n=8 HTTP/1.1\r\n{HOST}\r\nX-Test: a\r\nX-Test: b\r\nConnection: close"
    "\r\n\r\n".encode(),
    f"GET /write?n=9 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    # A refused request is in no access log, ours or Gunicorn's.
    f"GET /plain?n=10 HTTP/1.1\r\n{HOST}\r\nBad Header\r\n\r\n".encode(),
    b"GET http://example.test/plain?n=11 HTTP/1.1\r\nHost: example.test\r\n"
    b"Connection: close\r\n\r\n",
    f"GET /plain?n=12 HTTP/1.1\r\n{HOST}\r\nAuthorization: Bearer abc\r\nConnection: close"
    "\r\n\r\n".encode(),
    f"GET /close_header?n=13 HTTP/1.1\r\n{HOST}\r\nConnection: keep-alive\r\n\r\n".encode(),
]
ASGI_REQUESTS: list[bytes] = [
    f"GET /head?n=1 HTTP/1.1\r\n{HOST}\r\nUser-Agent: probe/1.0\r\nReferer: http://ref.test/"
    "\r\nX-Test: one\r\nAuthorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n".encode(),
    f"HEAD /head?n=2 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /stream?parts=3&n=3 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /status/404?n=4 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /status/204?n=5 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /he%61d?n=6&x=%41 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /head?n=7 HTTP/1.0\r\n{HOST}\r\n\r\n".encode(),
    f"GET /head?n=8 HTTP/1.1\r\n{HOST}\r\nX-Test: a\r\nX-Test: b\r\nConnection: close"
    "\r\n\r\n".encode(),
    f"GET /head?n=9 HTTP/1.1\r\n{HOST}\r\nBad Header\r\n\r\n".encode(),
    f"GET /headers?n=10 HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n\r\n".encode(),
]


def run(app: str, worker_class: str, requests: list[bytes],
        tmp: Path) -> tuple[list[list[str]], GunicornProcess, list[int]]:
    """Serve `app`, send each request on its own connection, and return the access-log lines
    of the marked requests (split into atoms), the server, and each client's port."""
    log = tmp / f"access-{worker_class.replace('.', '_')}.log"
    server = GunicornProcess(app, worker_class, settings={
        "accesslog": str(log), "access_log_format": FORMAT})
    with server:
        ports = []
        for data in requests:
            with server.connect() as s:
                s.sendall(data)
                ports.append(s.getsockname()[1])
                s.shutdown(socket.SHUT_WR)
                read_until_close(s)
        expected = sum(1 for r in requests if b"Bad Header" not in r)

        def marked() -> list[str]:
            text = log.read_text(errors="replace") if log.exists() else ""
            return [line for line in text.splitlines() if "n=" in line]

        lines = wait_for(lambda: len(marked()) >= expected and marked(), 10,
                         what=f"{expected} access lines")
        pid = worker_pid(server)
    assert isinstance(lines, list)
    server.pid = pid  # type: ignore[attr-defined]
    return [line.split(SEPARATOR) for line in lines], server, ports


def compare(ours: tuple[list[list[str]], GunicornProcess, list[int]],
            theirs: tuple[list[list[str]], GunicornProcess, list[int]],
            same: Callable[[str, str], bool] = lambda query, atom: True) -> None:
    """Atom by atom; `same(query, atom)` False for the atoms of a request whose difference is
    known and explained."""
    our_lines, our_server, our_ports = ours
    their_lines, their_server, their_ports = theirs
    assert len(our_lines) == len(their_lines), (our_lines, their_lines)
    for index, (mine, ref) in enumerate(zip(our_lines, their_lines, strict=True)):
        assert len(mine) == len(ref) == len(ATOMS), (mine, ref)
        for atom, a, b in zip(ATOMS, mine, ref, strict=True):
            where = f"request {index + 1}, atom {atom}: ours {a!r}, Gunicorn's {b!r}"
            if not same(mine[ATOMS.index("q")], atom):
                continue
            if atom in TIME_SHAPES:
                assert re.fullmatch(TIME_SHAPES[atom], a), where
                assert re.fullmatch(TIME_SHAPES[atom], b), where
            elif atom == "p":
                assert a == f"<{our_server.pid}>", where  # type: ignore[attr-defined]
                assert b == f"<{their_server.pid}>", where  # type: ignore[attr-defined]
            elif atom == "{remote_port}e":
                assert (a == "-") == (b == "-"), where
                assert a == "-" or int(a) in our_ports, where
            elif atom == "{server_port}e":
                assert (a, b) in ((str(our_server.port), str(their_server.port)),
                                  ("-", "-")), where
            else:
                assert a == b, where


def same_as_gunicorn_sync(query: str, atom: str) -> bool:
    """Gunicorn 23's sync worker logs a HEAD response's Content-Length as bytes sent (B, b);
    later ones log 0 and -, as ours do: no body was sent."""
    return not (GUNICORN_MAJOR <= 23 and query == "n=3" and atom in ("B", "b"))


def test_wsgi_atoms_match_gunicorn_sync(worker_class: str, tmp_path: Path) -> None:
    ours = run("apps.wsgi_apps:app", worker_class, WSGI_REQUESTS, tmp_path)
    theirs = run("apps.wsgi_apps:app", "sync", WSGI_REQUESTS, tmp_path)
    compare(ours, theirs, same_as_gunicorn_sync)
    by_query = {line[ATOMS.index("q")]: line for line in ours[0]}
    first = by_query["n=1"]
    assert first[ATOMS.index("u")] == "user"
    assert first[ATOMS.index("{x-test}i")] == "one"
    assert by_query["n=8"][ATOMS.index("{http_x_test}e")] == "a,b"


# Gunicorn's -k asgi builds a small environ for its access log: it has no CONTENT_*, no
# REMOTE_PORT, no SERVER_PORT, no wsgi.url_scheme and no SCRIPT_NAME, where ours has the
# WSGI meaning of each (Gunicorn's sync worker has them too), and of a repeated request
# header it keeps the last value where ours joins them with "," as Gunicorn's WSGI workers
# do. Its `r`, `U`, `{raw_uri}e` and every other atom are the same as ours.
ASGI_ENVIRON_EXTRAS = {"{remote_port}e", "{server_port}e", "{content_length}e",
                       "{content_type}e", "{wsgi.url_scheme}e", "{script_name}e"}


def same_as_gunicorn_asgi(query: str, atom: str) -> bool:
    return atom not in ASGI_ENVIRON_EXTRAS and not (query == "n=8" and atom == "{http_x_test}e")


@needs_gunicorn_asgi
def test_asgi_atoms_match_gunicorn_asgi(worker_class: str, tmp_path: Path) -> None:
    ours = run("apps.http_behaviour:app", worker_class, ASGI_REQUESTS, tmp_path)
    theirs = run("apps.http_behaviour:app", "asgi", ASGI_REQUESTS, tmp_path)
    compare(ours, theirs, same_as_gunicorn_asgi)
    first = {line[ATOMS.index("q")]: line for line in ours[0]}["n=1"]
    assert first[ATOMS.index("u")] == "user"
    assert first[ATOMS.index("{wsgi.url_scheme}e")] == "http"
    repeated = {line[ATOMS.index("q")]: line for line in ours[0]}["n=8"]
    assert repeated[ATOMS.index("{http_x_test}e")] == "a,b"
