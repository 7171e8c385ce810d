"""Slow attacks on a worker's connection slots, and a polite client that measures them.

Three attacks (issue 19): `heads` (each connection sends one byte of a request head every
5 s), `bodies` (a `Content-Length: 1000000000` body, one byte a second) and `tls` (stalled
TLS handshakes: half the connections send nothing, half send half a ClientHello). Every
attacking connection reconnects as soon as the server closes it. The attacker runs in a
process of its own (`python tests/slot_attacks.py attack ...`) so that its work does not
delay the polite client's clock; the polite client makes one request every 50 ms, each on
a fresh connection, and records failures and latencies.

The full-size run (1,000 connections, 30 s per attack, default settings, each worker
class) prints the polite client's p99 and failures and the worker's RSS growth:

    .venv/bin/python -m tests.slot_attacks [--seconds 30] [--connections 1000] [--classes ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent
KINDS = ("heads", "bodies", "tls")
HEAD = b"GET /r?id=slow HTTP/1.1\r\nHost: h\r\nX-Drip: " + b"a" * 4000
BODY_HEAD = b"POST /r?id=slow HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000\r\n\r\n"
# Seconds between an attacking connection's bytes.
DRIP = {"heads": 5.0, "bodies": 1.0, "tls": 5.0}
POLITE_INTERVAL = 0.05
POLITE_TIMEOUT = 10.0


def raise_fd_limit(wanted: int) -> None:
    """Allow `wanted` descriptors in this process (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- the attacker (its own process) -----------------------------------------------------------
@functools.cache
def half_client_hello() -> bytes:
    """The first half of a real TLS ClientHello."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="h")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    return hello[:len(hello) // 2]


async def slow_connection(kind: str, number: int, host: str, port: int, stop: float,
                          counts: dict[str, int]) -> None:
    """One attacking connection, reopened whenever the server closes it, until `stop`."""
    loop = asyncio.get_running_loop()
    if kind == "heads":
        first, drip = HEAD[:1], HEAD[1:]
    elif kind == "bodies":
        first, drip = BODY_HEAD, b"b" * 100_000
    else:
        first, drip = (half_client_hello() if number % 2 else b""), b""
    interval = DRIP[kind]
    while loop.time() < stop:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            counts["connects"] += 1
            if first:
                writer.write(first)
            step = 0
            while loop.time() < stop:
                try:
                    data = await asyncio.wait_for(reader.read(65536),
                                                  min(interval, stop - loop.time()))
                except TimeoutError:
                    if drip:
                        writer.write(drip[step % len(drip):][:1])
                        step += 1
                    continue
                if not data:
                    break  # closed by the server: reconnect
        except OSError:
            counts["errors"] += 1
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


async def attack(kind: str, host: str, port: int, connections: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    counts = {"connects": 0, "errors": 0}
    stop = loop.time() + seconds
    await asyncio.gather(*(slow_connection(kind, i, host, port, stop, counts)
                           for i in range(connections)))
    print(f"attacker {kind}: {counts['connects']} connects, {counts['errors']} errors",
          flush=True)


def start_attacker(kind: str, host: str, port: int, connections: int,
                   seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "attack", kind, host, str(port),
         str(connections), str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def stop_attacker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    """Wait for the attacker to end (it stops itself); kill it by pid if it does not."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    return out.decode(errors="replace")


def attack_connected(proc: subprocess.Popen[bytes], pid: int, connections: int) -> bool:
    """Whether the worker holds about `connections` sockets (the attack is in place)."""
    if proc.poll() is not None:
        raise RuntimeError("the attacker ended early: " + stop_attacker(proc))
    return sockets(pid) >= connections * 0.9


def sockets(pid: int) -> int:
    """Sockets the process holds open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
    return count


# -- the polite client -------------------------------------------------------------------------
@dataclass
class Polite:
    """Requests on fresh connections every POLITE_INTERVAL s; what they got and how fast."""

    host: str
    port: int
    context: ssl.SSLContext | None = None
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def one(self) -> None:
        began = time.monotonic()
        try:
            raw = socket.create_connection((self.host, self.port), timeout=POLITE_TIMEOUT)
            with (self.context.wrap_socket(raw, server_hostname="127.0.0.1")
                  if self.context is not None else raw) as s:
                s.settimeout(POLITE_TIMEOUT)
                s.sendall(b"GET /r?id=polite HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200 ") or b"\r\n\r\npolite " not in data:
                self.failures.append(f"answer {data[:60]!r}")
                return
        except OSError as exc:
            self.failures.append(repr(exc))
            return
        self.latencies.append(time.monotonic() - began)

    def ok(self) -> bool:
        """One request, answered: whether it was (for readiness)."""
        failed = len(self.failures)
        self.one()
        return len(self.failures) == failed

    def run(self) -> None:
        while not self.stopping.is_set():
            self.one()
            self.stopping.wait(POLITE_INTERVAL)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Outcome:
    kind: str
    requests: int
    failures: list[str]
    p99: float
    rss_growth: int
    attacker: str
    slowest: list[str]

    def line(self) -> str:
        return (f"{self.kind:7s} polite requests {self.requests:4d}  failures "
                f"{len(self.failures):3d}  p99 {self.p99 * 1000:7.1f} ms  worker RSS "
                f"+{self.rss_growth / 2**20:5.1f} MiB  slowest {self.slowest}  "
                f"({self.attacker.strip()})")


def under_attack(kind: str, host: str, port: int, pid: int, connections: int, seconds: float,
                 context: ssl.SSLContext | None = None) -> Outcome:
    """Run `kind` against the server while the polite client is measured throughout."""
    raise_fd_limit(connections + 1000)
    before = rss(pid)
    proc = start_attacker(kind, host, port, connections, seconds)
    polite = Polite(host, port, context)
    thread = threading.Thread(target=polite.run, daemon=True)
    peak = before
    try:
        deadline = time.monotonic() + min(seconds, 20.0)
        while not attack_connected(proc, pid, connections):  # bounded: fails loudly below
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind}: the attack never held {connections} sockets")
            time.sleep(0.05)
        thread.start()
        while proc.poll() is None:
            peak = max(peak, rss(pid))
            time.sleep(0.25)
    finally:
        polite.stopping.set()
        if thread.is_alive():
            thread.join(POLITE_TIMEOUT * 2)
        out = stop_attacker(proc)
    return Outcome(kind, len(polite.latencies) + len(polite.failures), polite.failures,
                   polite.p99(), peak - before, out,
                   [f"{t:.2f}" for t in sorted(polite.latencies)[-5:]])


# -- the full-size run -------------------------------------------------------------------------
def full_run(seconds: float, connections: int, classes: list[str]) -> int:
    sys.path[:0] = [str(TESTS), str(TESTS.parent)]
    import trustme
    from gunicorn_process import GunicornProcess, worker_pid

    raise_fd_limit(2 * connections + 2000)
    certs = Path(tempfile.mkdtemp(prefix="gaw-attack-certs-"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(certs / "server.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    bad = 0
    for worker_class in classes:
        for kind in KINDS:
            settings = ({"certfile": str(certs / "server.pem")} if kind == "tls" else {})
            server = GunicornProcess("apps.reliability:app", worker_class, settings=settings)
            if kind == "tls":
                server.start(probe=False)
            else:
                server.start()
            try:
                outcome = under_attack(kind, server.host, server.port, worker_pid(server),
                                       connections, seconds,
                                       client if kind == "tls" else None)
            finally:
                server.stop()
            print(f"{worker_class:18s} {outcome.line()}", flush=True)
            bad += bool(outcome.failures) or outcome.p99 >= 1.0
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["attack"]:
        kind, host, port, connections, seconds = argv[1:6]
        raise_fd_limit(int(connections) + 1000)
        asyncio.run(attack(kind, host, int(port), int(connections), float(seconds)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.slot_attacks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--classes", default="gaw.UvloopWorker,gaw.AsyncioWorker,gaw.H11Worker")
    args = parser.parse_args(argv)
    return full_run(args.seconds, args.connections, args.classes.split(","))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
