"""The JSON access line, through Gunicorn's own Logger: the records our workers pass to
`log.access` go in, the line Gunicorn's `accesslog` file handler writes comes out.

The oracle is Gunicorn's `Logger.atoms` for the same request, read by the documented
mapping (docs/logging.md); the time-derived atoms are exact here (the duration is given).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_async_workers.access_log_json import (
    ACCESS_LOGGER,
    JsonAccessLines,
    write_json_access_lines,
)
from gunicorn_async_workers.accesslog import RequestInfo, ResponseInfo, make_environ

DURATION = timedelta(seconds=2, microseconds=345678)


def scope(*headers: tuple[bytes, bytes], client: tuple[str, int] | None = ("10.0.0.7", 5123),
          query: bytes = b"a=1&b=%22x%22") -> dict[str, Any]:
    return {"method": "POST", "path": "/items/é", "query_string": query,
            "raw_path": b"/items/%C3%A9", "http_version": "1.1", "scheme": "https",
            "headers": list(headers), "client": client}


class AtomAddingLogger(Logger):
    """A logger_class that adds atoms of its own (one named like a JSON key)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["request_id"] = "r-42"
        atoms["status"] = "not the status"
        return atoms


def drop_gunicorn_handlers() -> None:
    """Undo what a Logger set up on the process-wide loggers (and our filter)."""
    for name in (ACCESS_LOGGER, "gunicorn.error"):
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, JsonAccessLines)]:
            logger.removeFilter(f)
        for handler in [h for h in logger.handlers if getattr(h, "_gunicorn", False)]:
            logger.removeHandler(handler)
            handler.close()


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    """The access log file, JSON lines on (as the worker turns them on)."""
    write_json_access_lines()
    yield tmp_path / "access.log"
    drop_gunicorn_handlers()


def log_one(path: Path, req: RequestInfo, resp: ResponseInfo, environ: dict[str, Any],
            logger_class: type[Logger] = Logger) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log one request through a Logger writing to `path`: (the JSON object, the atoms
    Gunicorn computes for it)."""
    cfg = Config()
    cfg.set("accesslog", str(path))
    cfg.set("errorlog", "-")
    log = logger_class(cfg)
    log.access(resp, req, environ, DURATION)
    raw = path.read_bytes()
    assert raw.isascii() and raw.count(b"\n") == 1, raw
    atoms = log.atoms(resp, req, environ, DURATION)
    return json.loads(raw), atoms


def test_every_atom_under_its_key(logged: Path) -> None:
    path = logged
    req = RequestInfo(scope((b"user-agent", b"probe/1.0"), (b"referer", b"http://r.test/"),
                            (b"x-test", b"a"), (b"x-test", b"b"), (b"content-type", b"text/plain"),
                            (b"authorization", b"Basic dXNlcjpwYXNz")))  # type: ignore[arg-type]
    resp = ResponseInfo(201, [(b"content-type", b"text/plain"), (b"x-route", b"items")], 12)
    before = datetime.now().astimezone()
    doc, atoms = log_one(path, req, resp, make_environ(req))
    assert list(doc) == [
        "time", "remote_addr", "remote_logname", "remote_user", "request_line", "method",
        "path", "query_string", "protocol", "status", "response_length", "referer",
        "user_agent", "request_time", "pid", "request_headers", "response_headers", "environ"]
    assert doc["remote_addr"] == atoms["h"] == "10.0.0.7"
    assert doc["remote_logname"] is None and atoms["l"] == "-"
    assert doc["remote_user"] == atoms["u"] == "user"
    assert doc["request_line"] == atoms["r"] == 'POST /items/%C3%A9?a=1&b=%22x%22 HTTP/1.1'
    assert (doc["method"], doc["path"], doc["query_string"], doc["protocol"]) == (
        atoms["m"], atoms["U"], atoms["q"], atoms["H"])
    assert doc["path"] == "/items/é"
    assert doc["status"] == int(atoms["s"]) == 201
    assert doc["response_length"] == atoms["B"] == int(atoms["b"]) == 12
    assert (doc["referer"], doc["user_agent"]) == (atoms["f"], atoms["a"])
    # T, D, M and L are one duration: each is read back exactly.
    micros = round(doc["request_time"] * 1_000_000)
    assert micros == atoms["D"] == 2_345_678
    assert (micros // 1_000_000, micros // 1000) == (atoms["T"], atoms["M"])
    assert f"{doc['request_time']:.6f}" == atoms["L"] == "2.345678"
    assert f"<{doc['pid']}>" == atoms["p"]
    # `t` is the moment of writing, as an ISO 8601 time with its offset.
    written = datetime.fromisoformat(doc["time"])
    assert written.utcoffset() is not None
    assert before - timedelta(seconds=1) <= written <= datetime.now().astimezone()
    assert datetime.strptime(atoms["t"], "[%d/%b/%Y:%H:%M:%S %z]") - written < timedelta(
        seconds=2)
    # {name}i, {name}o and {var}e: each atom of each kind, under its name (a repeated header
    # keeps its last value, as the atom does; the environ joins them, as the atom does).
    for kind, group in (("i", "request_headers"), ("o", "response_headers"),
                        ("e", "environ")):
        names = {atom[1:-2] for atom in atoms if atom.startswith("{") and atom[-1] == kind}
        assert set(doc[group]) == names, group
        for name, value in doc[group].items():
            if value != "[redacted]":
                assert value == atoms[f"{{{name}}}{kind}"], (group, name)
    assert doc["request_headers"]["x-test"] == "b"
    assert doc["environ"]["http_x_test"] == "a,b"


def test_credentials_are_redacted_but_present(logged: Path) -> None:
    path = logged
    req = RequestInfo(scope((b"authorization", b"Basic dXNlcjpwYXNz"), (b"cookie", b"s=1"),
                            (b"proxy-authorization", b"Basic eDp5")))  # type: ignore[arg-type]
    resp = ResponseInfo(200, [(b"set-cookie", b"s=2"), (b"x-ok", b"yes")], 0)
    doc, _ = log_one(path, req, resp, make_environ(req))
    hidden = "[redacted]"
    assert doc["request_headers"] == {"authorization": hidden, "cookie": hidden,
                                      "proxy-authorization": hidden}
    assert doc["response_headers"] == {"set-cookie": hidden, "x-ok": "yes"}
    assert {doc["environ"][k] for k in ("http_authorization", "http_cookie",
                                        "http_proxy_authorization")} == {hidden}
    assert doc["remote_user"] == "user"  # the user name, as in the common log format
    assert b"dXNlcjpwYXNz" not in path.read_bytes() and b"s=1" not in path.read_bytes()


def test_quotes_and_backslashes_come_back_as_sent(logged: Path) -> None:
    """Gunicorn's SafeAtoms escapes `"` as `\\"` for the text format; JSON has the value."""
    path = logged
    value = 'say "hi" \\"there\\" \\ end\xe9'
    req = RequestInfo(scope((b"user-agent", value.encode("latin-1")),
                            (b"x-test", value.encode("latin-1"))))  # type: ignore[arg-type]
    doc, _ = log_one(path, req, ResponseInfo(200, [], 0), make_environ(req))
    assert doc["user_agent"] == doc["request_headers"]["x-test"] == value
    assert doc["query_string"] == "a=1&b=%22x%22"


def test_absent_values_are_null(logged: Path) -> None:
    path = logged
    req = RequestInfo(scope(client=None, query=b""))  # type: ignore[arg-type]
    doc, atoms = log_one(path, req, ResponseInfo(204, None, 0), make_environ(req))
    assert [atoms[a] for a in "hlufa"] == ["-"] * 5
    assert [doc[k] for k in ("remote_addr", "remote_logname", "remote_user", "referer",
                             "user_agent")] == [None] * 5
    assert (doc["query_string"], doc["response_length"], doc["status"]) == ("", 0, 204)
    assert doc["response_headers"] == {}


def test_a_wsgi_environ_keeps_what_json_holds(logged: Path) -> None:
    """Streams, callables and sockets of a WSGI environ are left out; a tuple is a list."""
    path = logged
    req = RequestInfo(scope())  # type: ignore[arg-type]
    environ: dict[str, Any] = {
        **make_environ(req), "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(),
        "wsgi.file_wrapper": print, "wsgi.version": (1, 0), "wsgi.multithread": False,
        "app.ratio": 0.5, "app.not_a_number": float("nan"), "app.nested": ((1, 2),),
        "app.none": None}
    doc, _ = log_one(path, req, ResponseInfo(200, [], 0), environ)
    got = doc["environ"]
    assert not {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper", "app.not_a_number",
                "app.nested"} & set(got)
    assert (got["wsgi.version"], got["wsgi.multithread"], got["app.ratio"],
            got["app.none"]) == ([1, 0], False, 0.5, None)
    assert got["request_method"] == "POST"


def test_atoms_a_logger_class_adds_are_kept(logged: Path) -> None:
    path = logged
    req = RequestInfo(scope())  # type: ignore[arg-type]
    doc, _ = log_one(path, req, ResponseInfo(200, [], 5), make_environ(req),
                     AtomAddingLogger)
    assert doc["request_id"] == "r-42"
    assert doc["status"] == 200  # an added atom does not replace one of Gunicorn's


def test_other_records_pass_unchanged_and_the_filter_is_installed_once(
        logged: Path) -> None:
    path = logged
    write_json_access_lines()
    access = logging.getLogger(ACCESS_LOGGER)
    assert sum(isinstance(f, JsonAccessLines) for f in access.filters) == 1
    cfg = Config()
    cfg.set("accesslog", str(path))
    cfg.set("errorlog", "-")
    log = Logger(cfg)
    log.access_log.info("plain %s", "text")
    log.access_log.info("a mapping %(x)s", {"x": "without atoms"})
    assert path.read_text().splitlines() == ["plain text", "a mapping without atoms"]


def test_without_the_option_the_line_is_text(tmp_path: Path) -> None:
    """No filter is installed unless the worker installs it: the line is the format's."""
    access = logging.getLogger(ACCESS_LOGGER)
    assert not any(isinstance(f, JsonAccessLines) for f in access.filters)
    path = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(path))
    cfg.set("errorlog", "-")
    cfg.set("access_log_format", "%(s)s %(U)s")
    log = Logger(cfg)
    try:
        log.access(ResponseInfo(200, [], 0), RequestInfo(scope()),  # type: ignore[arg-type]
                   {"PATH_INFO": "/x", "REQUEST_METHOD": "GET", "RAW_URI": "/x",
                    "SERVER_PROTOCOL": "HTTP/1.1"}, DURATION)
    finally:
        drop_gunicorn_handlers()
    assert path.read_text() == "200 /x\n"
