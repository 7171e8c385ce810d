"""Measure permessage-deflate settings: worker memory per idle compressed WebSocket and the
worker's CPU per compressed echo, for each (window bits, memory level) pair asked for.

    python -m benchmarks.ws_deflate --idle 2000 --seconds 5 15/8 12/5

For each setting a fresh Gunicorn (gaw.UvloopWorker, one worker, the benchmark ASGI app's
`/ws` echo) is started with `ws_deflate_server_max_window_bits`,
`ws_deflate_client_max_window_bits` (both the window bits) and `ws_deflate_memory_level`.
The client is the `websockets` library with its default compression offer (as browsers,
it offers `client_max_window_bits`). Memory: the worker's RSS growth over `--idle`
connections, each of which has echoed one 1 KiB JSON message, divided by their number.
Speed: `--connections` connections each keep one JSON text message of each size in flight
for `--seconds` (eight different messages in turn, as a repeated one would compress against
itself); reported as messages a second and worker CPU microseconds a message (the
client shares the machine, so CPU per message is the steadier figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def message(size: int, seed: int = 1) -> str:
    """JSON text of about `size` bytes that compresses as chat/API payloads do."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    items: list[dict[str, object]] = []
    while len(json.dumps(items)) < size:
        items.append({"id": rng.randrange(10**9),
                      "user": rng.choice(words) + str(rng.randrange(999)),
                      "text": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 12))),
                      "score": round(rng.random(), 4)})
    return json.dumps(items)[:size]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One gunicorn arbiter with one gaw.UvloopWorker and the given deflate settings."""

    def __init__(self, bits: int, level: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gaw-deflate-"))
        conf = self.dir / "gunicorn.conf.py"
        conf.write_text(
            "from gunicorn_async_workers import UvloopWorker\n"
            f"bind = ['127.0.0.1:{self.port}']\nworkers = 1\nworker_connections = 100000\n"
            "control_socket_disable = True\n"
            f"worker_class = UvloopWorker.configure(ws_deflate_server_max_window_bits={bits}, "
            f"ws_deflate_client_max_window_bits={bits}, ws_deflate_memory_level={level}, "
            "ws_ping_interval=0)\n")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(conf),
             "benchmarks.apps.asgi_apps:app"], cwd=self.dir, env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "wb"),  # noqa: SIM115
            start_new_session=True, preexec_fn=_raise_fd_limit)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((self.dir / "log").read_text()) from None
                time.sleep(0.1)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + 10
        while not children.read_text().split():
            if time.monotonic() > deadline:
                raise RuntimeError("no worker")
            time.sleep(0.05)
        self.worker = int(children.read_text().split()[0])

    def rss(self) -> int:
        with open(f"/proc/{self.worker}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu(self) -> float:
        with open(f"/proc/{self.worker}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


async def idle_per_connection(server: Server, count: int) -> tuple[float, str]:
    """Worker RSS bytes per idle compressed connection, and the extension header it got."""
    url = f"ws://127.0.0.1:{server.port}/ws"
    text = message(1024)
    warm = [await connect(url, ping_interval=None) for _ in range(20)]
    for ws in warm:
        await ws.send(text)
        await ws.recv()
    before = server.rss()
    clients = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(*(connect(url, ping_interval=None, open_timeout=60)
                                       for _ in range(start, min(count, start + 100))))
        for ws in batch:
            await ws.send(text)
        for ws in batch:
            await ws.recv()
        clients += batch
    await asyncio.sleep(1.0)  # let the worker finish what it was doing before reading RSS
    grown = server.rss() - before
    extension = clients[0].response.headers.get("Sec-WebSocket-Extensions", "")
    for ws in clients + warm:
        ws.transport.abort()
    return grown / count, extension


async def echo_rate(server: Server, size: int, connections: int, seconds: float
                    ) -> tuple[float, float]:
    """Messages a second and worker CPU microseconds a message, echoing `size`-byte JSON."""
    url = f"ws://127.0.0.1:{server.port}/ws"
    # Different messages in turn: one repeated would match itself in a window it fits in.
    texts = [message(size, seed) for seed in range(8)]
    clients = [await connect(url, ping_interval=None, max_size=None) for _ in range(connections)]
    counts = [0] * connections
    stop = False

    async def run(i: int) -> None:
        ws = clients[i]
        while not stop:
            text = texts[counts[i] % len(texts)]
            await ws.send(text)
            assert await ws.recv() == text
            counts[i] += 1

    tasks = [asyncio.create_task(run(i)) for i in range(connections)]
    await asyncio.sleep(min(1.0, seconds / 4))  # warm-up
    start_n, start_cpu, start_t = sum(counts), server.cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    done, cpu, elapsed = sum(counts) - start_n, server.cpu() - start_cpu, \
        time.monotonic() - start_t
    stop = True
    await asyncio.gather(*tasks)
    for ws in clients:
        await ws.close()
    return done / elapsed, cpu / max(done, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="+", help="BITS/MEMLEVEL pairs, e.g. 15/8 12/5")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--sizes", default="64,16384,262144", help="echo message sizes")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    _raise_fd_limit()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"| setting | extension answered | worker KiB per idle connection ({args.idle}) | "
          + " | ".join(f"{s} B echo: msg/s, worker µs/msg" for s in sizes) + " |")
    print("|" + " --- |" * (3 + len(sizes)))
    for setting in args.settings:
        bits, level = (int(x) for x in setting.split("/"))
        server = Server(bits, level)
        try:
            per_conn, extension = asyncio.run(idle_per_connection(server, args.idle))
            rates = [asyncio.run(echo_rate(server, size, args.connections, args.seconds))
                     for size in sizes]
        finally:
            server.stop()
        print(f"| {bits}/{level} | `{extension}` | {per_conn / 1024:.1f} | "
              + " | ".join(f"{r:,.0f}, {us:,.0f}" for r, us in rates) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
