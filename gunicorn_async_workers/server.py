"""Listening sockets to connections: accept with a concurrency cap, tick, and shut down.

The server accepts on every socket the arbiter bound, holds at most `worker_connections`
connections (at the cap, a new client takes the place of the connection that has made the
least progress, if one may be closed; otherwise it waits in the backlog), keeps the Date
header fresh and closes connections that waited their configured time at every tick (once
a second at most), and ends either gracefully (finish what is in flight, close idle
connections after a short grace, all by `graceful_timeout`) or quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from .accesslog import RequestRecorder
from .asgi.bridge import AsgiBridge
from .config import ServerConfig
from .http.parsers import HeadPolicy, HttptoolsParser, ParserAdapter
from .http.protocol import HttpProtocol, TlsHttpProtocol
from .http.response import DateHeader
from .http.seams import RequestBridge, ServedConnection
from .prometheus.endpoint import MetricsRoute
from .tls import TlsInfo

if TYPE_CHECKING:
    import ssl

    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from gunicorn.glogging import Logger
    from gunicorn.workers.base import Worker

    from .asgi.types import ASGIApp
    from .prometheus.worker_metrics import WorkerMetrics

# Connections accepted per readiness callback before the loop attends to other work.
ACCEPT_BATCH = 64
# Seconds between tries when accept() fails for want of descriptors or memory.
ACCEPT_RETRY = 0.5
# How often a draining server looks for connections that have become idle.
DRAIN_POLL = 0.05
# At the cap, seconds a connection must have gone without a complete request head (or a
# TLS handshake) before it may be closed to admit a new client: longer than an honest
# client's bytes take to follow its connect, even on a loaded loop.
EVICT_GRACE = 0.5
# At the cap with a client waiting and no connection that may be closed: seconds between
# looks for one (the clients in the backlog wait meanwhile).
EVICT_RETRY = 0.1
# Connections closed to admit new ones, per second, as a share of `worker_connections`
# (a bucket of one second's worth). Each closed attacker reconnects and asks for a slot
# in turn; unchecked, that chase would cycle through every stalled connection in a blink
# until none had waited EVICT_GRACE, and new clients would wait up to EVICT_GRACE. At a
# quarter of the slots a second, a cycle takes 4 s, stalled connections older than the
# grace are always there to close, and a client waits behind at most the one or two
# reconnecting attackers ahead of it in the backlog.
EVICT_RATE_SHARE = 0.25


class Server:
    """Everything one worker process serves, shared by all its connections: the
    `ConnectionHost` (`http/seams.py`) each connection is given. What is particular to the
    app's interface lives in its `bridge` (ASGI by default, WSGI after `serve_wsgi`)."""

    def __init__(self, config: ServerConfig, app: ASGIApp | WSGIApplication,
                 loop: asyncio.AbstractEventLoop, log: Logger, worker: Worker, *,
                 parser_class: type[ParserAdapter] = HttptoolsParser,
                 ssl_context: ssl.SSLContext | None = None,
                 on_max_requests: Callable[[], None] | None = None,
                 state: dict[str, object] | None = None,
                 metrics: WorkerMetrics | None = None) -> None:
        self.config = config
        self.loop = loop
        self.log = log
        self.worker = worker
        self.parser_class = parser_class
        self.ssl_context = ssl_context
        # TLS: what every connection's ASGI `tls` extension shares, and how long a client
        # may take over its handshake (as over a request head).
        self.tls = (TlsInfo(ssl_context, getattr(getattr(worker, "cfg", None), "certfile", None))
                    if ssl_context is not None else None)
        self.ssl_handshake_timeout = (config.tls_handshake_timeout if ssl_context is not None
                                      else None)
        self.on_max_requests = on_max_requests
        self.policy = HeadPolicy(
            limit_line=config.limit_request_line,
            limit_fields=config.limit_request_fields,
            limit_field_size=config.limit_request_field_size,
            scheme_headers=config.scheme_headers,
            forwarder_headers=config.forwarder_headers,
            header_map=config.header_map,
            lenient_headers=config.lenient_headers,
            permit_unconventional_method=config.permit_unconventional_method,
            casefold_method=config.casefold_method,
            max_body_size=config.max_body_size,
            require_host=config.require_host,
        )
        self.date = DateHeader(config.server_header)
        self.connections: set[ServedConnection] = set()
        # Accepted sockets whose connection is not made yet (a TLS handshake may be under
        # way): the loop's time they were accepted, and the task making them.
        self.pending: dict[socket.socket, tuple[float, asyncio.Task[None]]] = {}
        # Connections that may be closed to admit a new client, the first to go last; a
        # snapshot, each checked again when its turn comes, dropped at every tick.
        self.victims: list[tuple[tuple[int, float], socket.socket | ServedConnection]] = []
        self.retry_handle: asyncio.TimerHandle | None = None
        self.waiting_probes: dict[int, select.poll] = {}
        self.evict_rate = max(1.0, config.worker_connections * EVICT_RATE_SHARE)
        self.evict_tokens = self.evict_rate
        self.evict_refilled = loop.time()
        self.listeners: list[socket.socket] = []
        self.accepting = False
        self.draining = False
        # `max_requests`: requests left before the worker restarts, counted only when set
        # (Gunicorn's worker gives sys.maxsize when it is not).
        self.counts_requests = 0 < config.max_requests < sys.maxsize
        # Cleartext HTTP/2 by prior knowledge (`http_protocols`, `http2_cleartext`); over
        # TLS, ALPN decides.
        cleartext = "h2" in config.http_protocols and ssl_context is None
        self.h2_prior_knowledge = cleartext and config.http2_cleartext in ("prior-knowledge",
                                                                           "both")
        self.h2c_upgrade = cleartext and config.http2_cleartext in ("upgrade", "both")
        self.requests_left = config.max_requests
        # Prometheus metrics (None when off): counted by the recorder, the gauges read
        # off the connections at every tick.
        self.metrics = metrics
        recorder = RequestRecorder(config, log, worker,
                                   metrics.tally if metrics is not None else None)
        self.recorder = recorder if recorder.enabled else None
        self.app = app
        # The app as ASGI until `serve_wsgi` says it is WSGI (the worker knows which).
        self.bridge: RequestBridge = self._routed(AsgiBridge(
            cast("ASGIApp", app), config, log, self.recorder,
            state if state is not None else {}))

    def serve_wsgi(self, environ_base: WSGIEnvironment, script_name: str) -> None:
        """Serve a WSGI app instead: each request on a pool of `threads` threads."""
        from .wsgi.bridge import WsgiBridge

        self.bridge = self._routed(WsgiBridge(
            cast("WSGIApplication", self.app), self.config, self.log, self.recorder,
            self.loop, environ_base, script_name))

    def _routed(self, bridge: RequestBridge) -> RequestBridge:
        """The app's bridge, behind the route that answers `metrics_path` when metrics are
        on."""
        if self.metrics is None:
            return bridge
        return MetricsRoute(bridge, self.metrics, self.update_metrics, self.log)

    def update_metrics(self) -> None:
        """Bring this worker's metrics files up to date (at every tick, before a scrape)."""
        if self.metrics is not None:
            self.metrics.update(self.connections)

    # -- the connections' host (http/seams.py ConnectionHost) ----------------------------
    def connection_made(self, connection: ServedConnection) -> None:
        self.connections.add(connection)

    def tls_extensions(self, transport: asyncio.BaseTransport
                       ) -> dict[str, Mapping[str, object]] | None:
        """The scope's `extensions` for a TLS connection (read once, after its handshake)."""
        if self.tls is None:
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        return None if ssl_object is None else {"tls": self.tls.extension(ssl_object)}

    def request_received(self) -> None:
        """One more request toward `max_requests` (called only when it is set)."""
        self.requests_left -= 1
        if not self.requests_left and self.on_max_requests is not None:
            self.on_max_requests()

    # -- accepting -----------------------------------------------------------------------
    def listen(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            sock.setblocking(False)
            self.listeners.append(sock)
        self.resume_accepting()

    def resume_accepting(self) -> None:
        if self.accepting or self.draining:
            return
        self.accepting = True
        for sock in self.listeners:
            self.loop.add_reader(sock.fileno(), self._accept, sock)

    def pause_accepting(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        for sock in self.listeners:
            self.loop.remove_reader(sock.fileno())

    def _at_capacity(self) -> bool:
        return len(self.connections) + len(self.pending) >= self.config.worker_connections

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._at_capacity() and not (self._client_waiting(listener)
                                            and self._make_room()):
                if self._client_waiting(listener):
                    self._wait_for_room()
                return
            try:
                conn, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: wait for descriptors to free up
                self._accept_failed(exc)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending[conn] = (self.loop.time(), self.loop.create_task(self._connect(conn)))

    def _client_waiting(self, listener: socket.socket) -> bool:
        """Whether a client waits in this listener's backlog (one poll, no accept)."""
        fd = listener.fileno()
        probe = self.waiting_probes.get(fd)
        if probe is None:
            probe = self.waiting_probes[fd] = select.poll()
            probe.register(fd, select.POLLIN)
        return bool(probe.poll(0))

    def _wait_for_room(self) -> None:
        """Full, a client waiting, nobody to close (or the eviction budget spent): stop
        watching the listeners (no busy loop) until a connection closes or it is time to
        look again."""
        self.pause_accepting()
        if self.retry_handle is None:
            delay = EVICT_RETRY if self.evict_tokens >= 1 else min(
                EVICT_RETRY, (1 - self.evict_tokens) / self.evict_rate)
            self.retry_handle = self.loop.call_later(delay, self._retry_accepting)

    def _may_evict(self, now: float) -> bool:
        """Whether the eviction budget (EVICT_RATE_SHARE) allows one more now."""
        tokens = min(self.evict_rate,
                     self.evict_tokens + (now - self.evict_refilled) * self.evict_rate)
        self.evict_refilled = now
        self.evict_tokens = tokens
        return tokens >= 1

    def _make_room(self) -> bool:
        """Close the connection that has made the least progress (see `eviction_rank`):
        a pending TLS handshake, then the longest wait for a request head, then the longest
        idle keep-alive, then the oldest body below `body_min_rate`. False if none may go."""
        now = self.loop.time()
        if not self._may_evict(now):
            return False
        self.evict_tokens -= 1  # given back below if nobody may go
        for fresh in (False, True):
            if fresh:
                self._find_victims(now)
            victims = self.victims
            while victims:
                _rank, victim = victims.pop()
                if isinstance(victim, socket.socket):
                    pending = self.pending.pop(victim, None)
                    if pending is not None:
                        self.log.debug("closing a TLS handshake to admit a new connection "
                                       "(worker_connections reached)")
                        pending[1].cancel()
                        return True
                elif (victim in self.connections
                      and victim.eviction_rank(now, EVICT_GRACE) is not None):
                    victim.evict()
                    self.connections.discard(victim)
                    return True
        self.evict_tokens += 1
        return False

    def _find_victims(self, now: float) -> None:
        found: list[tuple[tuple[int, float], socket.socket | ServedConnection]] = []
        if self.tls is not None:
            found.extend(((0, accepted), sock) for sock, (accepted, _task)
                         in self.pending.items() if now - accepted >= EVICT_GRACE)
        for conn in self.connections:
            rank = conn.eviction_rank(now, EVICT_GRACE)
            if rank is not None:
                found.append((rank, conn))
        found.sort(key=lambda item: item[0], reverse=True)
        self.victims = found

    def _accept_failed(self, exc: OSError) -> None:
        """Out of descriptors or memory: the listener stays readable, so stop watching it
        (no busy loop) until a connection closes or ACCEPT_RETRY seconds have passed."""
        self.log.warning("accept() failed, pausing accepts for %.1f s: %s", ACCEPT_RETRY, exc)
        self.pause_accepting()
        self.loop.call_later(ACCEPT_RETRY, self._retry_accepting)

    def _retry_accepting(self) -> None:
        self.retry_handle = None
        if not self.draining:
            self.resume_accepting()

    async def _connect(self, conn: socket.socket) -> None:
        try:
            protocol = HttpProtocol(self) if self.tls is None else TlsHttpProtocol(self)
            await self.loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self.ssl_context,
                ssl_handshake_timeout=self.ssl_handshake_timeout)
        except OSError as exc:
            self.log.debug("connection failed before it started: %s", exc)
            conn.close()
        except asyncio.CancelledError:  # closed to admit a new connection
            conn.close()
        except Exception as exc:  # a TLS handshake that fails is the client's problem
            self.log.debug("connection setup failed: %r", exc)
            conn.close()
        finally:
            self.pending.pop(conn, None)
            if not self.accepting and not self.draining and not self._at_capacity():
                self.resume_accepting()

    def connection_closed(self, connection: ServedConnection) -> None:
        self.connections.discard(connection)
        if self.metrics is not None:
            self.metrics.connection_closed(connection)
        if not self.accepting and not self.draining and not self._at_capacity():
            self.resume_accepting()

    # -- once a second -------------------------------------------------------------------
    def tick(self) -> None:
        """Refresh the Date header; close the connections whose time is up (each deadline
        is `now >= start + limit`, so a tick may add to a limit, never take from it)."""
        now = self.loop.time()
        self.date.refresh()
        self.bridge.tick()
        self.update_metrics()
        self.victims = []
        for conn in list(self.connections):
            conn.check_timeouts(now)

    # -- shutdown ------------------------------------------------------------------------
    async def shutdown_gracefully(self, timeout: float) -> None:
        """Stop accepting, finish requests in flight, close idle connections after a grace."""
        self.stop_listening()
        loop = self.loop
        deadline = loop.time() + timeout
        grace = self.config.shutdown_idle_grace
        for conn in list(self.connections):
            conn.begin_drain(going_away=True)  # WebSockets: 1001, the app finishes after
        while self.connections and loop.time() < deadline:
            now = loop.time()
            for conn in list(self.connections):
                if conn.is_idle() and conn.idle_time(now) >= grace:
                    conn.close()
            await asyncio.sleep(DRAIN_POLL)
        if self.connections:
            self.log.warning("graceful_timeout reached: closing %d connection(s) with "
                             "requests in flight", len(self.connections))
        self.close_all()

    def stop_listening(self) -> None:
        self.pause_accepting()
        if not self.draining:
            self.draining = True
            for conn in self.connections:  # responses from now on close their connection
                conn.begin_drain(going_away=False)
        for sock in self.listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self.listeners = []

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        self.bridge.close()
