"""Unit tests of configuration: option precedence, TrustedPeers, ServerConfig from Gunicorn."""

from __future__ import annotations

import os

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_async_workers import UvloopWorker
from gunicorn_async_workers.config import (
    OPTIONS,
    OPTIONS_BY_NAME,
    ConfigError,
    ServerConfig,
    TrustedPeers,
    resolve_options,
)


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
    cfg = Config()
    assert resolve_options({}, cfg, {})["lifespan"] == "auto"
    cfg.set("asgi_lifespan", "on")
    assert resolve_options({}, cfg, {})["lifespan"] == "on"
    env = {"GAW_LIFESPAN": "off"}
    assert resolve_options({}, cfg, env)["lifespan"] == "off"
    assert resolve_options({"lifespan": "auto"}, cfg, env)["lifespan"] == "auto"


def test_root_path_from_gunicorn_env_and_explicit() -> None:
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
    cfg.set("proxy_protocol", "v2")
    cfg.set("keepalive", 7)
    cfg.set("secure_scheme_headers", {"X-Scheme": "https"})
    config = build(cfg, {"server_header": "", "lifespan": "off"})
    assert config.trusted_peers.allows(("192.0.2.1", 1))
    assert config.proxy_protocol == "v2" and config.keepalive == 7.0
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


def test_configure_does_not_validate_until_boot() -> None:
    configured = UvloopWorker.configure(nonsense=1)
    with pytest.raises(ConfigError, match="nonsense"):
        resolve_options(configured.options, Config(), {})
