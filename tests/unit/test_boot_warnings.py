"""Unit tests of what the arbiter checks before forking: top-level option names in the
config file, and the warnings for a shadowed Gunicorn setting or a misspelt name."""

from __future__ import annotations

import os
import sys
import types

import gunicorn
import pytest
from gunicorn.config import KNOWN_SETTINGS, Config

from gunicorn_async_workers.boot_check import (
    check_at_boot,
    json_access_log_problems,
    misspelt_names,
    shadowed_settings,
)
from gunicorn_async_workers.config import ConfigError, config_file_names, resolve_sources

GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}


def require_setting(name: str) -> None:
    if name not in GUNICORN_SETTINGS:
        pytest.skip(f"gunicorn {gunicorn.__version__} has no setting {name}")


# -- top-level names in the config file -----------------------------------------------------

def test_top_level_name_takes_effect_over_env_but_not_over_configure() -> None:
    env = {"GAW_MAX_BODY_SIZE": "5000"}
    assert resolve_sources({}, Config(), env, {"max_body_size": 1000})["max_body_size"] == (
        1000, "file")
    assert resolve_sources({}, Config(), env, {})["max_body_size"] == (5000, "env")
    # The same value twice in the file is one setting, not a conflict.
    assert resolve_sources({"max_body_size": 1000.0}, Config(), env,
                           {"max_body_size": 1000})["max_body_size"] == (1000, "configure")


def test_top_level_name_and_configure_that_disagree_are_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_sources({"max_body_size": 20}, Config(), {}, {"max_body_size": 10})
    assert str(info.value) == ("max_body_size is set twice in the config file, as "
                               "max_body_size = 10 and in configure(max_body_size=20): keep one")


def test_invalid_top_level_value_names_the_config_file() -> None:
    with pytest.raises(ConfigError, match="max_body_size in the config file must be an integer"):
        resolve_sources({}, Config(), {}, {"max_body_size": "abc"})


def test_top_level_name_that_is_a_gunicorn_setting_is_gunicorns() -> None:
    """Gunicorn applied it already; ours follows the setting (root_path on newer Gunicorns)."""
    require_setting("root_path")
    cfg = Config()
    cfg.set("root_path", "/api")
    got = resolve_sources({}, cfg, {}, {"root_path": "/api"})["root_path"]
    assert got == ("/api", "gunicorn")


def test_config_file_names_reads_the_module_gunicorn_ran(
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("__config__")
    module.max_body_size = 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__config__", module)
    assert config_file_names(Config())["max_body_size"] == 7
    named = types.ModuleType("my_settings")
    named.body_timeout = 9  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_settings", named)
    cfg = Config()
    cfg.set("config", "python:my_settings")
    assert config_file_names(cfg)["body_timeout"] == 9
    monkeypatch.delitem(sys.modules, "__config__")
    assert config_file_names(Config()) == {}


# -- warnings -----------------------------------------------------------------------------

def test_option_overriding_a_setting_the_user_set_is_one_line() -> None:
    require_setting("asgi_lifespan")
    cfg = Config()
    assert shadowed_settings(resolve_sources({"lifespan": "off"}, cfg, {}), cfg) == []
    cfg.set("asgi_lifespan", "on")
    lines = shadowed_settings(resolve_sources({"lifespan": "off"}, cfg, {}), cfg)
    assert lines == ["configure(lifespan=...) = 'off' overrides Gunicorn's asgi_lifespan = "
                     "'on'; remove lifespan from configure(...) to use Gunicorn's asgi_lifespan"]
    by_env = shadowed_settings(resolve_sources({}, cfg, {"GAW_LIFESPAN": "off"}), cfg)
    assert len(by_env) == 1 and "unset GAW_LIFESPAN" in by_env[0]
    # Agreeing with Gunicorn's value, or following it, is no override.
    assert shadowed_settings(resolve_sources({"lifespan": "ON"}, cfg, {}), cfg) == []
    assert shadowed_settings(resolve_sources({}, cfg, {}), cfg) == []


def test_misspelt_top_level_name_is_warned_and_others_are_not() -> None:
    names = {"max_bodysize": 1000, "ws_ping_intervall": 5, "workers": 2, "my_helper": 1,
             "os": os, "UvloopWorker": type, "_private_max_body_size": 1,
             "max_body_size": 10}
    lines = misspelt_names(names, Config())
    assert len(lines) == 2, lines
    assert "max_bodysize" in lines[0] and "did you mean max_body_size?" in lines[0]
    assert "did you mean ws_ping_interval?" in lines[1]


def test_check_at_boot_raises_for_an_invalid_option() -> None:
    with pytest.raises(ConfigError, match="GAW_BODY_TIMEOUT"):
        check_at_boot({}, Config(), {}, {"GAW_BODY_TIMEOUT": "-1"})
    assert check_at_boot({}, Config(), {"max_bodysize": 1}, {})[0].startswith(
        "the config file sets max_bodysize")


def test_json_access_log_with_nowhere_to_go_or_a_format_is_warned() -> None:
    cfg = Config()
    # Off (the default): nothing to say, whatever else is set.
    assert json_access_log_problems(resolve_sources({}, cfg, {}), cfg) == []
    on_by_env = resolve_sources({}, cfg, {"GAW_ACCESS_LOG_JSON": "yes"})
    assert json_access_log_problems(on_by_env, cfg) == [
        "GAW_ACCESS_LOG_JSON = True, but no access log is written: set accesslog (\"-\" for "
        "stdout, or a file path) or a logconfig_dict with a gunicorn.access handler"]
    for name, value in (("accesslog", "-"), ("syslog", True),
                        ("logconfig_dict", {"version": 1}),
                        ("logger_class", "apps.custom_logger.RecordingLogger")):
        configured = Config()
        configured.set(name, value)
        assert json_access_log_problems(on_by_env, configured) == [], name
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", "%(h)s %(r)s")
    lines = check_at_boot({"access_log_json": True}, cfg, {}, {})
    assert lines == ["configure(access_log_json=...) = True writes every atom as JSON, so "
                     "access_log_format is not used; remove access_log_format, or turn "
                     "access_log_json off"]
