"""The multiprocess directory: its files, its lock, and folding the files of ended processes.

prometheus_client's multiprocess mode has every process write its values to files of its
own in one directory (`counter_<pid>.db`, `histogram_<pid>.db`, `gauge_livesum_<pid>.db`,
...), and a scrape sums the files it finds there. A worker's counter and histogram files
must outlive it, or its counts would be lost; left there, every recycled worker would add
files for every later scrape to read. So the files of a process that has ended are folded:
the values of its counter, histogram and summary files are added into one archive file per
kind (`counter_archive.db`, ...), which a scrape sums like any process's, and the process's
files are removed, with its live gauges (`gauge_live*_<pid>.db`, which `mark_process_dead`
removes too). Other gauges of an ended process stay, as prometheus_client keeps them.

A worker folds its own files as it exits, and at boot those of every process that ended
without doing so (killed, out of memory): `fold_ended`. Folding and answering a scrape hold
a lock file (exclusive and shared), so that a scrape never reads a file twice (in its
process's file and in the archive) nor misses one removed under it.

The files' format is prometheus_client's: written and read with its `MmapedDict`, which is
not in its documented API. `check_file_format` tries a write, a fold and a scrape in a
scratch directory at boot, so that a release that changed the format stops Gunicorn with
one line instead of serving wrong numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

# The environment variable prometheus_client reads its directory from.
ENV = "PROMETHEUS_MULTIPROC_DIR"
# The kinds of file whose values are sums over processes: folded into an archive.
SUMMED_KINDS = ("counter", "histogram", "summary")
# The prefix of a gauge kind whose values are a live process's only.
LIVE_GAUGE = "gauge_live"
# What stands for the process in an archive's name: `counter_archive.db`.
ARCHIVE = "archive"
# Our workers' own files (`counter_gaw-<pid>.db`): apart from the files prometheus_client
# itself writes for an app's own metrics in the same process, and telling our workers from
# other processes.
OWN_PREFIX = "gaw-"
# The lock file: not `*.db`, which a scrape reads.
LOCK_NAME = ".gaw.lock"
# The releases of prometheus_client whose files this module was tested with.
TESTED_RELEASES = "0.20 to 0.26"


class ValueFile(Protocol):
    """One process's file of values (prometheus_client's `MmapedDict`), as used here."""

    def write_value(self, key: str, value: float, timestamp: float) -> None: ...
    def close(self) -> None: ...


class ValueFileClass(Protocol):
    """prometheus_client's `MmapedDict` class: opens (or creates) a file; reads one whole."""

    def __call__(self, filename: str, read_mode: bool = False) -> ValueFile: ...
    def read_all_values_from_file(self, filename: str
                                  ) -> Iterator[tuple[str, float, float, int]]: ...


def value_file_class() -> ValueFileClass:
    """prometheus_client's `MmapedDict` (its methods carry no types: the protocol names
    what they take)."""
    from prometheus_client import mmap_dict

    return cast("ValueFileClass", mmap_dict.MmapedDict)


class DirectoryCollector:
    """The sum of every process's files in a directory, as prometheus_client's
    `MultiProcessCollector` makes it, less any file not yet sized. prometheus_client makes a
    process's file, then gives it its size: a scrape that reads it between the two fails,
    and one left empty by a process killed then would fail every scrape after it
    (prometheus/client_python#1199). An empty file holds no value yet: it is left out here,
    and removed with its process's other files when they are folded."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        paths = []
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            with contextlib.suppress(FileNotFoundError):  # a live gauge's, removed since
                if name.endswith(".db") and os.path.getsize(path):
                    paths.append(path)
        # (Its merge carries no types.)
        merge = cast("Callable[[list[str], bool], Iterable[Metric]]",
                     MultiProcessCollector.merge)
        return merge(paths, True)


def summing_registry(directory: str) -> CollectorRegistry:
    """A registry whose one collector sums every process's files in `directory`."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(DirectoryCollector(directory))
    return registry


def own_file(directory: str, kind: str, pid: int) -> str:
    """The path of one of our worker's files: `<kind>_gaw-<pid>.db`."""
    return os.path.join(directory, f"{kind}_{OWN_PREFIX}{pid}.db")


def file_owner(name: str) -> tuple[str, int, bool] | None:
    """(kind, pid, whether one of our workers wrote it) of a process's file name; None for
    an archive and for anything else."""
    if not name.endswith(".db"):
        return None
    kind, sep, ident = name[:-3].rpartition("_")
    ours = ident.startswith(OWN_PREFIX)
    digits = ident[len(OWN_PREFIX):] if ours else ident
    if not sep or not digits.isdigit():
        return None
    return kind, int(digits), ours


def process_ended(pid: int) -> bool:
    """Whether no process `pid` exists (a zombie not yet reaped still does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's: alive
        return False
    return False


@contextlib.contextmanager
def locked(directory: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's lock: exclusive to fold, shared to scrape. A process that dies
    holding it releases it (the kernel drops its flock)."""
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def fold_ended(directory: str, ended: Callable[[int], bool]) -> set[int]:
    """Fold the files of every process that `ended` says has ended (see the module's
    docstring); return the pids of our workers among them."""
    files = value_file_class()
    with locked(directory, exclusive=True):
        summed: dict[str, list[str]] = {}
        remove: list[str] = []
        workers: set[int] = set()
        for name in os.listdir(directory):
            owner = file_owner(name)
            if owner is None or not ended(owner[1]):
                continue
            kind, pid, ours = owner
            if ours:
                workers.add(pid)
            if kind in SUMMED_KINDS:
                summed.setdefault(kind, []).append(os.path.join(directory, name))
            elif kind.startswith(LIVE_GAUGE):
                remove.append(os.path.join(directory, name))
        for kind, paths in summed.items():
            _fold(files, directory, kind, paths)
            remove += paths
        for path in remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return workers


def _fold(files: ValueFileClass, directory: str, kind: str, paths: Iterable[str]) -> None:
    """Add the values of `paths` into the archive of `kind`: a new archive is written beside
    the old one and takes its name in one step."""
    archive = os.path.join(directory, f"{kind}_{ARCHIVE}.db")
    totals: dict[str, float] = {}
    sources = [archive, *paths] if os.path.exists(archive) else list(paths)
    for path in sources:
        if not os.path.getsize(path):  # made, never sized: no value (see DirectoryCollector)
            continue
        for key, value, _timestamp, _position in files.read_all_values_from_file(path):
            totals[key] = totals.get(key, 0.0) + value
    scratch = os.path.join(directory, f".{kind}_{ARCHIVE}.new")  # not *.db: never scraped
    with contextlib.suppress(FileNotFoundError):
        os.unlink(scratch)
    out = files(scratch)
    try:
        for key, value in totals.items():
            out.write_value(key, value, 0.0)
    finally:
        out.close()
    os.replace(scratch, archive)


def installed_release() -> str:
    """prometheus_client's version, as installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prometheus-client")
    except PackageNotFoundError:
        return "(unknown version)"


def value_key(metric: str, sample: str, names: list[str], values: list[str],
              help_text: str) -> str:
    """The key of one sample in a value file (prometheus_client's `mmap_key`, which is not
    in its documented API either: every use of that module's internals is in this one)."""
    from prometheus_client.mmap_dict import mmap_key

    return mmap_key(metric, sample, names, values, help_text)


def check_file_format() -> str | None:
    """Why the installed prometheus_client's files cannot be folded as this module folds
    them, or None when they can: a counter and a histogram bucket written by two ended
    processes are folded and scraped in a scratch directory, and must sum."""
    mmap_key = value_key
    unknown = (f"prometheus_client {installed_release()} keeps its multiprocess files in a "
               f"way gunicorn-async-workers does not know (tested with {TESTED_RELEASES}): "
               f"install a release in that range")
    files = value_file_class()
    counter = mmap_key("gaw_check", "gaw_check_total", [], [], "check")
    bucket = mmap_key("gaw_check_seconds", "gaw_check_seconds_bucket", ["le"], ["+Inf"],
                      "check")
    try:
        with tempfile.TemporaryDirectory(prefix="gaw-prometheus-check-") as scratch:
            for pid, value in ((1, 2.0), (2, 3.0)):
                for kind, key in (("counter", counter), ("histogram", bucket)):
                    out = files(own_file(scratch, kind, pid))
                    out.write_value(key, value, 0.0)
                    out.close()
            fold_ended(scratch, lambda pid: pid == 1)  # one in the archive, one live
            found = {(s.name, s.value) for m in summing_registry(scratch).collect()
                     for s in m.samples}
    except Exception as exc:  # any failure says the same: this release is not known
        return f"{unknown} ({exc!r})"
    wanted = {("gaw_check_total", 5.0), ("gaw_check_seconds_bucket", 5.0),
              ("gaw_check_seconds_count", 5.0)}
    return None if wanted <= found else unknown
