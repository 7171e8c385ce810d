"""Prometheus metrics (`metrics_path`): what a scrape reports is what the test's clients did,
summed over two workers, and it survives recycled, reloaded and killed workers.

Every request goes over a raw socket with bytes the test built, so the byte counters are
checked to the byte. A scrape is parsed by prometheus_client's own parser. Each worker
writes its counts once a second (and before it answers a scrape), so checks poll the
scrape until it agrees, each within a bounded time.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import REPO, TESTS, GunicornProcess, pid_alive, read_until_close, wait_for
from prometheus_client.parser import text_string_to_metric_families
from ws_frames import TEXT, frame, upgrade_request

from gunicorn_async_workers.prometheus.directory import summing_registry

APP = "apps.metrics_apps:app"
WSGI_APP = "apps.metrics_apps:wsgi_app"
PATH = "/metrics"
# Seconds a poll waits for the scrape to agree: a worker writes its counts at every tick
# (once a second with the harness's timeout of 30).
SETTLE = 10.0
# Seconds the held request lasts at least.
HELD = 0.3
_DIRECTORY = re.compile(r"multiprocess directory (\S+)\)")

Labels = frozenset[tuple[str, str]]


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def status_and_body(response: bytes) -> tuple[int, bytes]:
    """A close-delimited response's status and body."""
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


class Client:
    """Raw requests to one server, one connection each (`Connection: close`), with the
    bytes sent and the response bodies received counted."""

    def __init__(self, server: GunicornProcess) -> None:
        self.server = server
        self.sent = 0  # request bytes, scrapes' included
        self.bodies = 0  # response body bytes of the app's answers

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + body
        with self.server.connect() as s:
            s.sendall(data)
            self.sent += len(data)
            return status_and_body(read_until_close(s))

    def burst(self, target: str, connections: int) -> list[tuple[int, bytes]]:
        """GET `target` on `connections` connections opened at once, every request sent
        before any answer is read (the app's answers, counted as `app` counts them)."""
        data = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        sockets = [self.server.connect() for _ in range(connections)]
        try:
            for s in sockets:
                s.sendall(data)
                self.sent += len(data)
            answers = []
            for s in sockets:
                status, answer = status_and_body(read_until_close(s))
                self.bodies += len(answer)
                answers.append((status, answer))
            return answers
        finally:
            for s in sockets:
                s.close()

    def app(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        status, answer = self.request(method, target, body)
        self.bodies += len(answer)
        return status, answer

    def scrape(self) -> dict[str, dict[Labels, float]]:
        """name -> {labels: value} of every sample the server reports."""
        status, text = self.request("GET", PATH)
        assert status == 200, (text, self.server.logs())
        found: dict[str, dict[Labels, float]] = {}
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = \
                    sample.value
        return found

    def settled(self, check: Callable[[dict[str, dict[Labels, float]]], bool],
                what: str) -> dict[str, dict[Labels, float]]:
        """The first scrape `check` accepts (a scrape's own bytes counted as it is sent)."""
        last: list[dict[str, dict[Labels, float]]] = []

        def agrees() -> bool:
            last[:] = [self.scrape()]
            return check(last[0])
        try:
            wait_for(agrees, SETTLE, interval=0.1, what=what)
        except TimeoutError:
            raise AssertionError(f"{what}; last scrape: {last}") from None
        return last[0]


def value(metrics: dict[str, dict[Labels, float]], name: str, **pairs: str) -> float:
    return metrics.get(name, {}).get(labels(**pairs), 0.0)


def requests_by_label(metrics: dict[str, dict[Labels, float]]) -> dict[tuple[str, str], float]:
    return {(dict(k)["method"], dict(k)["status"]): v
            for k, v in metrics.get("gaw_requests_total", {}).items()}


@pytest.fixture
def two_workers(worker_class: str) -> Iterator[GunicornProcess]:
    """An ASGI server of two workers with metrics on, in a temporary directory of its own;
    started without the harness's readiness request (which the app would answer, and the
    counts include)."""
    server = GunicornProcess(APP, worker_class, workers=2,
                             settings={"metrics_path": PATH, "keepalive": 30})
    try:
        server.start(probe=False)
        yield server
    finally:
        server.stop()


def test_a_scrape_reports_what_clients_did_on_both_workers(
        two_workers: GunicornProcess, tmp_path: Path) -> None:
    server = two_workers
    client = Client(server)
    expected: dict[tuple[str, str], int] = {}

    def app(method: str, target: str, body: bytes = b"") -> int:
        status, _ = client.app(method, target, body)
        key = (method, str(status))
        expected[key] = expected.get(key, 0) + 1
        return status

    # Both workers answer, bounded. One connection at a time, the worker that accepted the
    # last one is often the first to wake for the next (50 to 75 in a row, seen here): a
    # burst of connections arriving together is shared.
    pids = set()
    for _ in range(50):
        for status, body in client.burst("/pid", 16):
            assert status == 200
            expected["GET", "200"] = expected.get(("GET", "200"), 0) + 1
            pids.add(int(body))
        if len(pids) == 2:
            break
    assert len(pids) == 2, "one worker took every connection"
    assert app("GET", "/status/201") == 201
    assert app("GET", "/status/201") == 201
    assert app("HEAD", "/status/200") == 200  # no body sent
    assert app("DELETE", "/status/204") == 204
    assert app("PATCH", "/status/404") == 404
    assert app("POST", "/body", b"0123456789") == 200

    # Held: one request in flight, one idle keep-alive connection, a WebSocket session.
    gate = tmp_path / "gate"
    held = server.connect()
    hold = f"GET /hold?until={gate} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    held.sendall(hold)
    held_since = time.monotonic()
    client.sent += len(hold)
    idle = server.connect()
    keep = b"GET /status/200 HTTP/1.1\r\nHost: t\r\n\r\n"
    idle.sendall(keep)
    client.sent += len(keep)
    expected["GET", "200"] = expected.get(("GET", "200"), 0) + 1
    reply = b""
    while not reply.endswith(b"\r\n\r\n200\n"):
        reply += idle.recv(4096)
    client.bodies += len(b"200\n")
    ws = server.connect()
    handshake = upgrade_request("/echo")
    ws.sendall(handshake)
    client.sent += len(handshake)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += ws.recv(4096)
    assert reply.startswith(b"HTTP/1.1 101 "), reply
    for n in range(3):
        ws.sendall(frame(TEXT, b"hello %d" % n))
        echoed = b""
        while len(echoed) < 9:
            echoed += ws.recv(4096)
        assert echoed == b"\x81\x07hello %d" % n

    during = client.settled(lambda m: (
        value(m, "gaw_requests_in_flight") == 1
        and value(m, "gaw_websocket_sessions_open") == 1
        and value(m, "gaw_websocket_messages_total", direction="in") == 3
        and value(m, "gaw_websocket_messages_total", direction="out") == 3
        # held, idle, the session and the scrape itself
        and value(m, "gaw_connections_open") == 4), "gauges while requests are held")
    assert value(during, "gaw_workers") == 2

    # The held request must last measurably long: the histogram is checked for it below.
    time.sleep(max(0.0, HELD - (time.monotonic() - held_since)))
    gate.touch()
    assert read_until_close(held).endswith(b"\r\n\r\nheld\n")
    held.close()
    expected["GET", "200"] += 1
    client.bodies += len(b"held\n")
    idle.close()
    ws.sendall(frame(0x8, b"\x03\xe8"))  # close, 1000
    read_until_close(ws)
    ws.close()
    expected["GET", "101"] = 1  # the handshake, counted as its session ends

    http_requests = sum(n for (_, status), n in expected.items() if status != "101")
    final = client.settled(lambda m: (
        requests_by_label(m) == {k: float(n) for k, n in expected.items()}
        and value(m, "gaw_request_duration_seconds_count") == http_requests
        and value(m, "gaw_request_bytes_total") == client.sent
        and value(m, "gaw_response_body_bytes_total") == client.bodies
        and value(m, "gaw_requests_in_flight") == 0
        and value(m, "gaw_websocket_sessions_open") == 0
        and value(m, "gaw_connections_open") == 1), "totals after the clients are done")
    buckets = sorted((float(dict(k)["le"]), v)
                     for k, v in final["gaw_request_duration_seconds_bucket"].items())
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == http_requests  # cumulative, +Inf last
    # The held request, and it alone, lasted over 0.25 s.
    assert dict(buckets)[0.25] == http_requests - 1
    assert value(final, "gaw_request_duration_seconds_sum") > HELD
    assert "gaw_worker_exits_total" not in final

    # The directory is the arbiter's own, made at start and removed as it exits.
    match = _DIRECTORY.search(server.logs())
    assert match is not None, server.logs()
    directory = Path(match.group(1))
    # Each worker's three files, and the app's own counter's (none has ended: no archive).
    assert sorted(p.name for p in directory.glob("*.db")) == sorted(
        [f"{kind}_gaw-{pid}.db" for pid in server.worker_pids()
         for kind in ("counter", "gauge_livesum", "histogram")]
        + [f"counter_{pid}.db" for pid in server.worker_pids()])
    assert server.stop() == 0
    assert not directory.exists()
    assert "Traceback" not in server.logs()


def test_wsgi_requests_are_counted(worker_class: str, tmp_path: Path) -> None:
    server = GunicornProcess(WSGI_APP, worker_class, settings={"metrics_path": PATH,
                                                              "threads": 2})
    with server:  # (the readiness request: GET /__ready, 404)
        client = Client(server)
        gate = tmp_path / "gate"
        held = server.connect()
        held.sendall(f"GET /hold?until={gate} HTTP/1.1\r\nHost: t\r\nConnection: close"
                     "\r\n\r\n".encode())
        client.settled(lambda m: value(m, "gaw_requests_in_flight") == 1, "a WSGI request held")
        gate.touch()
        assert read_until_close(held).endswith(b"held\n")
        held.close()
        for target in ("/status/201", "/pid", "/status/404"):
            client.app("GET", target)
        client.settled(lambda m: requests_by_label(m) == {
            ("GET", "404"): 2.0, ("GET", "201"): 1.0, ("GET", "200"): 2.0}
            and value(m, "gaw_requests_in_flight") == 0
            and value(m, "app_pid_requests_total") == 1
            and value(m, "gaw_response_body_bytes_total")
            == client.bodies + len(b"not found\nheld\n"), "the WSGI requests")


def _blocking_sitecustomize(directory: Path) -> str:
    """A PYTHONPATH whose sitecustomize makes `import prometheus_client` fail, as where the
    extra is not installed."""
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoPrometheus:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'prometheus_client':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _NoPrometheus())\n")
    return os.pathsep.join([str(directory), str(REPO), str(TESTS)])


@pytest.mark.parametrize("worker_class", WORKER_CLASSES[:1])
@pytest.mark.parametrize("case", ["no prometheus_client", "not a directory", "two directories"])
def test_a_metrics_setting_that_cannot_work_stops_gunicorn_at_boot(
        worker_class: str, case: str, tmp_path: Path) -> None:
    settings: dict[str, object] = {"metrics_path": PATH}
    env: dict[str, str] = {}
    if case == "no prometheus_client":
        env["PYTHONPATH"] = _blocking_sitecustomize(tmp_path / "site")
        line = ("metrics_path is set but prometheus_client is not installed: pip install "
                "'gunicorn-async-workers[prometheus]'")
    elif case == "not a directory":
        (tmp_path / "file").write_text("")
        settings["metrics_dir"] = str(tmp_path / "file")
        line = f"metrics_dir = '{tmp_path / 'file'}' is not a writable directory"
    else:
        settings["metrics_dir"] = str(tmp_path)
        env["PROMETHEUS_MULTIPROC_DIR"] = "/tmp"
        line = f"metrics_dir = '{tmp_path}' but PROMETHEUS_MULTIPROC_DIR = '/tmp'"
    server = GunicornProcess(APP, worker_class, settings=settings, env=env)
    try:
        server.start(wait=False)
        assert server.proc is not None
        assert server.proc.wait(30) == 3, server.logs()
    finally:
        server.stop()
    ours = [x for x in server.logs().splitlines() if "gunicorn-async-workers:" in x]
    assert len(ours) == 1 and line in ours[0], server.logs()
    assert "Traceback" not in server.logs() and "Booting worker" not in server.logs()


@pytest.mark.parametrize("worker_class", WORKER_CLASSES[:1])
def test_counts_survive_recycled_reloaded_and_killed_workers(
        worker_class: str, tmp_path: Path) -> None:
    """Two workers recycled every 3 requests (scrapes count too), reloaded by SIGHUP, one
    killed: no count is lost, the directory holds only the live workers' files and the
    archives, and a `child_exit` hook of the user's (here the one prometheus_client's docs
    suggest) is still called for every worker."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    reaped = tmp_path / "reaped"
    server = GunicornProcess(APP, worker_class, workers=2, settings={
        "metrics_path": PATH, "metrics_dir": str(directory), "max_requests": 3,
        "max_requests_jitter": 0}, config_text=(
        "from prometheus_client import multiprocess\n"
        "def child_exit(server, worker):\n"
        "    multiprocess.mark_process_dead(worker.pid)\n"
        f"    with open({str(reaped)!r}, 'a') as f:\n"
        "        f.write(f'{worker.pid}\\n')\n"))
    client = Client(server)
    seen: list[float] = []  # gaw_requests_total over time: it never goes down

    def counted(total: int) -> Callable[[dict[str, dict[Labels, float]]], bool]:
        def check(metrics: dict[str, dict[Labels, float]]) -> bool:
            now = value(metrics, "gaw_requests_total", method="GET", status="200")
            assert not seen or now >= seen[-1], f"the count went down: {seen} then {now}"
            seen.append(now)
            db = [p.name for p in directory.glob("*.db")]
            # At most three workers' files (one exiting as its replacement boots), ours and
            # the app's, and the two archives.
            assert len(db) <= 3 * 4 + 2, db
            return now == total and value(metrics, "app_pid_requests_total") == total
        return check

    with server:
        assert server.worker_pids()
        for _ in range(12):
            assert client.app("GET", "/pid")[0] == 200
        client.settled(counted(12), "12 requests over recycled workers")
        assert server.logs().count("Autorestarting worker") >= 4

        # The reload turns recycling off, so that the worker killed below is not one
        # recycling already (its exit would be counted twice over).
        before = set(server.worker_pids())
        server.settings["max_requests"] = 0
        server.write_config()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: len(server.worker_pids()) == 2
                 and not before & set(server.worker_pids()), what="workers reloaded")
        client.settled(counted(12), "the count after SIGHUP")

        # A worker killed before its metrics began has no files to tell of it: the victim
        # is killed once it has them.
        victim = server.worker_pids()[0]
        wait_for(lambda: (directory / f"counter_gaw-{victim}.db").exists(),
                 what="the victim's metrics files")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not pid_alive(victim) and len(server.worker_pids()) == 2
                 and victim not in server.worker_pids(), what="the killed worker replaced")
        for _ in range(3):
            assert client.app("GET", "/pid")[0] == 200
        client.settled(counted(15), "the count goes on after a kill")
    # Every worker has exited and folded its files: the archives hold every count.
    assert sorted(p.name for p in directory.glob("*.db")) == [
        "counter_archive.db", "histogram_archive.db"]
    totals = {(s.name, frozenset(s.labels.items())): s.value
              for m in summing_registry(str(directory)).collect() for s in m.samples}
    exits = {dict(k)["reason"]: v for (name, k), v in totals.items()
             if name == "gaw_worker_exits_total"}
    logs = server.logs()
    # Each worker's end counted once: recycled, killed, and the rest by a signal (those the
    # reload replaced and those the stop ended: at least one, then two).
    assert sum(exits.values()) == len(server.all_worker_pids()), (exits, logs)
    assert exits["max_requests"] == logs.count("Autorestarting worker"), (exits, logs)
    assert exits["killed"] == 1, exits
    assert exits["signal"] >= 3 and set(exits) == {"max_requests", "signal", "killed"}, exits
    assert totals["gaw_requests_total", labels(method="GET", status="200")] == 15
    assert totals["app_pid_requests_total", frozenset()] == 15
    assert sorted(map(int, reaped.read_text().split())) == sorted(server.all_worker_pids())
    assert "Traceback" not in logs
