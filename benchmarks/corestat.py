"""Read per-core busy time from /proc/stat, to spot other programs loading the measured cores."""

from __future__ import annotations

from pathlib import Path

from benchmarks.proctree import CLOCK_TICKS

# /proc/stat columns: user nice system idle iowait irq softirq steal
_TASK_FIELDS = (0, 1, 2, 7)  # time spent running tasks (or stolen by the hypervisor)
_IRQ_FIELDS = (5, 6)  # interrupts: on loopback, mostly the network stack's softirqs


def _ticks() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            found[int(name[3:])] = [int(v) for v in values]
    return found


def _seconds(fields: tuple[int, ...]) -> dict[int, float]:
    return {
        cpu: sum(ticks[i] for i in fields if i < len(ticks)) / CLOCK_TICKS
        for cpu, ticks in _ticks().items()
    }


def task_seconds() -> dict[int, float]:
    """Seconds since boot each core spent running tasks (user, nice, system, steal)."""
    return _seconds(_TASK_FIELDS)


def irq_seconds() -> dict[int, float]:
    """Seconds since boot each core spent in hard and soft interrupts."""
    return _seconds(_IRQ_FIELDS)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
