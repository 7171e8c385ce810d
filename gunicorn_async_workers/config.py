"""One frozen `ServerConfig`, read once at boot from Gunicorn's cfg and our own options.

Our own options (those Gunicorn has no name for) are declared once, in `OPTIONS`; the
worker's `configure(...)`, the `GAW_*` environment variables, the boot errors and the README
table all come from that one table. The hot path reads attributes of `ServerConfig`, never
Gunicorn's cfg or the environment.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, cast

if TYPE_CHECKING:
    from _typeshed import ConvertibleToFloat
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

# The value of one of our options, as its type makes it (`Choice` and `Text`: str, `Number`:
# int or float, `Boolean`: bool).
OptionValue = str | int | float | bool


class ConfigError(Exception):
    """A setting that cannot work; the message is one line saying what to change."""


@dataclass(frozen=True)
class Choice:
    """One of a few words, compared case-insensitively."""

    allowed: tuple[str, ...]

    @property
    def values(self) -> str:
        return ", ".join(f"`{a}`" for a in self.allowed)

    def __call__(self, source: str, value: object) -> str:
        text = str(value).strip().lower()
        if text not in self.allowed:
            raise ConfigError(
                f"{source} must be one of {', '.join(self.allowed)}; got {value!r}")
        return text


@dataclass(frozen=True)
class Number:
    """A number of at least `minimum` (and at most `maximum`); `integer` refuses fractions."""

    minimum: float
    integer: bool = False
    maximum: float = math.inf

    @property
    def type_name(self) -> str:
        return "integer" if self.integer else "number"

    def _show(self, bound: float) -> str:
        return f"{int(bound)}" if self.integer else f"{bound:g}"

    @property
    def values(self) -> str:
        if self.maximum < math.inf:
            return (f"{self.type_name} from {self._show(self.minimum)} to "
                    f"{self._show(self.maximum)}")
        return f"{self.type_name} ≥ {self._show(self.minimum)}"

    @property
    def bounds(self) -> str:
        if self.maximum < math.inf:
            return f"from {self._show(self.minimum)} to {self._show(self.maximum)}"
        return f"of at least {self._show(self.minimum)}"

    def __call__(self, source: str, value: object) -> float | int:
        try:  # float() decides what it takes: anything else is a TypeError, so a bad value
            number = float(cast("ConvertibleToFloat", value))
        except (TypeError, ValueError):
            number = float("nan")
        if (not math.isfinite(number) or not self.minimum <= number <= self.maximum
                or (self.integer and not number.is_integer()) or isinstance(value, bool)):
            raise ConfigError(
                f"{source} must be {'an' if self.integer else 'a'} {self.type_name} "
                f"{self.bounds}; got {value!r}")
        return int(number) if self.integer else number


@dataclass(frozen=True)
class Boolean:
    """true/false, also as 1/0, yes/no, on/off (for environment variables)."""

    @property
    def values(self) -> str:
        return "`true`, `false`"

    def __call__(self, source: str, value: object) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{source} must be true or false; got {value!r}")


@dataclass(frozen=True)
class Text:
    """Text, trimmed of surrounding spaces: a URL path (`path`), a header value (`header`),
    a directory's name on this machine (`directory`)."""

    path: bool = False
    header: bool = False
    directory: bool = False

    @property
    def values(self) -> str:
        if self.path:
            return "a URL path starting with /, or empty"
        if self.header:
            return "printable Latin-1 text, or empty"
        if self.directory:
            return "a directory's path, or empty"
        return "any text"

    def __call__(self, source: str, value: object) -> str:
        text = value.strip() if isinstance(value, str) else None
        if text is not None and self.path:
            text = text.rstrip("/")
            if text and not text.startswith("/"):
                text = None
        if text is not None and self.header and any(
                c < " " or "\x7f" <= c < "\xa0" or c > "\xff" for c in text):
            text = None
        if text is not None and self.directory and "\0" in text:  # no file name has one
            text = None
        if text is None:
            raise ConfigError(f"{source} must be {self.values}; got {value!r}")
        return text


@dataclass(frozen=True)
class Protocols:
    """HTTP protocols in order of preference, as Gunicorn's `http_protocols` takes them: a
    comma-separated text (or Gunicorn 27's parsed list) of `h1` and `h2`, each once."""

    allowed: tuple[str, ...] = ("h1", "h2")

    @property
    def values(self) -> str:
        return "`h1`, `h2`, `h2,h1` or `h1,h2`"

    def __call__(self, source: str, value: object) -> str:
        items = value.split(",") if isinstance(value, str) else value
        try:
            names = [str(item).strip().lower() for item in cast("Iterable[object]", items)]
        except TypeError:
            names = ["?"]
        names = [name for name in names if name] or ["h1"]
        if any(name not in self.allowed for name in names) or len(set(names)) != len(names):
            raise ConfigError(f"{source} must be one of {self.values} (h1 and/or h2, each "
                              f"once, in order of preference); got {value!r}")
        return ",".join(names)


ValueType = Choice | Number | Boolean | Protocols | Text


@dataclass(frozen=True)
class Option:
    """One option of ours: its name, value type, default and documentation.

    Everything else about it (its `GAW_*` variable, its boot error, its README row) is
    derived from these fields.
    """

    name: str
    type: ValueType
    default: OptionValue
    doc: str
    gunicorn_setting: str | None = None  # a Gunicorn setting that provides the default

    @property
    def env(self) -> str:
        return "GAW_" + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("interface", Choice(("auto", "asgi3", "asgi2", "wsgi")), "auto",
           "How the app is called: `auto` detects ASGI 3, ASGI 2 or WSGI when it is loaded; "
           "the others force it."),
    Option("lifespan", Choice(("auto", "on", "off")), "auto",
           "ASGI lifespan: `auto` runs it if the app supports it, `on` requires it, `off` "
           "skips it. A failed startup (`lifespan.startup.failed`, or an exception once the "
           "app has received `lifespan.startup`) stops Gunicorn (boot error, the traceback "
           "printed once). Under `auto`, an app that refuses the lifespan scope itself "
           "(raises before it receives anything) is served without it, with one INFO line.",
           gunicorn_setting="asgi_lifespan"),
    Option("root_path", Text(path=True), "",
           "The ASGI `root_path` (the app's mount point behind a proxy), for Gunicorn "
           "versions without the setting.", gunicorn_setting="root_path"),
    Option("header_timeout", Number(0.1), 30.0,
           "Seconds a client may take to send a complete request head; also how long a "
           "new connection may wait for its first request (and PROXY header)."),
    Option("body_timeout", Number(0), 300.0,
           "Seconds a client may take to send a request body, counted while the worker "
           "reads it (not while the app's unread body holds reading back, nor before a "
           "`100 Continue`); a slower client's connection is closed and the app sees "
           "`http.disconnect`. 0: no limit."),
    Option("max_body_size", Number(0, integer=True), 0,
           "Largest request body in bytes (0: no limit). A larger `Content-Length`, or "
           "chunk sizes adding up to more, get 413 and a closed connection; the app is not "
           "called when the excess is known before it runs."),
    Option("require_host", Boolean(), True,
           "Refuse (400) an HTTP/1.1 request without a `Host` header, as RFC 9112 3.2 "
           "requires. `false` accepts it, as Gunicorn's own workers do, for old clients "
           "that leave it out."),
    Option("shutdown_idle_grace", Number(0), 0.25,
           "On graceful shutdown, seconds an idle keep-alive connection must stay idle "
           "before it is closed (a request arriving first is answered with "
           "`Connection: close`)."),
    Option("server_header", Text(header=True), "gunicorn",
           "Value of the `Server` response header; empty to omit it. An app's own `Server` "
           "or `Date` header replaces the server's."),
    Option("access_log_json", Boolean(), False,
           "Write each access-log line (WebSocket sessions' too) as one JSON object holding "
           "every atom of Gunicorn's access-log format under a long name, instead of the "
           "text of `access_log_format`; credential headers are redacted "
           "([Shipping logs](logging.md)). The lines still go through Gunicorn's logger: "
           "`accesslog`, `logconfig_dict`, syslog and SIGUSR1 reopening work as before."),
    Option("ws_max_size", Number(0, integer=True), 16 * 1024 * 1024,
           "Largest WebSocket message in bytes (0: no limit); larger ones close with 1009. "
           "Each fragment of a fragmented message counts 6 bytes more than its payload.",
           gunicorn_setting="websocket_max_message_size"),
    Option("ws_max_queue", Number(1, integer=True), 32,
           "WebSocket messages waiting for the app before the socket stops being read (it "
           "also stops once 4 MiB of messages wait)."),
    Option("ws_ping_interval", Number(0), 20.0,
           "Seconds between server pings on an open WebSocket (0: no pings)."),
    Option("ws_ping_timeout", Number(0), 20.0,
           "Seconds to wait for a pong before closing with 1011 (0: wait forever)."),
    Option("ws_per_message_deflate", Boolean(), True,
           "Negotiate permessage-deflate compression with WebSocket clients."),
    # Compression state is most of an idle compressed connection's memory. zlib's deflate
    # takes 2^(window bits + 2) + 2^(memory level + 9) bytes: 256 KiB at 15/8, 32 KiB at 12/5;
    # inflate about 2^(window bits). 12/5 measured faster as well as smaller on the
    # benchmark's large-message echo (benchmarks/results/ws_deflate.md).
    Option("ws_deflate_server_max_window_bits", Number(9, integer=True, maximum=15), 12,
           "permessage-deflate: largest LZ77 window (2^bits bytes) the server compresses "
           "with; a client asking for a smaller `server_max_window_bits` gets it (RFC 7692)."),
    Option("ws_deflate_client_max_window_bits", Number(8, integer=True, maximum=15), 12,
           "permessage-deflate: largest window asked of a client that offers "
           "`client_max_window_bits` (RFC 7692 lets one that does not use 15)."),
    Option("ws_deflate_memory_level", Number(1, integer=True, maximum=9), 5,
           "permessage-deflate: zlib `memLevel` of the server's compressor (1: least memory, "
           "9: fastest)."),
    Option("ws_deflate_compression_level", Number(0, integer=True, maximum=9), 6,
           "permessage-deflate: zlib compression level (0: none, 1: fastest, 9: smallest)."),
    # -- slow clients: no connection holds a slot for long without making progress --
    Option("tls_handshake_timeout", Number(0.1), 10.0,
           "Seconds a client may take over its TLS handshake (an honest one takes a few "
           "round trips; nginx allows 60, we allow less as a stalled handshake costs about "
           "50 KB). The request head's time starts after it."),
    Option("header_min_rate", Number(0), 500.0,
           "Bytes per second a request head, once begun, "
           "must average once `min_rate_grace` has passed: each byte received extends the "
           "wait by 1/rate seconds, up to `header_timeout` (Apache's mod_reqtimeout "
           "`header=...,MinRate=500`). 0: only `header_timeout` applies."),
    Option("body_min_rate", Number(0), 500.0,
           "Bytes per second a request body must average, counted while the worker reads "
           "it, once `min_rate_grace` has passed; a slower body's connection is closed "
           "(the app sees `http.disconnect`) and, at the `worker_connections` cap, may be "
           "closed to admit a new client. 64 KiB/s is 130 times this. 0: only "
           "`body_timeout` applies."),
    Option("min_rate_grace", Number(0), 10.0,
           "Seconds a request head or body may take before `header_min_rate` and "
           "`body_min_rate` apply (covers a client's start-up: DNS, slow start, a phone "
           "waking its radio)."),
    # -- HTTP/2 (the `http2` extra; docs/http2.md): Gunicorn 27's settings, ours before it --
    Option("http_protocols", Protocols(), "h1",
           "HTTP versions to serve, in order of preference: `h1`, or `h2,h1` to offer "
           "HTTP/2 too (over TLS by ALPN, in this order; in cleartext as "
           "`http2_cleartext` says). Needs `pip install 'gunicorn-async-workers[http2]'` "
           "(else Gunicorn stops at boot saying so).", gunicorn_setting="http_protocols"),
    Option("http2_cleartext", Choice(("off", "prior-knowledge", "upgrade", "both")), "off",
           "HTTP/2 without TLS (h2c), for peers in `forwarded_allow_ips` only: "
           "`prior-knowledge` (a connection that opens with the HTTP/2 preface), `upgrade` "
           "(an HTTP/1.1 `Upgrade: h2c` request), `both`, or `off`.",
           gunicorn_setting="http2_cleartext"),
    Option("http2_max_concurrent_streams", Number(1, integer=True, maximum=2**31 - 1), 100,
           "HTTP/2 streams a client may have open at once on one connection.",
           gunicorn_setting="http2_max_concurrent_streams"),
    Option("http2_initial_window_size", Number(0, integer=True, maximum=2**31 - 1), 65535,
           "HTTP/2 flow-control window, in bytes, a stream's request body starts with.",
           gunicorn_setting="http2_initial_window_size"),
    Option("http2_max_frame_size", Number(16384, integer=True, maximum=16777215), 16384,
           "Largest HTTP/2 frame payload, in bytes, the worker accepts.",
           gunicorn_setting="http2_max_frame_size"),
    Option("http2_max_header_list_size", Number(0, integer=True), 65536,
           "Largest HTTP/2 header list (decoded, RFC 9113 6.5.2), in bytes; a larger one, "
           "or a header block that grows past it, is refused before it is decoded "
           "(0: no limit).", gunicorn_setting="http2_max_header_list_size"),
    # -- Prometheus metrics (the `prometheus` extra; docs/metrics.md) --
    Option("metrics_path", Text(path=True), "",
           "Serve Prometheus metrics, summed over every worker, at this path on Gunicorn's "
           "own sockets (e.g. `/metrics`: GET or HEAD, answered by the worker, never the "
           "app); empty: no metrics, and nothing is counted. Needs `pip install "
           "'gunicorn-async-workers[prometheus]'` (else Gunicorn stops at boot saying so). "
           "See docs/metrics.md."),
    Option("metrics_dir", Text(directory=True), "",
           "The prometheus_client multiprocess directory the workers share (it must exist "
           "and be writable; the app's own metrics go there too); empty: "
           "`PROMETHEUS_MULTIPROC_DIR` if set, else a new temporary directory, removed when "
           "Gunicorn exits. Chosen once, at start: a reload keeps it."),
)
OPTIONS_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


class Resolved(NamedTuple):
    """An option's value and where it came from: `configure`, `file` (a top-level name in
    the config file), `env` (its `GAW_*` variable), `gunicorn` (the Gunicorn setting it
    follows) or `default`."""

    value: OptionValue
    origin: str

    @property
    def set_by_user(self) -> bool:
        """Set through one of our own ways, not followed from Gunicorn or defaulted."""
        return self.origin in ("configure", "file", "env")


def source_name(option: Option, origin: str) -> str:
    """How a message names where an option's value came from."""
    return {"configure": f"configure({option.name}=...)",
            "file": f"{option.name} in the config file",
            "env": option.env,
            "gunicorn": str(option.gunicorn_setting)}.get(origin, option.name)


def config_file_names(cfg: Config) -> Mapping[str, object]:
    """The top-level names of the config file Gunicorn ran, or {} when it ran none.

    Gunicorn runs a file (`-c path`, or ./gunicorn.conf.py) as the module `__config__` and
    a `-c python:module` as that module, then keeps only the names that are its settings.
    """
    location = str(getattr(cfg, "config", None) or "")
    module = sys.modules.get(
        location[len("python:"):] if location.startswith("python:") else "__config__")
    return vars(module) if module is not None else {}


def _unknown(names: set[str], known: Mapping[str, object]) -> str:
    """`a, b` with a `did you mean` for a name close to a known one."""
    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return ", ".join(parts)


def resolve_sources(explicit: Mapping[str, object], cfg: Config | None,
                    environ: Mapping[str, str] = os.environ,
                    config_file: Mapping[str, object] | None = None) -> dict[str, Resolved]:
    """Each option's value and origin. In order of precedence: `configure(...)` or the same
    name at the top level of the config file (both in the config file: set twice, they must
    agree), `GAW_*`, the Gunicorn setting it follows, the default. A top-level name that is
    a Gunicorn setting too (`root_path` since Gunicorn 24) is Gunicorn's, which ours follows.

    Raises ConfigError naming the option and the fix for an unknown or invalid one.
    """
    unknown = set(explicit) - set(OPTIONS_BY_NAME)
    if unknown:
        raise ConfigError(
            f"unknown gaw option(s) {_unknown(unknown, OPTIONS_BY_NAME)}; known: "
            f"{', '.join(OPTIONS_BY_NAME)}")
    known_env = {o.env: o for o in OPTIONS}
    stray = {k for k in environ if k.startswith("GAW_") and k not in known_env
             and not k.startswith("GAW_TEST_")}
    if stray:
        raise ConfigError(f"unknown environment variable(s) {_unknown(stray, known_env)}; "
                          f"known: {', '.join(sorted(known_env))}")
    settings = getattr(cfg, "settings", {})
    in_file = {name: value for name, value in (config_file or {}).items()
               if name in OPTIONS_BY_NAME and name not in settings}
    resolved: dict[str, Resolved] = {}
    for option in OPTIONS:
        if option.name in explicit:
            raw, origin = explicit[option.name], "configure"
        elif option.name in in_file:
            raw, origin = in_file[option.name], "file"
        elif option.env in environ:
            raw, origin = environ[option.env], "env"
        elif option.gunicorn_setting and option.gunicorn_setting in settings:
            raw, origin = settings[option.gunicorn_setting].get(), "gunicorn"
        else:
            raw, origin = option.default, "default"
        value = option.type(source_name(option, origin), raw)
        if origin == "configure" and option.name in in_file:
            other = option.type(source_name(option, "file"), in_file[option.name])
            if other != value:
                raise ConfigError(
                    f"{option.name} is set twice in the config file, as {option.name} = "
                    f"{in_file[option.name]!r} and in configure({option.name}={raw!r}): "
                    "keep one")
        resolved[option.name] = Resolved(value, origin)
    return resolved


def resolve_options(explicit: Mapping[str, object], cfg: Config | None,
                    environ: Mapping[str, str] = os.environ,
                    config_file: Mapping[str, object] | None = None) -> dict[str, OptionValue]:
    """Our options' values, as `resolve_sources` finds them."""
    return {name: r.value
            for name, r in resolve_sources(explicit, cfg, environ, config_file).items()}


class TrustedPeers:
    """Whether a peer address may set forwarded/scheme headers (`forwarded_allow_ips`)."""

    __slots__ = ("_any", "_cache", "_networks")

    def __init__(self, allow: str | Iterable[str] | None) -> None:
        if isinstance(allow, str):
            allow = [a.strip() for a in allow.split(",") if a.strip()]
        items = list(allow or [])
        self._any = "*" in items
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            if item == "*":
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(
                    f"forwarded_allow_ips has {item!r}, which is not an IP address or "
                    "network") from None
        self._cache: dict[str, bool] = {}

    def allows(self, peer: object) -> bool:
        """Unix-socket peers (no address tuple) are trusted, as in Gunicorn's own workers."""
        if self._any or not isinstance(peer, tuple):
            return True
        host: str = peer[0]
        known = self._cache.get(host)
        if known is None:
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
                known = any(ip in net for net in self._networks)
            except ValueError:
                known = False
            if len(self._cache) < 1024:
                self._cache[host] = known
        return known


def _hook(cfg: Config, name: str) -> Callable[..., object] | None:
    """A server hook the user set, or None when it is Gunicorn's default (skipped per request)."""
    setting = cfg.settings.get(name)
    if setting is None:
        return None
    value: Callable[..., object] = setting.get()
    default = setting.default
    default = getattr(default, "__func__", default)
    return None if value is default else value


@dataclass(frozen=True)
class ServerConfig:
    """Everything the serving layers read, computed once per worker process."""

    keepalive: float
    timeout: float
    graceful_timeout: float
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    worker_connections: int
    threads: int
    sendfile: bool
    max_requests: int
    is_ssl: bool
    trusted_peers: TrustedPeers
    scheme_headers: dict[bytes, bytes]
    forwarder_headers: frozenset[bytes]
    header_map: str
    lenient_headers: bool
    permit_unconventional_method: bool
    casefold_method: bool
    root_path: str
    lifespan: str
    interface: str
    header_timeout: float
    body_timeout: float
    max_body_size: int
    require_host: bool
    shutdown_idle_grace: float
    server_header: bytes
    access_log: bool
    proxy_protocol: str
    proxy_peers: TrustedPeers
    # Gunicorn's request hooks (their signatures: accesslog.PreRequestHook, PostRequestHook).
    pre_request: Callable[..., object] | None
    post_request: Callable[..., object] | None
    tls_handshake_timeout: float = 10.0
    header_min_rate: float = 500.0
    body_min_rate: float = 500.0
    min_rate_grace: float = 10.0
    access_log_json: bool = False
    # HTTP/2 (docs/http2.md): the protocols in order of preference ("h1", "h2").
    http_protocols: tuple[str, ...] = ("h1",)
    http2_cleartext: str = "off"
    http2_max_concurrent_streams: int = 100
    http2_initial_window_size: int = 65535
    http2_max_frame_size: int = 16384
    http2_max_header_list_size: int = 65536
    options: dict[str, OptionValue] = field(default_factory=dict)

    @classmethod
    def from_gunicorn(cls, cfg: Config, log: Logger, options: Mapping[str, object],
                      max_requests: int,
                      config_file: Mapping[str, object] | None = None) -> ServerConfig:
        values = resolve_options(options, cfg, config_file=config_file)
        if "h2" in str(values["http_protocols"]).split(","):
            require_h2()
        line: int = cfg.limit_request_line
        # As Gunicorn: 0 is unlimited (capped at 1 MiB, as its fast parser caps it), a
        # negative or larger value is 8190.
        line = 1 << 20 if line == 0 else 8190 if line < 0 or line > 8190 else line
        fields: int = cfg.limit_request_fields
        fields = 32768 if fields <= 0 or fields > 32768 else fields
        field_size: int = cfg.limit_request_field_size
        field_size = 8190 if field_size <= 0 else field_size
        access = getattr(log, "access_log_enabled", None)
        if access is None:  # Gunicorn before 24 has no such property
            access = bool(cfg.accesslog or cfg.logconfig or getattr(cfg, "logconfig_dict", None)
                          or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))
        from gunicorn.glogging import Logger

        if type(log) is not Logger:
            access = True  # a custom logger_class decides for itself in access()
        if getattr(cfg, "statsd_host", None):
            access = True  # Gunicorn's statsd logger counts requests in access()
        return cls(
            keepalive=float(cfg.keepalive),
            timeout=float(cfg.timeout),
            graceful_timeout=float(cfg.graceful_timeout),
            limit_request_line=line,
            limit_request_fields=fields,
            limit_request_field_size=field_size,
            worker_connections=int(cfg.worker_connections),
            threads=max(1, int(cfg.threads)),
            sendfile=cfg.sendfile is not False,
            max_requests=max_requests,
            is_ssl=bool(cfg.is_ssl),
            trusted_peers=TrustedPeers(cfg.forwarded_allow_ips),
            scheme_headers={k.lower().encode("latin-1"): v.encode("latin-1")
                            for k, v in (cfg.secure_scheme_headers or {}).items()},
            forwarder_headers=frozenset(
                h.strip().lower().encode("latin-1")
                if h.strip() != "*" else b"*"
                for h in _as_list(getattr(cfg, "forwarder_headers", ["SCRIPT_NAME",
                                                                    "PATH_INFO"]))),
            header_map=str(getattr(cfg, "header_map", "refuse")),
            lenient_headers=bool(getattr(cfg, "strip_header_spaces", False)
                                 or getattr(cfg, "permit_obsolete_folding", False)),
            permit_unconventional_method=bool(
                getattr(cfg, "permit_unconventional_http_method", False)),
            casefold_method=bool(getattr(cfg, "casefold_http_method", False)),
            root_path=str(values["root_path"]),
            lifespan=str(values["lifespan"]),
            interface=str(values["interface"]),
            header_timeout=float(values["header_timeout"]),
            body_timeout=float(values["body_timeout"]),
            max_body_size=int(values["max_body_size"]),
            require_host=bool(values["require_host"]),
            shutdown_idle_grace=float(values["shutdown_idle_grace"]),
            server_header=str(values["server_header"]).encode("latin-1"),
            access_log=bool(access),
            proxy_protocol=_proxy_mode(getattr(cfg, "proxy_protocol", False)),
            proxy_peers=TrustedPeers(getattr(cfg, "proxy_allow_ips", "127.0.0.1")),
            pre_request=_hook(cfg, "pre_request"),
            post_request=_hook(cfg, "post_request"),
            tls_handshake_timeout=float(values["tls_handshake_timeout"]),
            header_min_rate=float(values["header_min_rate"]),
            body_min_rate=float(values["body_min_rate"]),
            min_rate_grace=float(values["min_rate_grace"]),
            access_log_json=bool(values["access_log_json"]),
            http_protocols=tuple(str(values["http_protocols"]).split(",")),
            http2_cleartext=str(values["http2_cleartext"]),
            http2_max_concurrent_streams=int(values["http2_max_concurrent_streams"]),
            http2_initial_window_size=int(values["http2_initial_window_size"]),
            http2_max_frame_size=int(values["http2_max_frame_size"]),
            http2_max_header_list_size=int(values["http2_max_header_list_size"]),
            options=values,
        )


def require_h2() -> None:
    """HTTP/2 is asked for: its library must be there (the `http2` extra)."""
    try:
        import h2.connection  # noqa: F401
    except ImportError:
        raise ConfigError(
            "http_protocols includes h2 but the h2 package is not installed: pip install "
            "'gunicorn-async-workers[http2]', or drop h2 from http_protocols") from None


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    return list(value or [])


def _proxy_mode(value: object) -> str:
    """Gunicorn 23 has a boolean `proxy_protocol`; 27 has off, v1, v2 or auto."""
    if value is True:
        return "auto"
    if not value:
        return "off"
    text = str(value).strip().lower()
    return {"true": "auto", "false": "off", "none": "off"}.get(text, text)
