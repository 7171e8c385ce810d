"""Read a process tree's members, CPU time and resident memory from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat the suite uses."""

    pid: int
    state: str
    utime_ticks: int
    stime_ticks: int
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None if the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime, stime and starttime are fields 14, 15 and 22.
    return ProcStat(
        pid=pid,
        state=fields[0],
        utime_ticks=int(fields[11]),
        stime_ticks=int(fields[12]),
        start_ticks=int(fields[19]),
    )


def children(pid: int) -> list[int]:
    """Direct children of pid, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree(root: int) -> list[int]:
    """root and all its live descendants, parents before children."""
    members: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop(0)
        if pid in members or not is_alive(pid):
            continue
        members.append(pid)
        pending.extend(children(pid))
    return members


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime in seconds for each pid still alive (all threads included)."""
    result: dict[int, float] = {}
    for pid in pids:
        stat = read_stat(pid)
        if stat is not None:
            result[pid] = (stat.utime_ticks + stat.stime_ticks) / CLOCK_TICKS
    return result


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_kib(root: int) -> int:
    """Sum of VmRSS over root and its descendants, in KiB."""
    return sum(rss_kib(pid) for pid in tree(root))


def start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks after boot: tells a pid from a recycled one."""
    stat = read_stat(pid)
    return None if stat is None else stat.start_ticks


def memory_kib(pid: int) -> dict[str, int]:
    """One process's resident memory in KiB: `rss` (VmRSS), `pss` (shared pages divided
    among the processes that map them) and `uss` (pages only it maps: private clean + dirty),
    from /proc/<pid>/smaps_rollup; an empty dict if the process is gone."""
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    fields: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        value = rest.split()
        if value:
            fields[name] = int(value[0])
    return {
        "rss": fields.get("Rss", 0),
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def fd_count(pid: int) -> int:
    """How many file descriptors the process has open (-1 if it is gone)."""
    try:
        return len(os.listdir(PROC / str(pid) / "fd"))
    except (FileNotFoundError, ProcessLookupError):
        return -1
