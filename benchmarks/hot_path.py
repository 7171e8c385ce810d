"""Profile and time our per-request path in-process: protocol, parser, ASGI cycle, framing.

A real `Server` and `HttpProtocol` on a real event loop, fed keep-alive plaintext requests
through an in-memory transport, so the figure is the Python cost of our code alone, without
the kernel or a load generator. `python -m benchmarks.hot_path [--profile] [-n N] [--wsgi]
[--echo] [--long-way]` (`--long-way`: without the compiled module, as where no C compiler
was at hand).
With `--wsgi` the WSGI bridge serves a plaintext WSGI app on its thread pool, fed a burst
of `--batch` requests per pass of the loop (as a loaded worker sees them); `--profile` then
profiles the loop's thread only.
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


def wsgi_plaintext(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


# `--echo`: a 16 KiB POST, read from wsgi.input and sent back (the wsgi-echo-16k workload).
ECHO_BODY = b"x" * 16384
ECHO_REQUEST = (b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 16384\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" + ECHO_BODY)


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


async def plaintext(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(_START)
    await send(_BODY)


class MemoryTransport(asyncio.Transport):
    """Records what the protocol writes; counts responses."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closed = False
        # (count, future): resolved once `written` reaches count (`until`).
        self.awaited: tuple[int, asyncio.Future[None]] | None = None

    def write(self, data: bytes) -> None:
        self.written += 1
        self._check()

    def writelines(self, pieces: Any) -> None:
        self.written += 1
        self._check()

    def _check(self) -> None:
        awaited = self.awaited
        if awaited is not None and self.written >= awaited[0]:
            self.awaited = None
            awaited[1].set_result(None)

    async def until(self, count: int) -> None:
        """Wait, without spinning, until `count` responses have been written: the loop
        blocks in its poll as a served worker's does, so that a pool thread (which never
        preempts the loop's thread: wsgi/pool.py `batch_scheduling`) gets the CPU."""
        if self.written < count:
            future = asyncio.get_running_loop().create_future()
            self.awaited = (count, future)
            await future

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


def build(loop: asyncio.AbstractEventLoop, wsgi: bool = False, connections: int = 1,
          wsgi_app: Any = wsgi_plaintext) -> list[tuple[Any, MemoryTransport]]:
    """One server; `connections` protocols on it, each with its in-memory transport."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from gunicorn_async_workers.config import ServerConfig
    from gunicorn_async_workers.http.protocol import HttpProtocol
    from gunicorn_async_workers.server import Server

    cfg = Config()
    config = ServerConfig.from_gunicorn(cfg, Logger(cfg), {}, sys.maxsize)
    server = Server(config, wsgi_app if wsgi else plaintext, loop, Logger(cfg), None)
    if wsgi:
        from gunicorn_async_workers.wsgi.bridge import base_environ

        server.serve_wsgi(base_environ(cfg, config.threads), "")
    pairs = []
    for _ in range(connections):
        protocol = HttpProtocol(server)
        transport = MemoryTransport()
        protocol.connection_made(transport)
        pairs.append((protocol, transport))
    return pairs


async def drive(n: int) -> float:
    loop = asyncio.get_running_loop()
    [(protocol, transport)] = build(loop)
    start = time.perf_counter()
    for _ in range(n):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # let the request's task run, as the loop would
    elapsed = time.perf_counter() - start
    assert transport.written == n, (transport.written, n)
    return elapsed


async def drive_wsgi(n: int, batch: int, echo: bool = False) -> float:
    """`batch` connections each send a request; the loop runs until all are answered."""
    loop = asyncio.get_running_loop()
    pairs = build(loop, wsgi=True, connections=batch,
                  wsgi_app=wsgi_echo if echo else wsgi_plaintext)
    request = ECHO_REQUEST if echo else REQUEST
    start = time.perf_counter()
    for _ in range(n // batch):
        for protocol, _transport in pairs:
            protocol.data_received(request)
        last = pairs[-1][1]
        await last.until(last.written + 1)
    elapsed = time.perf_counter() - start
    done = sum(transport.written for _, transport in pairs)
    assert done == n // batch * batch, (done, n)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--asyncio", action="store_true", help="stdlib loop, not uvloop")
    parser.add_argument("--wsgi", action="store_true", help="the WSGI bridge and its pool")
    parser.add_argument("--batch", type=int, default=16, help="requests per pass (--wsgi)")
    parser.add_argument("--echo", action="store_true",
                        help="with --wsgi: a 16 KiB POST echoed (wsgi-echo-16k), not plaintext")
    parser.add_argument("--long-way", action="store_true",
                        help="heads read and framed in Python, not by the compiled module")
    args = parser.parse_args(argv)
    if args.long_way:
        from gunicorn_async_workers.http import response
        from gunicorn_async_workers.http.parsers import HttptoolsParser

        HttptoolsParser.use_compiled_head = False
        response.compiled_frame = None
    run = drive_wsgi(args.n, args.batch, args.echo) if args.wsgi else drive(args.n)
    if args.asyncio:
        loop = asyncio.new_event_loop()
    else:
        import uvloop

        loop = uvloop.new_event_loop()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        loop.run_until_complete(run)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        elapsed = loop.run_until_complete(run)
        print(f"{args.n} requests: {elapsed * 1e6 / args.n:.2f} µs each (our code, in-process)")
    loop.close()


if __name__ == "__main__":
    main()
