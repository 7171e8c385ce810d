"""What the arbiter checks once, before it forks any worker: our options as a whole.

An unknown or invalid option is a `ConfigError` (one line, the arbiter exits 3 before any
worker boots), and so is HTTP/2 asked for without the h2 package; an option that overrides
a Gunicorn setting the user also set, a top-level name in the config file that looks like
a misspelt option, and a JSON access log that has nowhere to go or makes
`access_log_format` useless, are warnings.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import (
    OPTIONS,
    OPTIONS_BY_NAME,
    ConfigError,
    Resolved,
    require_h2,
    resolve_sources,
    source_name,
)

if TYPE_CHECKING:
    from gunicorn.config import Config


def _undo(name: str, origin: str, env: str) -> str:
    return {"configure": f"remove {name} from configure(...)",
            "file": f"remove {name} from the config file",
            "env": f"unset {env}"}[origin]


def shadowed_settings(resolved: Mapping[str, Resolved], cfg: Config) -> list[str]:
    """One line per option of ours, set by the user, that overrides a Gunicorn setting the
    user set too (away from its default) to a different value: which wins, what to change."""
    lines = []
    settings = getattr(cfg, "settings", {})
    for option in OPTIONS:
        ours = resolved[option.name]
        setting = settings.get(option.gunicorn_setting) if option.gunicorn_setting else None
        if setting is None or not ours.set_by_user:
            continue
        value = setting.get()
        if value == setting.default:
            continue
        try:
            theirs: object = option.type(setting.name, value)
        except ConfigError:
            theirs = value
        if theirs == ours.value:
            continue
        lines.append(
            f"{source_name(option, ours.origin)} = {ours.value!r} overrides Gunicorn's "
            f"{setting.name} = {value!r}; {_undo(option.name, ours.origin, option.env)} to "
            f"use Gunicorn's {setting.name}")
    return lines


def misspelt_names(config_file: Mapping[str, object], cfg: Config) -> list[str]:
    """One line per top-level value in the config file that neither Gunicorn nor we know
    but that is spelt like one of our options (Gunicorn ignores unknown names silently)."""
    settings = getattr(cfg, "settings", {})
    lines = []
    for name, value in config_file.items():
        if (name.startswith("_") or name in settings or name in OPTIONS_BY_NAME
                or inspect.ismodule(value) or callable(value)):
            continue
        close = difflib.get_close_matches(name, list(OPTIONS_BY_NAME), n=1, cutoff=0.8)
        if close:
            lines.append(f"the config file sets {name}, which is neither a Gunicorn setting "
                         f"nor a gunicorn-async-workers option; did you mean {close[0]}?")
    return lines


def json_access_log_problems(resolved: Mapping[str, Resolved], cfg: Config) -> list[str]:
    """With `access_log_json` on: a line when `access_log_format` is set too (the JSON holds
    every atom, the format is not used), and one when Gunicorn's logger writes no access
    log at all (no `accesslog`, log config or syslog), so the option has no effect."""
    ours = resolved["access_log_json"]
    if not ours.value:
        return []
    source = f"{source_name(OPTIONS_BY_NAME['access_log_json'], ours.origin)} = True"
    settings = getattr(cfg, "settings", {})
    lines = []
    fmt = settings.get("access_log_format")
    if fmt is not None and fmt.get() != fmt.default:
        lines.append(f"{source} writes every atom as JSON, so access_log_format is not "
                     "used; remove access_log_format, or turn access_log_json off")
    written = (getattr(cfg, "accesslog", None) or getattr(cfg, "logconfig", None)
               or getattr(cfg, "logconfig_dict", None) or getattr(cfg, "logconfig_json", None)
               or (getattr(cfg, "syslog", False)
                   and not getattr(cfg, "disable_redirect_access_to_syslog", False)))
    logger = settings.get("logger_class")
    custom_logger = logger is not None and logger.get() != logger.default
    if not written and not custom_logger:
        lines.append(f"{source}, but no access log is written: set accesslog (\"-\" for "
                     "stdout, or a file path) or a logconfig_dict with a gunicorn.access "
                     "handler")
    return lines


def check_at_boot(explicit: Mapping[str, object], cfg: Config,
                  config_file: Mapping[str, object],
                  environ: Mapping[str, str] = os.environ) -> list[str]:
    """The warnings to log once; raises ConfigError for an option no worker could boot with."""
    resolved = resolve_sources(explicit, cfg, environ, config_file)
    if "h2" in str(resolved["http_protocols"].value).split(","):
        require_h2()
    return (shadowed_settings(resolved, cfg) + misspelt_names(config_file, cfg)
            + json_access_log_problems(resolved, cfg))
