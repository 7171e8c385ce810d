"""Profile and time our per-request path in-process: protocol, parser, ASGI cycle, framing.

A real `Server` and `HttpProtocol` on a real event loop, fed keep-alive plaintext requests
through an in-memory transport, so the figure is the Python cost of our code alone, without
the kernel or a load generator. `python -m benchmarks.hot_path [--profile] [-n N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from typing import Any

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
_START = {"type": "http.response.start", "status": 200,
          "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
_BODY = {"type": "http.response.body", "body": b"Hello, world!"}


async def plaintext(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(_START)
    await send(_BODY)


class MemoryTransport(asyncio.Transport):
    """Records what the protocol writes; counts responses."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += 1

    def writelines(self, pieces: Any) -> None:
        self.written += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0  # every write "leaves" at once

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def build(loop: asyncio.AbstractEventLoop) -> tuple[Any, MemoryTransport]:
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from gunicorn_async_workers.config import ServerConfig
    from gunicorn_async_workers.http.protocol import HttpProtocol
    from gunicorn_async_workers.server import Server

    cfg = Config()
    config = ServerConfig.from_gunicorn(cfg, Logger(cfg), {}, sys.maxsize)
    server = Server(config, plaintext, loop, Logger(cfg), None)
    protocol = HttpProtocol(server)
    transport = MemoryTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def drive(n: int) -> float:
    loop = asyncio.get_running_loop()
    protocol, transport = build(loop)
    start = time.perf_counter()
    for _ in range(n):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # let the request's task run, as the loop would
    elapsed = time.perf_counter() - start
    assert transport.written == n, (transport.written, n)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--asyncio", action="store_true", help="stdlib loop, not uvloop")
    args = parser.parse_args(argv)
    if args.asyncio:
        loop = asyncio.new_event_loop()
    else:
        import uvloop

        loop = uvloop.new_event_loop()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        loop.run_until_complete(drive(args.n))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        elapsed = loop.run_until_complete(drive(args.n))
        print(f"{args.n} requests: {elapsed * 1e6 / args.n:.2f} µs each (our code, in-process)")
    loop.close()


if __name__ == "__main__":
    main()
