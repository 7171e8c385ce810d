"""The access log as JSON: each line one object holding every atom of Gunicorn's format.

Gunicorn's logger builds its atoms (`Logger.atoms`: `h`, `r`, `s`, ..., `{name}i`,
`{name}o`, `{name}e`) and hands them, with `access_log_format`, to the `gunicorn.access`
logger. With `access_log_json` on, a filter on that logger, installed once per worker
process, turns each such record into one line of JSON made of those same atoms under long
names (`ATOM_KEYS`). The line still goes through Gunicorn's logger object and the
`gunicorn.access` logger's handlers, so `accesslog`, `logconfig_dict`, syslog, a
`logger_class` (statsd) and the reopening of files on SIGUSR1 keep working. Nothing is added
per request when the option is off: the filter is not installed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime

from gunicorn.glogging import SafeAtoms

ACCESS_LOGGER = "gunicorn.access"

# Atom -> JSON key, in the order the object lists them. `b` and `B` are one number, and
# `T`, `M`, `D` and `L` one duration (see `_duration`), so each pair or group has one key.
ATOM_KEYS: dict[str, str] = {
    "t": "time",
    "h": "remote_addr",
    "l": "remote_logname",
    "u": "remote_user",
    "r": "request_line",
    "m": "method",
    "U": "path",
    "q": "query_string",
    "H": "protocol",
    "s": "status",
    "B": "response_length",
    "b": "response_length",
    "f": "referer",
    "a": "user_agent",
    "L": "request_time",
    "T": "request_time",
    "M": "request_time",
    "D": "request_time",
    "p": "pid",
}
# Atoms Gunicorn fills with "-" when it has nothing: null in JSON.
DASH_MEANS_NONE = frozenset("hlubfa")
# The `{name}i`, `{name}o` and `{name}e` atoms, each kind in an object of its own.
HEADERS_IN, HEADERS_OUT, ENVIRON = "request_headers", "response_headers", "environ"
_GROUPS = {"i": HEADERS_IN, "o": HEADERS_OUT, "e": ENVIRON}
# Credentials a JSON line would otherwise carry for every request, unasked (a text format
# logs only the headers it names): their value is replaced, their presence kept.
REDACTED = "[redacted]"
SECRET_NAMES: dict[str, frozenset[str]] = {
    HEADERS_IN: frozenset({"authorization", "proxy-authorization", "cookie"}),
    HEADERS_OUT: frozenset({"set-cookie"}),
    ENVIRON: frozenset({"http_authorization", "http_proxy_authorization", "http_cookie"}),
}
_SCALARS = (str, int, float, bool, type(None))
_OMIT = object()  # what `_plain` gives for a value JSON cannot hold


def _plain(value: object) -> object:
    """`value` as JSON holds it (a tuple, such as `wsgi.version`, as a list), or `_OMIT`: a
    stream, a socket or a callable of a WSGI environ; a float that is not finite."""
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        return _OMIT if any(v is _OMIT or isinstance(v, list) for v in items) else items
    if isinstance(value, float) and not math.isfinite(value):
        return _OMIT
    return value if isinstance(value, _SCALARS) else _OMIT


def _integer(value: object) -> object:
    """A number Gunicorn gives as text (`s`, `b`; `p` as `<pid>`) as a JSON integer."""
    if isinstance(value, str):
        digits = value.strip("<>")
        if digits.isdigit():
            return int(digits)
    return value


def _duration(atoms: Mapping[str, object]) -> object:
    """Seconds with microsecond precision: `L` as a number (`T` is its whole seconds, `M`
    its whole milliseconds, `D` its microseconds), from `D` where Gunicorn gives it."""
    micros = atoms.get("D")
    if isinstance(micros, int) and not isinstance(micros, bool):
        return micros / 1_000_000
    text = atoms.get("L")
    try:
        return float(str(text))
    except ValueError:
        return text


def json_line(atoms: Mapping[str, object], created: float, escaped: bool) -> str:
    """One access-log line: the atoms of one request as a JSON object (compact, ASCII).

    `created` is when the line is written (the instant `t` stands for); `escaped` says the
    string atoms have `"` escaped as `\\"`, as Gunicorn's `SafeAtoms` has them for its
    text format, which is undone here.
    """
    values: dict[str, object] = {
        atom: value.replace('\\"', '"') if escaped and isinstance(value, str) else value
        for atom, value in atoms.items() if isinstance(atom, str)}
    doc: dict[str, object] = {}
    for atom, key in ATOM_KEYS.items():
        if key in doc or atom not in values:
            continue
        value = values[atom]
        if atom == "t":
            value = datetime.fromtimestamp(created).astimezone().isoformat(
                timespec="milliseconds")
        elif key == "request_time":
            value = _duration(values)
        elif atom in DASH_MEANS_NONE and value == "-":
            value = None
        elif atom in ("s", "B", "b", "p"):
            value = _integer(value)
        value = _plain(value)
        doc[key] = None if value is _OMIT else value
    groups: dict[str, dict[str, object]] = {HEADERS_IN: {}, HEADERS_OUT: {}, ENVIRON: {}}
    extra: dict[str, object] = {}
    for atom, value in values.items():
        if atom.startswith("{") and atom[-2:-1] == "}" and atom[-1:] in _GROUPS:
            group, name = _GROUPS[atom[-1]], atom[1:-2]
            value = REDACTED if name in SECRET_NAMES[group] else _plain(value)
            if value is not _OMIT:
                groups[group][name] = value
        elif atom not in ATOM_KEYS and atom not in doc and atom not in groups:
            value = _plain(value)  # an atom a logger_class adds: kept under its own name
            if value is not _OMIT:
                extra[atom] = value
    doc.update(groups)
    doc.update(extra)
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


class JsonAccessLines(logging.Filter):
    """Rewrites each access record of Gunicorn's logger (its format and a mapping of atoms)
    as one JSON line; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if isinstance(atoms, Mapping) and "r" in atoms and "s" in atoms:
            record.msg = json_line(atoms, record.created, isinstance(atoms, SafeAtoms))
            record.args = ()
        return True


def write_json_access_lines() -> None:
    """Make this process's access lines JSON (once; a second call changes nothing)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, JsonAccessLines) for f in logger.filters):
        logger.addFilter(JsonAccessLines())
