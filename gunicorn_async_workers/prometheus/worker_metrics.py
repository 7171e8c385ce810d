"""One worker's Prometheus metrics: its tally written to its files, and the scrape's answer.

A worker counts in memory (`RequestTally`, fed by the request recorder and the WebSocket
sessions) and writes its totals to three files of its own in the multiprocess directory
(`counter_gaw-<pid>.db`, `histogram_gaw-<pid>.db`, `gauge_livesum_gaw-<pid>.db`) at every
tick, once a second, and before it answers a scrape. The gauges and the request bytes are
read off the server's connections at that moment, so that no request pays for them. A
scrape, answered by whichever worker accepted it, sums every process's files: the whole
server's numbers, at most a tick old for the other workers.

At boot the worker folds the files of processes that ended without folding their own and
counts each of our workers among them as an exit of reason `killed`; as it exits, it counts
its own exit and folds its own files (`directory.fold_ended`).
"""

from __future__ import annotations

import os
from collections.abc import Collection

from prometheus_client.exposition import choose_encoder

from ..http.seams import ServedConnection
from .directory import (
    ValueFile,
    fold_ended,
    locked,
    own_file,
    process_ended,
    summing_registry,
    value_file_class,
    value_key,
)
from .endpoint import MetricsAnswer
from .tally import DURATION_BOUNDS, RequestTally

# The reason of an exit found, not told: a worker whose files outlived it (SIGKILL, the
# out-of-memory killer, a crash).
KILLED = "killed"

# (metric name, help) of each metric; a counter's sample adds `_total`.
REQUESTS = ("gaw_requests", "HTTP requests answered, by method and status (a WebSocket "
                            "handshake when its session ends; status 0: no response sent)")
DURATION = ("gaw_request_duration_seconds", "Seconds from a request's head to the end of its "
                                            "response (WebSocket sessions not included)")
REQUEST_BYTES = ("gaw_request_bytes", "Bytes read from clients' HTTP connections: request "
                                      "heads and bodies (after TLS; not WebSocket frames)")
BODY_BYTES = ("gaw_response_body_bytes", "Response body bytes sent (the access log's %(B)s)")
MESSAGES = ("gaw_websocket_messages", "WebSocket messages the apps received (in) and sent "
                                      "(out)")
EXITS = ("gaw_worker_exits", "Worker processes that ended, by reason (each is restarted "
                             "unless Gunicorn is stopping or has fewer workers)")
IN_FLIGHT = ("gaw_requests_in_flight", "HTTP requests received and not yet answered")
CONNECTIONS = ("gaw_connections_open", "Open client connections, HTTP and WebSocket")
SESSIONS = ("gaw_websocket_sessions_open", "Open WebSocket connections (from a valid "
                                           "handshake on)")
WORKERS = ("gaw_workers", "Worker processes serving")

_BUCKET_LABELS = [*(repr(bound) for bound in DURATION_BOUNDS), "+Inf"]


def _key(metric: tuple[str, str], sample: str, **labels: str) -> str:
    """A value's key in prometheus_client's files."""
    return value_key(metric[0], sample, list(labels), list(labels.values()), metric[1])


class WorkerMetrics:
    """This worker's tally, its files in the multiprocess directory, and the scrape."""

    def __init__(self, directory: str, path: str) -> None:
        self.directory = directory
        self.path = path  # the metrics_path scrapes ask for
        self.pid = pid = os.getpid()
        self.tally = RequestTally()
        # Request bytes of connections closed or counted so far, and each open connection's
        # `received` when last counted.
        self.request_bytes = 0
        self.counted: dict[ServedConnection, int] = {}
        self.in_flight = self.connections = self.sessions = 0
        # Our own files from an earlier process with this pid are an ended process's too.
        lost = fold_ended(directory, lambda owner: owner == pid or process_ended(owner))
        self.exits: dict[str, int] = {KILLED: len(lost)} if lost else {}
        files = value_file_class()
        self.counters: ValueFile = files(own_file(directory, "counter", pid))
        self.histogram: ValueFile = files(own_file(directory, "histogram", pid))
        self.gauges: ValueFile = files(own_file(directory, "gauge_livesum", pid))
        self.request_keys: dict[tuple[str, int], str] = {}
        self.bucket_keys = [_key(DURATION, DURATION[0] + "_bucket", le=le)
                            for le in _BUCKET_LABELS]
        self.keys = {name: _key(metric, sample) for name, metric, sample in (
            ("duration_sum", DURATION, DURATION[0] + "_sum"),
            ("request_bytes", REQUEST_BYTES, REQUEST_BYTES[0] + "_total"),
            ("body_bytes", BODY_BYTES, BODY_BYTES[0] + "_total"),
            ("in_flight", IN_FLIGHT, IN_FLIGHT[0]),
            ("connections", CONNECTIONS, CONNECTIONS[0]),
            ("sessions", SESSIONS, SESSIONS[0]),
            ("workers", WORKERS, WORKERS[0]))}
        self.message_keys = [_key(MESSAGES, MESSAGES[0] + "_total", direction=d)
                             for d in ("in", "out")]
        self.flush()

    # -- counting ------------------------------------------------------------------------
    def connection_closed(self, connection: ServedConnection) -> None:
        self.request_bytes += connection.received - self.counted.pop(connection, 0)

    def update(self, connections: Collection[ServedConnection]) -> None:
        """Read the gauges and the request bytes off the open connections; write it all."""
        counted = self.counted
        received = in_flight = sessions = 0
        for connection in connections:
            now = connection.received
            received += now - counted.get(connection, 0)
            counted[connection] = now
            if connection.websocket is not None:
                sessions += 1
                continue
            cycle = connection.cycle  # (a scrape is no request of the app's)
            if cycle is not None and type(cycle) is not MetricsAnswer:
                in_flight += 1
            in_flight += len(connection.pipeline)
        self.request_bytes += received
        self.in_flight, self.sessions, self.connections = in_flight, sessions, len(connections)
        self.flush()

    def flush(self) -> None:
        """Write the totals into this worker's files (absolute values: a scrape reads them
        as they are)."""
        tally, keys = self.tally, self.keys
        write = self.counters.write_value
        request_keys = self.request_keys
        for (method, status), count in tally.requests.items():
            key = request_keys.get((method, status))
            if key is None:
                key = request_keys[method, status] = _key(
                    REQUESTS, REQUESTS[0] + "_total", method=method, status=str(status))
            write(key, count, 0.0)
        write(keys["request_bytes"], self.request_bytes, 0.0)
        write(keys["body_bytes"], tally.response_body_bytes, 0.0)
        write(self.message_keys[0], tally.messages_in, 0.0)
        write(self.message_keys[1], tally.messages_out, 0.0)
        for reason, count in self.exits.items():
            write(_key(EXITS, EXITS[0] + "_total", reason=reason), count, 0.0)
        write = self.histogram.write_value
        for key, count in zip(self.bucket_keys, tally.duration_counts, strict=True):
            write(key, count, 0.0)
        write(keys["duration_sum"], tally.duration_sum, 0.0)
        write = self.gauges.write_value
        write(keys["in_flight"], self.in_flight, 0.0)
        write(keys["connections"], self.connections, 0.0)
        write(keys["sessions"], self.sessions, 0.0)
        write(keys["workers"], 1, 0.0)

    # -- the scrape ----------------------------------------------------------------------
    def exposition(self, accept: str) -> tuple[bytes, str]:
        """Every process's metrics, summed, in the format `accept` asks for (Prometheus's
        text format, or OpenMetrics); and its content type."""
        registry = summing_registry(self.directory)
        encoder, content_type = choose_encoder(accept)
        with locked(self.directory, exclusive=False):
            return encoder(registry), content_type

    # -- the end -------------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """The worker exits (after its last connection closed): count why, write the last
        totals, and fold this process's files (the app's own metrics' too)."""
        self.exits[reason] = self.exits.get(reason, 0) + 1
        self.update(())
        for file in (self.counters, self.histogram, self.gauges):
            file.close()
        pid = self.pid
        fold_ended(self.directory, lambda owner: owner == pid)
