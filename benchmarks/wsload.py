"""A WebSocket echo load generator: N connections, W messages in flight on each.

wrk cannot speak WebSocket, so this is the client of the ws-echo-* workloads. It is meant to
cost the client as little as possible per message, so that the server is the bottleneck:

- an asyncio (uvloop when installed) `Protocol` per connection, no streams;
- a plain handshake without `Sec-WebSocket-Extensions`, so every server answers with
  uncompressed frames;
- one masked client frame of the payload is encoded once and written again and again (the
  same mask each time, which the server cannot tell from a fresh one);
- echoed frames are counted by parsing only the server frame headers (2, 4 or 10 bytes;
  servers never mask): payload bytes are skipped, never copied or compared (the preflight
  probe checks the echoed content once, see `probe.ws_problem`);
- every completed echo immediately sends the next message, so each connection keeps exactly
  `window` messages in flight;
- a sample of round trips is timed: every `sample_every`-th message of each connection is
  timestamped when written and again when its echo completes (echoes come back in order).

Run it pinned to the client core:

    taskset -c 1 python -m benchmarks.wsload --port 8000 --size 16384 --duration 10

It connects, warms up for `--warmup` seconds, prints `# measure-start`, measures for
`--duration` seconds, prints `# measure-end`, closes the connections and prints one JSON line:
messages, messages_per_s, p50_ms…p99_ms, samples, errors and its own CPU share. The suite reads
the server's CPU time when the two marker lines appear, so CPU per message covers exactly the
measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
MEASURE_START = "# measure-start"
MEASURE_END = "# measure-end"
HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
ERROR_KINDS = ("closed", "protocol", "echo")
REPO_ROOT = Path(__file__).resolve().parent.parent


# --- wire helpers (shared with the preflight probe) -------------------------------------------


def new_key() -> str:
    """A random Sec-WebSocket-Key."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must answer for `key` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def handshake_request(host: str, port: int, path: str, key: str) -> bytes:
    """An opening handshake that offers no extension (so no permessage-deflate)."""
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode("ascii")


def handshake_problem(head: bytes, key: str) -> str | None:
    """None when `head` (the response head, without the blank line) accepts the upgrade."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        return f"handshake answered {lines[0]!r}"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept") != accept_for(key):
        return f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}"
    if headers.get("sec-websocket-extensions"):
        return f"unasked-for extensions {headers['sec-websocket-extensions']!r}"
    return None


def client_frame(payload: bytes, opcode: int = OP_BINARY, mask: bytes | None = None) -> bytes:
    """One final (FIN) client frame, masked as RFC 6455 requires of clients."""
    mask = os.urandom(4) if mask is None else mask
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        size, "big"
    )
    return head + mask + masked


def close_payload(code: int = 1000) -> bytes:
    """The payload of a close frame with a status code and no reason."""
    return code.to_bytes(2, "big")


# --- the load generator --------------------------------------------------------------------


@dataclass
class Shared:
    """State every connection reads or writes: the frame to send, the phase and the samples."""

    frame: bytes
    size: int
    window: int
    sample_every: int
    sending: bool = False
    recording: bool = False
    closing: bool = False
    rtts: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    first_error: str = ""

    def error(self, kind: str, text: str) -> None:
        """Count an error (and remember the first one's text)."""
        self.errors[kind] += 1
        if not self.first_error:
            self.first_error = text


class EchoConnection(asyncio.Protocol):
    """One WebSocket connection: handshake, then keep `window` echoes in flight."""

    def __init__(self, shared: Shared, request: bytes, key: str) -> None:
        self.shared = shared
        self.request = request
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.handshaking = True
        self.head = b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.alive = False
        self.close_sent = False
        # frame parsing state
        self.pending = b""  # an incomplete frame header (or control frame) from the last chunk
        self.skip = 0  # payload bytes of the current frame still to come
        self.skip_ends_message = False  # the frame being skipped completes a message
        self.partial = 0  # payload bytes of the fragmented message so far
        self.partial_opcode = -1
        # counters
        self.sent = 0
        self.received = 0
        self.sent_at: collections.deque[float] = collections.deque()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they are one
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.alive and not self.shared.closing:
            self.shared.error("closed", f"connection lost during the run: {exc or 'EOF'}")
        self.alive = False
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.handshaking:
            self._handshake_data(data)
            return
        n = len(data)
        skip = self.skip
        done = 0
        if skip:
            if skip > n:
                self.skip = skip - n
                return
            self.skip = 0
            if self.skip_ends_message:
                done = 1
            pos = skip
        else:
            if self.pending:
                data = self.pending + data
                n = len(data)
                self.pending = b""
            pos = 0
        shared = self.shared
        while pos < n:
            if n - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            header = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                header = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                header = 10
            if b1 & 0x80:
                shared.error("protocol", "the server sent a masked frame")
                self._fail()
                return
            opcode = b0 & 0x0F
            if opcode & 0x8:  # control frame: needs its (≤125-byte) payload
                end = pos + header + length
                if end > n:
                    break
                self._control(opcode, data[pos + header : end])
                pos = end
                continue
            if self.partial_opcode < 0:
                if opcode != OP_BINARY:
                    shared.error("echo", f"echo of opcode {opcode}, expected a binary message")
                self.partial_opcode = opcode
            elif opcode != OP_CONTINUATION:
                shared.error("protocol", f"opcode {opcode} inside a fragmented message")
            total = self.partial + length
            pos += header + length
            ends = bool(b0 & 0x80)
            if ends:
                if total != shared.size:
                    shared.error("echo", f"echo of {total} bytes, sent {shared.size}")
                self.partial = 0
                self.partial_opcode = -1
            else:
                self.partial = total
            if pos > n:  # the payload goes on in the next chunk(s)
                self.skip = pos - n
                self.skip_ends_message = ends
                break
            if ends:
                done += 1
        if pos < n:
            self.pending = data[pos:]
        if done:
            self._echoed(done)

    # internals

    def _handshake_data(self, data: bytes) -> None:
        self.head += data
        head, sep, rest = self.head.partition(b"\r\n\r\n")
        if not sep:
            if len(self.head) > 65536:
                self._handshake_failed("response head over 64 KiB")
            return
        problem = handshake_problem(head, self.key)
        if problem is not None:
            self._handshake_failed(problem)
            return
        self.handshaking = False
        self.head = b""
        self.alive = True
        self.opened.set_result(None)
        if rest:
            self.data_received(rest)

    def _handshake_failed(self, problem: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(problem))
        if self.transport is not None:
            self.transport.abort()

    def _control(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == OP_PING:
            self.transport.write(client_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            if not self.shared.closing:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.shared.error("closed", f"the server closed with code {code}")
            self.alive = False
            if not self.close_sent:
                self.close_sent = True
                self.transport.write(client_frame(payload[:2], OP_CLOSE))
            self.transport.close()
        elif opcode != OP_PONG:
            self.shared.error("protocol", f"reserved control opcode {opcode}")
            self._fail()

    def _fail(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.abort()

    def start(self) -> None:
        """Put the first `window` messages in flight."""
        self._send(self.shared.window, time.perf_counter())

    def _send(self, count: int, now: float) -> None:
        every = self.shared.sample_every
        first = self.sent
        self.sent = first + count
        # timestamps for the sampled sequence numbers in [first, first + count)
        for _ in range(-(-self.sent // every) - -(-first // every)):
            self.sent_at.append(now)
        assert self.transport is not None
        self.transport.writelines([self.shared.frame] * count)

    def _echoed(self, count: int) -> None:
        now = time.perf_counter()
        shared = self.shared
        every = shared.sample_every
        first = self.received
        self.received = first + count
        sampled = -(-self.received // every) - -(-first // every)
        if sampled:
            sent_at = self.sent_at
            if shared.recording:
                rtts = shared.rtts
                for _ in range(sampled):
                    rtts.append(now - sent_at.popleft())
            else:
                for _ in range(sampled):
                    sent_at.popleft()
        if shared.sending and self.alive:
            self._send(count, now)

    def close(self) -> None:
        """Start the closing handshake (the server's close frame ends the connection)."""
        if self.transport is not None and not self.transport.is_closing() and not self.close_sent:
            self.close_sent = True
            self.transport.write(client_frame(close_payload(), OP_CLOSE))


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(
    host: str,
    port: int,
    path: str,
    connections: int,
    size: int,
    window: int,
    duration_s: float,
    warmup_s: float,
    sample_every: int,
    emit: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Open the connections, warm up, measure, close; return the figures of the window."""
    loop = asyncio.get_running_loop()
    shared = Shared(
        frame=client_frame(b"a" * size, OP_BINARY),
        size=size,
        window=window,
        sample_every=sample_every,
    )
    conns: list[EchoConnection] = []
    try:
        for _ in range(connections):
            key = new_key()
            conn = EchoConnection(shared, handshake_request(host, port, path, key), key)
            conns.append(conn)
            await loop.create_connection(lambda c=conn: c, host, port)  # type: ignore[misc]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(c.opened for c in conns), return_exceptions=True),
            timeout=HANDSHAKE_TIMEOUT_S,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise ConnectionError(f"{len(failed)} handshakes failed, the first: {failed[0]}")
    except (OSError, asyncio.TimeoutError) as error:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.abort()
        return {"error": f"after {len(conns)} connections: {type(error).__name__}: {error}"}
    shared.sending = True
    for conn in conns:
        conn.start()
    await asyncio.sleep(warmup_s)
    shared.recording = True
    start = time.perf_counter()
    start_count = sum(c.received for c in conns)
    cpu_start = _cpu_s()
    emit(MEASURE_START)
    await asyncio.sleep(duration_s)
    end = time.perf_counter()
    end_count = sum(c.received for c in conns)
    cpu_end = _cpu_s()
    shared.recording = False
    emit(MEASURE_END)
    # stop refilling, let the server close each connection after its echoes, then give up
    shared.sending = False
    shared.closing = True
    for conn in conns:
        conn.close()
    _, waiting = await asyncio.wait([c.closed for c in conns], timeout=CLOSE_TIMEOUT_S)
    for conn in conns:
        if conn.transport is not None and not conn.closed.done():
            conn.transport.abort()
    messages = end_count - start_count
    elapsed = end - start
    ordered = sorted(shared.rtts)
    result: dict[str, Any] = {
        "messages": messages,
        "duration_s": round(elapsed, 4),
        "messages_per_s": messages / elapsed,
        "samples": len(ordered),
        "errors": {k: v for k, v in shared.errors.items() if v},
        "first_error": shared.first_error,
        "connections": connections,
        "open_at_end": sum(1 for c in conns if c.alive),
        "not_closed_cleanly": len(waiting),
        "size": size,
        "window": window,
        "sample_every": sample_every,
        "client_cpu_pct": round(100 * (cpu_end - cpu_start) / elapsed, 1),
        "loop": type(loop).__module__.split(".")[0],
    }
    for pct in (50, 75, 90, 99):
        result[f"p{pct}_ms"] = _percentile(ordered, pct) * 1000 if ordered else None
    return result


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    """Command line: run once and print the marker lines and the JSON result."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.wsload", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--size", type=int, default=64, help="payload bytes per message")
    p.add_argument("--window", type=int, default=8, help="messages in flight per connection")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds")
    p.add_argument("--sample-every", type=int, default=16, help="time every Nth message")
    args = p.parse_args(argv)

    def emit(line: str) -> None:
        print(line, flush=True)

    loop = _new_loop()
    try:
        result = loop.run_until_complete(
            drive(
                args.host,
                args.port,
                args.path,
                args.connections,
                args.size,
                args.window,
                args.duration,
                args.warmup,
                args.sample_every,
                emit,
            )
        )
    finally:
        loop.close()
    print(json.dumps(result), flush=True)
    return 1 if "error" in result else 0


# --- running it from the suite ---------------------------------------------------------------


class WsLoadError(RuntimeError):
    """The load generator failed, or printed something the suite does not understand."""


@dataclass(frozen=True)
class WsResult:
    """The figures of one run, under the same names as wrk's (a request is an echoed message)."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    non_2xx: int
    messages: int
    samples: int
    client_cpu_pct: float
    output: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without the raw output."""
        data = asdict(self)
        data.pop("output")
        return data


def parse(output: str) -> WsResult:
    """The JSON line at the end of the output."""
    lines = [line for line in output.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise WsLoadError(f"no result from wsload: {output.strip()[-400:]!r}")
    data = json.loads(lines[-1])
    if "error" in data:
        raise WsLoadError(f"wsload: {data['error']}")
    if not data["messages"] or data["p99_ms"] is None:
        raise WsLoadError(f"no message echoed in the window: {data.get('first_error', '')}")
    return WsResult(
        requests=data["messages"],
        duration_s=data["duration_s"],
        rps=data["messages_per_s"],
        p50_ms=data["p50_ms"],
        p75_ms=data["p75_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        socket_errors=data["errors"],
        non_2xx=0,
        messages=data["messages"],
        samples=data["samples"],
        client_cpu_pct=data["client_cpu_pct"],
        output=output,
    )


def run(
    host: str,
    port: int,
    path: str,
    connections: int,
    size: int,
    window: int,
    duration_s: float,
    warmup_s: float,
    cpu: int | None,
    on_start: Callable[[], None],
    on_end: Callable[[], None],
    raw_path: Path | None = None,
) -> WsResult:
    """Run the load generator in its own process (pinned to `cpu`).

    on_start and on_end are called when it starts and ends the measured window.
    """
    command = [
        *(["taskset", "-c", str(cpu)] if cpu is not None else []),
        sys.executable, "-m", "benchmarks.wsload",
        "--host", host,
        "--port", str(port),
        "--path", path,
        "--connections", str(connections),
        "--size", str(size),
        "--window", str(window),
        "--duration", str(duration_s),
        "--warmup", str(warmup_s),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # a watchdog: kill our own child if it runs far past its schedule
    watchdog = threading.Timer(duration_s + warmup_s + 60, process.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            marker = line.strip()
            if marker == MEASURE_START:
                on_start()
            elif marker == MEASURE_END:
                on_end()
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    text = f"$ {' '.join(command)}\n{''.join(lines)}"
    if raw_path is not None:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(text)
    markers = {line.strip() for line in lines}
    if code != 0 and not any(line.startswith("{") for line in lines):
        raise WsLoadError(f"wsload exited with {code}: {''.join(lines).strip()[-400:]}")
    result = parse("".join(lines))
    if not {MEASURE_START, MEASURE_END} <= markers:
        raise WsLoadError("wsload printed no measurement markers")
    return result


if __name__ == "__main__":
    sys.exit(main())
