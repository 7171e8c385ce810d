"""Debian's headless Chromium for the tests: found, driven by selenium, and stopped by pid.

The browser is Debian's `chromium` and its `chromium-driver` (`/usr/bin/chromium`,
`/usr/bin/chromedriver`; .ci/run installs both; `GAW_TEST_CHROMIUM` and
`GAW_TEST_CHROMEDRIVER` name others). Both paths are handed to selenium, so its driver
manager never looks for, or downloads, a browser of its own. Where either is missing, a test
that needs them skips with a reason starting with `SKIP_REASON`; under CI (`CI=true`)
tests/conftest.py turns such a skip into a failed run.

Everything the browser writes (profile, crash database, caches) goes into one folder of the
test's, and that folder's path is how the browser's processes that leave chromedriver's tree
(Chromium's crash handlers detach themselves) are found again: when the browser is closed,
every process started under chromedriver or naming that folder is waited for, and killed by
its pid if `driver.quit()` left it behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn_process import pid_alive, wait_for
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

# The programs, and the variables that name others (read when a browser is started).
CHROMIUM = ("GAW_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = ("GAW_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SKIP_REASON = "headless Chromium unavailable"

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's small /dev/shm crashes tabs
    "--no-first-run",
    # No network here but the loopback: nothing in the background may reach out (every start
    # would wait on refused connections and failed look-ups).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # A tab in the background keeps its timers at full speed (the chat page's reconnect).
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--window-size=800,700",
)
# driver.quit() takes well under a second here; what is still running after this is killed.
QUIT_TIMEOUT = 10.0


def program(which: tuple[str, str]) -> Path:
    """CHROMIUM's or CHROMEDRIVER's path: its variable's value, else Debian's path."""
    variable, default = which
    return Path(os.environ.get(variable) or default)


def missing_reason() -> str | None:
    """Why no browser can be had here, or None when both programs are there."""
    absent = [f"{program(which)} (${which[0]})" for which in (CHROMIUM, CHROMEDRIVER)
              if not os.access(program(which), os.X_OK)]
    if not absent:
        return None
    return (f"{SKIP_REASON}: no executable {' and no '.join(absent)}; "
            "apt-get install chromium chromium-driver, or set the variables")


def _children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def _naming(folder: Path) -> list[int]:
    """The processes whose command line names `folder` (a folder of the test's own)."""
    needle = os.fsencode(folder)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def browser_processes(driver_pid: int, folder: Path) -> set[int]:
    """chromedriver, everything started under it, and whatever names the browser's folder."""
    children = _children()
    found: set[int] = set()
    todo = [driver_pid, *_naming(folder)]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


@contextlib.contextmanager
def chromium(folder: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium under chromedriver, with everything it writes in `folder`; closed,
    and every process of it gone, on leaving. Skips the test when the browser is missing."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    folder.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(program(CHROMIUM))
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={folder / 'profile'}")
    env = {**os.environ, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config"),
           "XDG_CACHE_HOME": str(folder / "cache")}
    service = Service(executable_path=str(program(CHROMEDRIVER)), env=env,
                      log_output=str(folder / "chromedriver.log"))
    driver: webdriver.Chrome | None = None
    try:
        driver = webdriver.Chrome(options=options, service=service)
        yield driver
    finally:
        _close(driver, service, folder)


def _close(driver: webdriver.Chrome | None, service: Service, folder: Path) -> None:
    process = service.process
    started = browser_processes(process.pid, folder) if process is not None else set()
    with contextlib.suppress(WebDriverException, OSError):
        if driver is not None:
            driver.quit()  # closes the browser, then stops chromedriver
        else:
            service.stop()
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: not any(pid_alive(pid) for pid in started), QUIT_TIMEOUT,
                 interval=0.05, what="Chromium and chromedriver gone after quit()")
    for pid in started:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(pid) for pid in started), 5.0,
             what="Chromium and chromedriver gone after SIGKILL")
