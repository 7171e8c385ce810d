"""What the arbiter does for Prometheus metrics once, before it forks any worker.

Our worker classes run no code of their own in the arbiter but `check_config`, which
Gunicorn calls once, after binding and before the first fork: there the multiprocess
directory is chosen (or made) and put in the environment every worker inherits, so that
the app's own prometheus_client metrics land there too, and the installed prometheus_client
is checked. A temporary directory made here is removed when the arbiter exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from typing import cast

from ..config import ConfigError, OptionValue
from .directory import ENV, check_file_format

INSTALL = "pip install 'gunicorn-async-workers[prometheus]'"


def _remove_when_exiting(path: str) -> None:
    """Remove a directory when this process exits (not when a worker forked from it
    does: they inherit the handler)."""
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)


def start_metrics(options: Mapping[str, OptionValue], preload_app: bool = False,
                  environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """With `metrics_path` set: the directory chosen, made if it is ours, and set in
    `environ` (as PROMETHEUS_MULTIPROC_DIR); prometheus_client imported and checked. The
    lines to log (what is served where, then warnings); none with metrics off.

    Raises ConfigError, with the fix, when prometheus_client is missing or unknown or the
    directory is unusable.
    """
    path = str(options["metrics_path"])
    if not path:
        return []
    if not path.isascii() or any(c <= " " or c in "?#\x7f" for c in path):
        raise ConfigError(f"metrics_path must be a URL path of printable ASCII without "
                          f"spaces, ? or #; got {path!r}")
    chosen = str(options["metrics_dir"])
    inherited = environ.get(ENV, "")
    if chosen and inherited and os.path.realpath(chosen) != os.path.realpath(inherited):
        raise ConfigError(
            f"metrics_dir = {chosen!r} but {ENV} = {inherited!r}: the app's own metrics "
            f"would go to the other one; set one of them")
    directory = chosen or inherited
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        where = "metrics_dir" if chosen else ENV
        raise ConfigError(f"{where} = {directory!r} is not a writable directory: create it "
                          f"or name another")
    # Whether prometheus_client was imported before the directory was known (by the config
    # file, or by the app with preload_app): it chose then to keep metrics per process.
    imported_early = "prometheus_client" in sys.modules and not inherited
    if not directory:
        directory = tempfile.mkdtemp(prefix="gaw-prometheus-")
        _remove_when_exiting(directory)
    environ[ENV] = directory
    try:
        from prometheus_client import values
    except ImportError:
        raise ConfigError(f"metrics_path is set but prometheus_client is not installed: "
                          f"{INSTALL}") from None
    problem = check_file_format()
    if problem is not None:
        raise ConfigError(problem)
    warnings = []
    if values.ValueClass is values.MutexValue:
        # Chosen at its import, before the directory was set: the metrics made from now on
        # (in the workers, as they import the app) are to be kept in the directory. (Each
        # metric reads the module's ValueClass as it is made.)
        choose = cast("Callable[[], type[object]]", values.get_value_class)  # (untyped)
        values.ValueClass = choose()
        if preload_app and imported_early:
            warnings.append(
                f"the app (preload_app) imported prometheus_client before {ENV} was set: "
                f"its metrics made at import stay in each worker and are not served at "
                f"{path}; set {ENV} in Gunicorn's environment to share them")
    return [f"Prometheus metrics at {path} on every bound address (multiprocess directory "
            f"{directory})", *warnings]
