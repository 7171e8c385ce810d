"""What one worker counts for Prometheus between two flushes: plain numbers, no I/O.

The request recorder (`accesslog.RequestRecorder`) adds each finished request here and a
metered WebSocket session each message; the worker's `WorkerMetrics` writes the totals to
its multiprocess files at every tick (once a second) and before it answers a scrape.
Counting in memory keeps a request's cost to a few additions: a prometheus_client value
takes a lock and writes its file on every increment (about 2 µs each, five per request).
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds (seconds) of the request duration histogram's buckets: Prometheus's default
# buckets, from 5 ms to 10 s; a last bucket (+Inf) holds the longer ones.
DURATION_BOUNDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The `method` label of a request: a method of RFC 9110 (or PATCH) as it is, any other token
# (`permit_unconventional_http_method` lets clients send any) as `other`, so that a client
# cannot make a new series per request.
METHOD_LABELS: dict[str, str] = {m: m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}
OTHER_METHOD = "other"


class RequestTally:
    """One worker's running totals of what its requests and WebSocket messages did."""

    __slots__ = ("duration_counts", "duration_sum", "messages_in", "messages_out", "requests",
                 "response_body_bytes")

    def __init__(self) -> None:
        # (method label, status) -> requests answered.
        self.requests: dict[tuple[str, int], int] = {}
        # Requests per duration bucket (not cumulative): one per bound, then +Inf.
        self.duration_counts = [0] * (len(DURATION_BOUNDS) + 1)
        self.duration_sum = 0.0
        self.response_body_bytes = 0
        # WebSocket messages the apps received, and sent.
        self.messages_in = 0
        self.messages_out = 0

    def request_finished(self, method: str, status: int, seconds: float,
                         body_bytes: int) -> None:
        """An HTTP request's response is done (or cut off; status 0: none was sent)."""
        key = (METHOD_LABELS.get(method, OTHER_METHOD), status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.duration_counts[bisect_left(DURATION_BOUNDS, seconds)] += 1
        self.duration_sum += seconds
        self.response_body_bytes += body_bytes

    def session_finished(self, status: int, body_bytes: int) -> None:
        """A WebSocket session ended: its handshake counts as a GET with its answer (101
        once accepted); how long the session lasted is no request's duration."""
        key = ("GET", status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.response_body_bytes += body_bytes
