"""Unit tests of configuration: option precedence, TrustedPeers, ServerConfig from Gunicorn."""

from __future__ import annotations

import os

import gunicorn
import pytest
from gunicorn.config import KNOWN_SETTINGS, Config
from gunicorn.glogging import Logger

from gunicorn_async_workers import UvloopWorker
from gunicorn_async_workers.config import (
    OPTIONS,
    OPTIONS_BY_NAME,
    Boolean,
    Choice,
    ConfigError,
    Number,
    Option,
    Protocols,
    ServerConfig,
    Text,
    TrustedPeers,
    resolve_options,
)

GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}


def require_setting(name: str) -> None:
    """Skip on a Gunicorn (23) that lacks the setting: there our option's own default holds."""
    if name not in GUNICORN_SETTINGS:
        pytest.skip(f"gunicorn {gunicorn.__version__} has no setting {name}")


@pytest.fixture(autouse=True)
def no_gaw_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`from_gunicorn` reads os.environ: keep the runner's GAW_* variables out of it."""
    for name in list(os.environ):
        if name.startswith("GAW_"):
            monkeypatch.delenv(name)


def defaults() -> dict[str, object]:
    return resolve_options({}, Config(), {})


# -- resolve_options ------------------------------------------------------------------------

def test_defaults() -> None:
    values = defaults()
    assert set(values) == {o.name for o in OPTIONS}
    assert values["interface"] == "auto" and values["lifespan"] == "auto"
    assert values["header_timeout"] == 30.0 and values["server_header"] == "gunicorn"
    assert values["root_path"] == ""


def test_precedence_explicit_over_env_over_gunicorn_over_default() -> None:
    require_setting("asgi_lifespan")
    cfg = Config()
    assert resolve_options({}, cfg, {})["lifespan"] == "auto"
    cfg.set("asgi_lifespan", "on")
    assert resolve_options({}, cfg, {})["lifespan"] == "on"
    env = {"GAW_LIFESPAN": "off"}
    assert resolve_options({}, cfg, env)["lifespan"] == "off"
    assert resolve_options({"lifespan": "auto"}, cfg, env)["lifespan"] == "auto"


def test_root_path_from_gunicorn_env_and_explicit() -> None:
    require_setting("root_path")
    cfg = Config()
    cfg.set("root_path", "/api/")
    assert resolve_options({}, cfg, {})["root_path"] == "/api"
    assert resolve_options({}, cfg, {"GAW_ROOT_PATH": "/env"})["root_path"] == "/env"
    assert resolve_options({"root_path": "/x/"}, cfg, {"GAW_ROOT_PATH": "/env"})[
        "root_path"] == "/x"


def test_option_without_gunicorn_setting() -> None:
    cfg = Config()
    assert resolve_options({}, cfg, {"GAW_HEADER_TIMEOUT": "5"})["header_timeout"] == 5.0
    assert resolve_options({"header_timeout": 7}, cfg, {"GAW_HEADER_TIMEOUT": "5"})[
        "header_timeout"] == 7.0


def test_env_values_are_normalised() -> None:
    assert resolve_options({}, Config(), {"GAW_INTERFACE": " ASGI2 "})["interface"] == "asgi2"


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError, match="lifespam") as info:
        resolve_options({"lifespam": "off"}, Config(), {})
    assert "lifespan" in str(info.value)  # the known ones are listed


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="GAW_LIFESPAM"):
        resolve_options({}, Config(), {"GAW_LIFESPAM": "off"})


def test_test_environment_variables_are_not_options() -> None:
    assert resolve_options({}, Config(), {"GAW_TEST_WORKER_CLASSES": "x"}) == defaults()


@pytest.mark.parametrize(("explicit", "env", "names"), [
    ({"lifespan": "sometimes"}, {}, "configure(lifespan=...)"),
    ({}, {"GAW_LIFESPAN": "sometimes"}, "GAW_LIFESPAN"),
])
def test_invalid_lifespan_message(explicit: dict[str, object], env: dict[str, str],
                                  names: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_options(explicit, Config(), env)
    message = str(info.value)
    assert "\n" not in message
    assert names in message and "sometimes" in message
    for allowed in ("auto", "on", "off"):
        assert allowed in message


@pytest.mark.parametrize(("name", "value"), [
    ("header_timeout", "soon"), ("header_timeout", 0), ("shutdown_idle_grace", -1),
    ("interface", "wsgi3"), ("header_timeout", None),
])
def test_invalid_values_name_the_option(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        resolve_options({name: value}, Config(), {})


def test_every_option_has_an_env_name_and_doc() -> None:
    for option in OPTIONS:
        assert option.env == "GAW_" + option.name.upper()
        assert option.doc and OPTIONS_BY_NAME[option.name] is option


def valid_text(option_type: object) -> tuple[str, object]:
    """A value an environment variable could hold for this type, and what it becomes."""
    if isinstance(option_type, Choice):
        return option_type.allowed[-1].upper(), option_type.allowed[-1]
    if isinstance(option_type, Number):
        value = int(min(max(7, option_type.minimum), option_type.maximum))
        return f" {value} ", value
    if isinstance(option_type, Boolean):
        return "off", False
    if isinstance(option_type, Protocols):
        return " H2, h1 ", "h2,h1"
    assert isinstance(option_type, Text)
    return ("/mount/", "/mount") if option_type.path else ("edge", "edge")


def invalid_values(option_type: object) -> list[object]:
    if isinstance(option_type, Choice):
        return ["nonsense", 3]
    if isinstance(option_type, Number):
        values: list[object] = ["soon", None, True, option_type.minimum - 1, float("nan"),
                                 "inf"]
        if option_type.maximum < float("inf"):
            values.append(option_type.maximum + 1)
        return values + ([1.5] if option_type.integer else [])
    if isinstance(option_type, Boolean):
        return ["maybe", 2]
    if isinstance(option_type, Protocols):
        return ["h3", "h2,h2", 5]
    assert isinstance(option_type, Text)
    if option_type.path:
        return ["api", 5]
    if option_type.directory:
        return ["/var/a\0b", 5]
    return ["a\r\nInjected: 1", "caf\u20ac", 5]


# (option, invalid value, how it is given); an environment variable is always text.
INVALID = [pytest.param(o, v, how, id=f"{how}-{o.name}={v!r}") for o in OPTIONS
           for v in invalid_values(o.type) for how in ("configure", "env")
           if how == "configure" or isinstance(v, str)]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_each_option_is_read_from_its_environment_variable(option: Option) -> None:
    text, expected = valid_text(option.type)
    assert resolve_options({}, Config(), {option.env: text})[option.name] == expected


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_each_default_is_a_valid_value(option: Option) -> None:
    assert option.type(option.name, option.default) == option.default


@pytest.mark.parametrize(("option", "value", "how"), INVALID)
def test_invalid_value_is_one_line_naming_option_and_allowed_values(
        option: Option, value: object, how: str) -> None:
    name, env = option.name, option.env
    explicit: dict[str, object] = {name: value} if how == "configure" else {}
    environ = {env: str(value)} if how == "env" else {}
    with pytest.raises(ConfigError) as info:
        resolve_options(explicit, Config(), environ)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert (f"configure({name}=...)" if how == "configure" else env) in message
    assert repr(value) in message
    option_type = option.type
    if isinstance(option_type, Choice):
        assert all(allowed in message for allowed in option_type.allowed), message
    elif isinstance(option_type, Number):
        assert option_type.bounds in message, message
        assert ("integer" if option_type.integer else "number") in message
    elif isinstance(option_type, Boolean):
        assert "true or false" in message
    else:
        assert option_type.values in message


def test_invalid_value_from_a_gunicorn_setting_names_the_setting() -> None:
    require_setting("asgi_lifespan")
    cfg = Config()
    cfg.settings["asgi_lifespan"].value = "sometimes"  # past Gunicorn's own validator
    with pytest.raises(ConfigError, match=r"asgi_lifespan must be one of auto, on, off"):
        resolve_options({}, cfg, {})


def test_a_gunicorn_without_the_setting_falls_back_to_our_default() -> None:
    """Gunicorn 23 has no asgi_lifespan, root_path nor websocket_max_message_size."""
    class OldConfig:
        settings: dict[str, object] = {}

    values = resolve_options({}, OldConfig(), {})
    assert values == {o.name: o.default for o in OPTIONS}


def test_server_header_refuses_header_injection_at_boot() -> None:
    with pytest.raises(ConfigError, match="server_header"):
        build(Config(), {"server_header": "x\r\nSet-Cookie: a=b"})
    assert build(Config(), {"server_header": " caf\xe9 "}).server_header == "caf\xe9".encode(
        "latin-1")


# -- TrustedPeers ---------------------------------------------------------------------------

def test_trusted_peers_any() -> None:
    peers = TrustedPeers("*")
    assert peers.allows(("203.0.113.9", 1)) and peers.allows(("2001:db8::1", 1, 0, 0))


def test_trusted_peers_network() -> None:
    peers = TrustedPeers("10.0.0.0/8")
    assert peers.allows(("10.20.30.40", 5000))
    assert not peers.allows(("11.0.0.1", 5000))
    assert not peers.allows(("not-an-address", 1))
    assert peers.allows(("10.0.0.1", 1))  # again, from the cache
    assert not peers.allows(("11.0.0.1", 1))


def test_trusted_peers_list_and_ipv6() -> None:
    peers = TrustedPeers(["127.0.0.1", "::1", "fe80::/10"])
    assert peers.allows(("127.0.0.1", 1)) and peers.allows(("::1", 1, 0, 0))
    assert peers.allows(("fe80::1%eth0", 1, 0, 2))
    assert not peers.allows(("127.0.0.2", 1))


def test_trusted_peers_comma_string() -> None:
    peers = TrustedPeers(" 192.0.2.1 , 198.51.100.0/24 ,")
    assert peers.allows(("192.0.2.1", 1)) and peers.allows(("198.51.100.77", 1))
    assert not peers.allows(("192.0.2.2", 1))


@pytest.mark.parametrize("peer", ["/run/gunicorn.sock", "", b"", None])
def test_unix_socket_peer_is_trusted(peer: object) -> None:
    assert TrustedPeers("10.0.0.0/8").allows(peer)
    assert TrustedPeers([]).allows(peer)


def test_empty_trusts_no_address() -> None:
    assert not TrustedPeers("").allows(("127.0.0.1", 1))


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "1.2.3.4.5", "*.example"])
def test_trusted_peers_invalid_entry(entry: str) -> None:
    with pytest.raises(ConfigError, match="forwarded_allow_ips"):
        TrustedPeers(["127.0.0.1", entry])


# -- ServerConfig.from_gunicorn -------------------------------------------------------------

def build(cfg: Config, options: dict[str, object] | None = None) -> ServerConfig:
    return ServerConfig.from_gunicorn(cfg, Logger(cfg), options or {}, max_requests=100)


def test_from_gunicorn_defaults() -> None:
    cfg = Config()
    config = build(cfg)
    assert config.limit_request_line == cfg.limit_request_line == 4094
    assert config.limit_request_fields == 100 and config.limit_request_field_size == 8190
    assert config.max_requests == 100 and config.keepalive == 2.0
    assert config.pre_request is None and config.post_request is None
    assert config.access_log is False
    assert config.header_map == cfg.header_map
    assert config.scheme_headers[b"x-forwarded-proto"] == b"https"
    assert config.forwarder_headers == frozenset({b"script_name", b"path_info"})
    assert config.proxy_protocol == "off" and config.is_ssl is False
    assert config.server_header == b"gunicorn" and config.lifespan == "auto"
    assert config.trusted_peers.allows(("127.0.0.1", 1))
    assert not config.trusted_peers.allows(("192.0.2.1", 1))


@pytest.mark.parametrize(("setting", "value", "attribute", "expected"), [
    ("limit_request_line", 0, "limit_request_line", 1 << 20),  # unlimited, capped at 1 MiB
    ("limit_request_line", 9000, "limit_request_line", 8190),
    ("limit_request_line", 100, "limit_request_line", 100),
    ("limit_request_fields", 0, "limit_request_fields", 32768),
    ("limit_request_fields", 40000, "limit_request_fields", 32768),
    ("limit_request_fields", 7, "limit_request_fields", 7),
    ("limit_request_field_size", 0, "limit_request_field_size", 8190),
    ("limit_request_field_size", 20000, "limit_request_field_size", 20000),
])
def test_limits_normalised(setting: str, value: int, attribute: str, expected: int) -> None:
    cfg = Config()
    cfg.set(setting, value)
    assert getattr(build(cfg), attribute) == expected


def test_user_hooks_are_kept() -> None:
    def pre(worker: object, req: object) -> None:
        pass

    def post(worker: object, req: object, environ: object, resp: object) -> None:
        pass

    cfg = Config()
    cfg.set("pre_request", pre)
    config = build(cfg)
    assert config.pre_request is pre and config.post_request is None
    cfg.set("post_request", post)
    assert build(cfg).post_request is post


def test_access_log_enabled_by_accesslog() -> None:
    cfg = Config()
    cfg.set("accesslog", "-")
    assert build(cfg).access_log is True


def test_custom_logger_class_always_gets_access_calls() -> None:
    class MyLogger(Logger):
        pass

    cfg = Config()
    config = ServerConfig.from_gunicorn(cfg, MyLogger(cfg), {}, max_requests=1)
    assert config.access_log is True


def test_options_and_settings_reach_server_config() -> None:
    cfg = Config()
    cfg.set("forwarded_allow_ips", "*")
    # Gunicorn 23's proxy_protocol is a boolean; 24 added the modes.
    modern = "asgi_lifespan" in GUNICORN_SETTINGS
    cfg.set("proxy_protocol", "v2" if modern else True)
    cfg.set("keepalive", 7)
    cfg.set("secure_scheme_headers", {"X-Scheme": "https"})
    config = build(cfg, {"server_header": "", "lifespan": "off"})
    assert config.trusted_peers.allows(("192.0.2.1", 1))
    assert config.proxy_protocol == ("v2" if modern else "auto") and config.keepalive == 7.0
    assert config.scheme_headers == {b"x-scheme": b"https"}
    assert config.server_header == b"" and config.lifespan == "off"
    assert config.options["lifespan"] == "off"


def test_from_gunicorn_refuses_bad_options() -> None:
    with pytest.raises(ConfigError, match="lifespan"):
        build(Config(), {"lifespan": "maybe"})


def test_server_config_is_frozen() -> None:
    config = build(Config())
    with pytest.raises(AttributeError):
        config.keepalive = 10  # type: ignore[misc]


# -- worker class configure -----------------------------------------------------------------

def test_configure_returns_a_subclass() -> None:
    before = dict(UvloopWorker.options)
    configured = UvloopWorker.configure(lifespan="off")
    assert issubclass(configured, UvloopWorker) and configured is not UvloopWorker
    assert configured.options == {**before, "lifespan": "off"}
    assert UvloopWorker.options == before
    assert configured.__name__ == "UvloopWorker"
    again = configured.configure(root_path="/api")
    assert again.options == {**before, "lifespan": "off", "root_path": "/api"}
    assert configured.options == {**before, "lifespan": "off"}


@pytest.mark.parametrize(("options", "env", "expected"), [
    ({"max_bodysize": 1}, {}, "unknown gaw option(s) max_bodysize (did you mean max_body_size?)"),
    ({"body_timeout": -1}, {}, "configure(body_timeout=...) must be a number of at least 0"),
    ({}, {"GAW_MAX_BODY_SIZE": "abc"}, "GAW_MAX_BODY_SIZE must be an integer of at least 0"),
])
def test_configure_stops_on_a_bad_option(
        options: dict[str, object], env: dict[str, str], expected: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked where the config file calls it (so under --check-config too): one line on
    stderr and Gunicorn's boot-error code, which a config file's SystemExit passes through."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        UvloopWorker.configure(**options)
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
