"""Soak: minutes of mixed load on one gunicorn worker; its RSS and open descriptors over time.

    python -m tests.soak [--duration 600] [--worker-class gaw.UvloopWorker]
                         [--interface asgi|wsgi] [--warmup 60] [--interval 10]

Not part of the test suite (it takes minutes). Client threads in this process keep up a
mixed, paced load on `tests/apps/reliability.py`: keep-alive requests with and without
bodies, a new connection per request, large responses read slowly, apps that fail (500),
malformed requests (400), clients that vanish mid-head or mid-body, and, for ASGI, WebSocket
sessions that open, echo and close. Every `--interval` seconds it prints the worker's RSS,
its open descriptors (`/proc/<pid>/fd`) and the requests done so far.

Verdict: after `--warmup`, RSS (the mean of the first quarter of samples against the mean
of the last) and the descriptors held while idle (the load paused, every client
disconnected, before and after) must grow by less than 5 %. The exit status is 1 otherwise,
or if any request got a wrong answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gunicorn_process import GunicornProcess, rss, wait_for, worker_pid  # noqa: E402
from raw_http import ResponseReader  # noqa: E402

GROWTH_LIMIT = 0.05
TIMEOUT = 15.0


class Load:
    """Paced client threads of several kinds, with a shared tally; pausable."""

    def __init__(self, server: GunicornProcess, interface: str) -> None:
        self.server = server
        self.interface = interface
        self.stop = threading.Event()
        self.running = threading.Event()  # cleared: every client disconnects and waits
        self.running.set()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.wrong: list[str] = []
        self.idle_clients = 0  # clients parked by a pause
        kinds: list[Callable[[int], None]] = [self.keep_alive] * 4 + [
            self.fresh, self.fresh, self.slow_reader, self.faults, self.vanishing]
        if interface == "asgi":
            kinds.append(self.websocket)
        self.threads = [threading.Thread(target=self._run, args=(kind, i), daemon=True)
                        for i, kind in enumerate(kinds)]

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def pause(self) -> None:
        """Stop the load and wait until every client has disconnected."""
        self.running.clear()
        wait_for(lambda: self.idle_clients == len(self.threads), timeout=60,
                 what="every client paused")

    def resume(self) -> None:
        self.running.set()

    def finish(self) -> None:
        self.stop.set()
        self.running.set()
        for thread in self.threads:
            thread.join(TIMEOUT + 5)

    def _run(self, kind: Callable[[int], None], number: int) -> None:
        while not self.stop.is_set():
            if not self.running.is_set():
                with self.lock:
                    self.idle_clients += 1
                self.running.wait()
                with self.lock:
                    self.idle_clients -= 1
                continue
            try:
                kind(number)
            except (OSError, EOFError) as exc:
                self.note("connection_errors")
                self.stop.wait(0.05)
                if not isinstance(exc, (ConnectionError, EOFError)):
                    self.note_wrong(f"{kind.__name__}: {exc!r}")

    def note(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def note_wrong(self, what: str) -> None:
        with self.lock:
            self.wrong.append(what)

    def active(self) -> bool:
        return self.running.is_set() and not self.stop.is_set()

    def connect(self) -> socket.socket:
        return socket.create_connection((self.server.host, self.server.port), timeout=TIMEOUT)

    # -- kinds of client -----------------------------------------------------------------
    def keep_alive(self, number: int) -> None:
        """Requests on one connection, some with bodies, until paused or closed."""
        with self.connect() as s:
            reader = ResponseReader(s, TIMEOUT)
            seq = 0
            while self.active():
                seq += 1
                body = b"b" * (seq % 4 * 3000)
                rid = f"k{number}-{seq}"
                s.sendall(b"POST /r?id=%s HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n%s"
                          % (rid.encode(), len(body), body))
                resp = reader.read_response()
                if resp.status != 200 or not resp.body.startswith(rid.encode() + b" "):
                    self.note_wrong(f"{rid}: {resp.status} {resp.body[:80]!r}")
                self.note("keep_alive")
                if (resp.header(b"connection") or b"").lower() == b"close":
                    return
                self.stop.wait(0.004)  # pacing: a busy client, not a flood

    def fresh(self, number: int) -> None:
        with self.connect() as s:
            s.sendall(b"GET /r?id=f%d HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
                      % number)
            resp = ResponseReader(s, TIMEOUT).read_response()
        if resp.status != 200:
            self.note_wrong(f"fresh: {resp.status}")
        self.note("fresh")
        self.stop.wait(0.01)

    def slow_reader(self, number: int) -> None:
        size = 1024 * 1024
        with self.connect() as s:
            s.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
                      % size)
            got = 0
            while True:
                data = s.recv(16384)
                if not data:
                    break
                got += len(data)
                self.stop.wait(0.002)  # pacing: a slow reader
        if got < size:
            self.note_wrong(f"slow reader got {got} bytes")
        self.note("slow_reader")

    def faults(self, number: int) -> None:
        faults = ["raise", "noresponse"] if self.interface == "asgi" else ["raise", "bad_status"]
        for fault in faults:
            with self.connect() as s:
                s.sendall(b"GET /fault/%s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
                          % fault.encode())
                status = ResponseReader(s, TIMEOUT).read_response().status
            if status != 500:
                self.note_wrong(f"fault {fault}: {status}")
            self.note("fault_500")
        with self.connect() as s:
            s.sendall(b"GET /r HTTP/1.1\r\nHost: soak\r\nBad Header: x\r\n\r\n")
            status = ResponseReader(s, TIMEOUT).read_response().status
        if status != 400:
            self.note_wrong(f"malformed: {status}")
        self.note("malformed_400")
        self.stop.wait(0.1)

    def vanishing(self, number: int) -> None:
        """Clients that go away mid-head and mid-body, with a reset."""
        for partial in (b"GET /r?id=v HTTP/1.1\r\nHost: so",
                        b"POST /r?id=v HTTP/1.1\r\nHost: soak\r\nContent-Length: 9999\r\n\r\nab"):
            s = self.connect()
            s.sendall(partial)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            self.note("vanished")
        self.stop.wait(0.05)

    def websocket(self, number: int) -> None:
        from websockets.sync.client import connect

        url = f"ws://{self.server.host}:{self.server.port}/ws"
        with connect(url, open_timeout=TIMEOUT, ping_interval=None) as ws:
            for i in range(20):
                ws.send(f"m{i}")
                if ws.recv(timeout=TIMEOUT) != f"m{i}":
                    self.note_wrong("websocket echo")
                self.stop.wait(0.005)
        self.note("websocket_sessions")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until_steady(read: Callable[[], int], quiet: float, timeout: float, what: str) -> int:
    """Poll `read` until its value has not changed for `quiet` seconds; return that value."""
    last = {"value": -1, "since": time.monotonic()}

    def steady() -> bool:
        value, now = read(), time.monotonic()
        if value != last["value"]:
            last.update(value=value, since=now)
            return False
        return now - last["since"] >= quiet
    wait_for(steady, timeout=timeout, interval=0.1, what=what)
    return int(last["value"])


def settled_fds(pid: int) -> int:
    """The descriptors a paused worker holds once its connections have closed."""
    return wait_until_steady(lambda: open_fds(pid), 2.0, 60, "the worker's descriptors settling")


def growth(before: float, after: float) -> float:
    return (after - before) / before if before else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the baseline (default: a tenth of the duration)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--worker-class", default="gaw.UvloopWorker")
    parser.add_argument("--interface", choices=["asgi", "wsgi"], default="asgi")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else args.duration / 10
    app = "apps.reliability:app" if args.interface == "asgi" else "apps.reliability:wsgi_app"
    server = GunicornProcess(app, args.worker_class, settings={"threads": 4, "keepalive": 2})
    with server:
        pid = worker_pid(server)
        load = Load(server, args.interface)
        load.start()
        began = time.monotonic()
        samples: list[dict[str, float]] = []
        idle_fds: list[int] = []
        print(f"soak: {args.worker_class} {args.interface}, worker {pid}, {args.duration:.0f} s"
              f" (warm-up {warmup:.0f} s)")
        print(f"{'t (s)':>7} {'RSS (MiB)':>10} {'fds':>5} {'requests':>9}")
        next_sample = began + args.interval
        while time.monotonic() - began < args.duration:
            wait_for(lambda t=next_sample: time.monotonic() >= t or load.stop.is_set(),
                     timeout=args.interval + 5, interval=0.1, what="the next sample")
            next_sample += args.interval
            elapsed = time.monotonic() - began
            if not idle_fds and elapsed >= warmup:
                load.pause()
                idle_fds.append(settled_fds(pid))
                load.resume()
            sample = {"t": round(elapsed, 1), "rss": rss(pid), "fds": open_fds(pid),
                      "requests": sum(load.counts.values())}
            if elapsed >= warmup:
                samples.append(sample)
            print(f"{sample['t']:>7.0f} {sample['rss'] / 2**20:>10.1f} {sample['fds']:>5.0f} "
                  f"{sample['requests']:>9.0f}", flush=True)
        load.pause()
        idle_fds.append(settled_fds(pid))
        load.finish()
        alive = server.worker_pids() == [pid]
    quarter = max(1, len(samples) // 4)
    first = sum(s["rss"] for s in samples[:quarter]) / quarter
    last = sum(s["rss"] for s in samples[-quarter:]) / quarter
    result = {
        "worker_class": args.worker_class, "interface": args.interface,
        "duration_s": args.duration, "warmup_s": warmup, "requests": dict(load.counts),
        "rss_first_mib": round(first / 2**20, 2), "rss_last_mib": round(last / 2**20, 2),
        "rss_growth": round(growth(first, last), 4),
        "idle_fds_after_warmup": idle_fds[0] if idle_fds else None,
        "idle_fds_at_end": idle_fds[-1] if idle_fds else None,
        "fds_growth": round(growth(idle_fds[0], idle_fds[-1]), 4) if idle_fds else None,
        "wrong_answers": load.wrong[:20], "same_worker_throughout": alive,
    }
    print(json.dumps(result, indent=2))
    ok = (len(samples) >= 2 and result["rss_growth"] < GROWTH_LIMIT
          and (result["fds_growth"] or 0) < GROWTH_LIMIT and not load.wrong and alive)
    print("soak:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
