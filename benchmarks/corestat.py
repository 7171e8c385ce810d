"""Read per-core busy time from /proc/stat, to spot other programs loading the measured cores."""

from __future__ import annotations

from pathlib import Path

from benchmarks.proctree import CLOCK_TICKS

# user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def busy_seconds() -> dict[int, float]:
    """Busy CPU seconds since boot for every core."""
    found: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in values]
            found[int(name[3:])] = sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks))
    return {cpu: ticks / CLOCK_TICKS for cpu, ticks in found.items()}


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
