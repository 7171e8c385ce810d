"""examples/ws_chat.py in a real browser: two tabs of headless Chromium chat through gunicorn,
a SIGHUP reload drops both WebSockets (1001 from the retiring worker), each page reconnects
on its own to the new worker, and the chat goes on.

The browser is Debian's Chromium under chromedriver (tests/headless_chromium.py), one for
the module; each test opens its own two tabs and closes them. Every wait is polled in the
pages and bounded. A screenshot of each tab is written to the test's tmp_path and, when
`GAW_TEST_ARTIFACTS` names a folder, there too (a `GAW_TEST_` name: any other `GAW_*`
variable is an option of ours, and an unknown one stops gunicorn at boot).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gunicorn_process import REPO, GunicornProcess, error_log, wait_for, worker_pid
from headless_chromium import chromium
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

APP = "examples.ws_chat:app"
ARTIFACTS_ENV = "GAW_TEST_ARTIFACTS"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RELOAD_TIMEOUT = 15.0  # a new worker booted, the old one's WebSockets closed, both pages back

# What a page shows, read in one round trip: its status line's state, and each line of its log
# as [class, sender, text]: ["note", "", "bob joined"], ["own", "alice", "hello"], ["", ...].
READ_PAGE = """
const lines = Array.from(document.getElementById("log").children, (p) => {
  const sender = p.querySelector("b");
  return sender ? [p.className, sender.textContent, p.lastChild.textContent]
                : [p.className, "", p.textContent];
});
return {status: document.getElementById("status").dataset.state, lines: lines};
"""

Line = tuple[str, str, str]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


@dataclass
class ChatTab:
    """One browser tab with the chat page open, under the name its user typed."""

    driver: webdriver.Chrome
    handle: str
    name: str

    def read(self) -> tuple[str, list[Line]]:
        """The page's connection state and its log."""
        self.driver.switch_to.window(self.handle)
        page: dict[str, Any] = self.driver.execute_script(READ_PAGE)
        return page["status"], [(kind, sender, text) for kind, sender, text in page["lines"]]

    def lines(self) -> list[Line]:
        return self.read()[1]

    def notes(self) -> list[str]:
        return [text for kind, _, text in self.lines() if kind == "note"]

    def joins(self) -> int:
        """How often the page has joined the room under its name, by its log; 0 while it is
        not connected."""
        status, lines = self.read()
        if status != "connected":
            return 0
        return lines.count(("note", "", f"you joined as {self.name}"))

    def rejoined(self) -> bool:
        return self.joins() == 2

    def received(self, sender: str, text: str) -> bool:
        """Whether someone else's message is in the log (not set apart as this tab's own)."""
        return ("", sender, text) in self.lines()

    def say(self, text: str) -> None:
        """Type a message and press Enter, as a user does."""
        self.driver.switch_to.window(self.handle)
        self.driver.find_element(By.ID, "text").send_keys(text, Keys.ENTER)

    def screenshot(self, path: Path) -> Path:
        self.driver.switch_to.window(self.handle)
        assert self.driver.save_screenshot(str(path)), path
        return path


def open_chat(driver: webdriver.Chrome, url: str, name: str) -> ChatTab:
    """A new tab with the page, renamed to `name` the way a user does it: select the name
    field's guest-NNNN, type over it, tab out (the page rejoins under the new name)."""
    driver.switch_to.new_window("tab")
    driver.get(url + "/")
    tab = ChatTab(driver, driver.current_window_handle, name)
    field = driver.find_element(By.ID, "name")
    assert re.fullmatch(r"guest-\d{4}", field.get_attribute("value") or "")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(name, Keys.TAB)
    wait_for(lambda: tab.joins() == 1, what=f"{name}'s tab connected under its name")
    return tab


def close_tabs(driver: webdriver.Chrome) -> None:
    """Close every tab but one, which is left blank: the browser outlives each test."""
    handles = driver.window_handles
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])
    driver.get("about:blank")


def keep_screenshots(tabs: list[ChatTab], folder: Path, label: str) -> list[Path]:
    """A PNG of each tab in `folder`, copied into $GAW_TEST_ARTIFACTS when that is set."""
    shots = [tab.screenshot(folder / f"chat-{label}-{tab.name}.png") for tab in tabs]
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(artifacts) / shot.name)
    return shots


def test_two_tabs_chat_and_reconnect_after_a_reload(
        gunicorn: Any, worker_class: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    server: GunicornProcess = gunicorn(APP)
    try:
        alice = open_chat(browser, server.url, "alice")
        bob = open_chat(browser, server.url, "bob")
        wait_for(lambda: "bob joined" in alice.notes(), what="alice's tab shows bob join")

        alice.say("hello bob")
        wait_for(lambda: bob.received("alice", "hello bob"), what="bob's tab shows the message")
        assert ("own", "alice", "hello bob") in alice.lines()  # set apart as her own

        # A reload: the arbiter starts a new worker and retires the old one, which stops
        # listening and closes both WebSockets with 1001. Each page says so and reconnects,
        # so to the new worker.
        old_worker = worker_pid(server)
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        for tab in (alice, bob):
            wait_for(tab.rejoined, RELOAD_TIMEOUT,
                     what=f"{tab.name}'s tab reconnected after the reload")
            notes = tab.notes()
            rejoin = len(notes) - 1 - notes[::-1].index(f"you joined as {tab.name}")
            assert "disconnected" in notes[:rejoin], notes

        def one_new_worker() -> bool:
            pids = server.worker_pids()
            return len(pids) == 1 and pids[0] != old_worker

        wait_for(one_new_worker, RELOAD_TIMEOUT, what="the old worker gone, a new one serving")

        # Both are in the new worker's room: a message typed after the reload arrives.
        bob.say("hi alice, after the reload")
        wait_for(lambda: alice.received("bob", "hi alice, after the reload"),
                 what="alice's tab shows the message sent after the reload")
        assert ("own", "bob", "hi alice, after the reload") in bob.lines()

        label = worker_class.rsplit(".", 1)[-1]
        for shot in keep_screenshots([alice, bob], tmp_path, label):
            assert shot.read_bytes().startswith(PNG_SIGNATURE), shot
    finally:
        close_tabs(browser)
    log = error_log(server)
    assert "[ERROR]" not in log and "Traceback" not in log, log


def test_without_chromedriver_the_chat_test_skips_and_fails_ci() -> None:
    """The chat test, run under CI by a pytest of its own where chromedriver is missing:
    it skips with a reason that names what is missing and how to get it, and that skip fails
    the run. (Outside CI the same skip passes: tests/conformance/test_corpus_lookup.py shows
    that for the mechanism both share.)"""
    missing = "/nonexistent/chromedriver"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(CI="true", GAW_TEST_CHROMEDRIVER=missing, GAW_TEST_WORKER_CLASSES="gaw.UvloopWorker")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         f"{__file__}::test_two_tabs_chat_and_reconnect_after_a_reload"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:]
    assert "1 skipped" in done.stdout, done.stdout[-2000:]
    assert (f"headless Chromium unavailable: no executable {missing} ($GAW_TEST_CHROMEDRIVER); "
            "apt-get install chromium chromium-driver") in done.stdout, done.stdout[-2000:]
    assert ("CI: 1 tests skipped for want of Chromium and chromedriver (first: "
            "tests/integration/test_browser_chat.py::test_two_tabs_chat") in done.stdout, \
        done.stdout[-2000:]
