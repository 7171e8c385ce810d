"""Folding the multiprocess files of ended processes (prometheus/directory.py): every sum a
scrape reports stays the same, and only the ended processes' files go.

Files are written with prometheus_client's own `MmapedDict`, as its metrics write them, and
read back with its `MultiProcessCollector`, as a scrape reads them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from gunicorn_async_workers.prometheus.directory import (
    check_file_format,
    file_owner,
    fold_ended,
    summing_registry,
)

COUNTER = mmap_key("jobs", "jobs_total", ["kind"], ["a"], "Jobs")
BUCKET = mmap_key("wait_seconds", "wait_seconds_bucket", ["le"], ["+Inf"], "Wait")
WAIT_SUM = mmap_key("wait_seconds", "wait_seconds_sum", [], [], "Wait")
GAUGE = mmap_key("busy", "busy", [], [], "Busy")
LAST = mmap_key("last", "last", [], [], "Last")


def write(directory: Path, name: str, values: dict[str, float]) -> None:
    file = MmapedDict(str(directory / name))
    for key, value in values.items():
        file.write_value(key, value, 0.0)
    file.close()


def scraped(directory: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for m in summing_registry(str(directory)).collect() for s in m.samples}


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.db"))


def processes(directory: Path) -> None:
    """101: one of our workers, ended; 102: a process of the app's own metrics, ended;
    103: one of our workers, alive."""
    for pid, ours in ((101, True), (102, False), (103, True)):
        ident = f"gaw-{pid}" if ours else str(pid)
        write(directory, f"counter_{ident}.db", {COUNTER: pid})
        write(directory, f"histogram_{ident}.db", {BUCKET: 2, WAIT_SUM: 0.5})
        write(directory, f"gauge_livesum_{ident}.db", {GAUGE: 1})
    write(directory, "gauge_all_102.db", {LAST: 7})  # its last value, kept as the app chose


def test_folding_keeps_every_sum_and_removes_only_ended_files(tmp_path: Path) -> None:
    processes(tmp_path)
    before = scraped(tmp_path)
    assert fold_ended(str(tmp_path), lambda pid: pid in (101, 102)) == {101}
    after = scraped(tmp_path)
    # The sums are kept, and the app's last value; the live gauges of the ended processes
    # are gone.
    busy = ("busy", frozenset())
    assert (before[busy], after[busy]) == (3, 1)
    assert {k: v for k, v in before.items() if k != busy} == {
        k: v for k, v in after.items() if k != busy}
    assert after["last", frozenset({("pid", "102")})] == 7
    assert after[("jobs_total", frozenset({("kind", "a")}))] == 101 + 102 + 103
    assert after[("wait_seconds_count", frozenset())] == 6
    assert names(tmp_path) == [
        "counter_archive.db", "counter_gaw-103.db", "gauge_all_102.db",
        "gauge_livesum_gaw-103.db", "histogram_archive.db", "histogram_gaw-103.db"]


def test_a_later_fold_adds_into_the_archives(tmp_path: Path) -> None:
    processes(tmp_path)
    fold_ended(str(tmp_path), lambda pid: pid in (101, 102))
    assert fold_ended(str(tmp_path), lambda pid: pid == 103) == {103}
    after = scraped(tmp_path)
    assert after[("jobs_total", frozenset({("kind", "a")}))] == 101 + 102 + 103
    assert after[("wait_seconds_bucket", frozenset({("le", "+Inf")}))] == 6
    assert after[("wait_seconds_sum", frozenset())] == 1.5
    assert names(tmp_path) == ["counter_archive.db", "gauge_all_102.db",
                               "histogram_archive.db"]
    assert fold_ended(str(tmp_path), lambda pid: True) == set()  # nothing left: no change
    assert scraped(tmp_path) == after


def test_an_empty_file_is_left_out_of_scrapes_and_folded_away(tmp_path: Path) -> None:
    """prometheus_client makes a process's file before it sizes it: a process killed
    between the two leaves an empty file, which fails every scrape of its own collector
    (prometheus/client_python#1199)."""
    processes(tmp_path)
    for name in ("counter_104.db", "histogram_gaw-104.db", "gauge_livesum_104.db"):
        (tmp_path / name).touch()
    with pytest.raises(struct.error):
        list(MultiProcessCollector(None, path=str(tmp_path)).collect())
    jobs = ("jobs_total", frozenset({("kind", "a")}))
    assert scraped(tmp_path)[jobs] == 101 + 102 + 103
    assert fold_ended(str(tmp_path), lambda pid: pid == 104) == {104}
    assert not [name for name in names(tmp_path) if "104" in name]
    assert scraped(tmp_path)[jobs] == 101 + 102 + 103


@pytest.mark.parametrize(("name", "owner"), [
    ("counter_123.db", ("counter", 123, False)),
    ("counter_gaw-123.db", ("counter", 123, True)),
    ("gauge_livesum_gaw-9.db", ("gauge_livesum", 9, True)),
    ("gauge_all_77.db", ("gauge_all", 77, False)),
    ("counter_archive.db", None),
    (".gaw.lock", None),
    ("counter_gaw-.db", None),
    ("notes.db", None),
])
def test_file_owner(name: str, owner: tuple[str, int, bool] | None) -> None:
    assert file_owner(name) == owner


def test_the_installed_prometheus_client_is_one_we_know() -> None:
    assert check_file_format() is None
