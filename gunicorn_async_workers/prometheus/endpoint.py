"""The `metrics_path` on Gunicorn's own sockets: answered by the worker, never the app.

With metrics on, the server's `RequestBridge` is a `MetricsRoute` around the app's bridge:
a request for `metrics_path` (with or without a query) becomes a `MetricsAnswer`, which
answers it at once with every worker's metrics summed; any other request goes to the app.
That one comparison of the request target is all metrics add before a request reaches the
app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..http.exchange import STARTED, Exchange

if TYPE_CHECKING:
    from ..http.errors import RequestError
    from ..http.parsers import HeadFields
    from ..http.seams import Log, RequestBridge, RequestConnection
    from .worker_metrics import WorkerMetrics

_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class MetricsRoute:
    """A `RequestBridge` that answers `metrics_path` itself and hands every other request
    to the app's bridge."""

    __slots__ = ("app_bridge", "log", "metrics", "path", "path_query", "refresh")

    def __init__(self, app_bridge: RequestBridge, metrics: WorkerMetrics,
                 refresh: Callable[[], None], log: Log) -> None:
        self.app_bridge = app_bridge
        self.metrics = metrics
        self.refresh = refresh  # brings this worker's files up to date before a scrape
        self.log = log
        self.path = metrics.path.encode("latin-1")
        self.path_query = self.path + b"?"

    def open_request(self, connection: RequestConnection, head: HeadFields,
                     upgrade_allowed: bool) -> Exchange | RequestError:
        target = head.target
        if target == self.path or target.startswith(self.path_query):
            answer = MetricsAnswer(connection, head)
            answer.route = self
            answer.method = head.method
            answer.accept = next((v.decode("latin-1") for n, v in head.headers
                                  if n == b"accept"), "")
            return answer
        return self.app_bridge.open_request(connection, head, upgrade_allowed)

    def tick(self) -> None:
        self.app_bridge.tick()

    def close(self) -> None:
        self.app_bridge.close()


class MetricsAnswer(Exchange):
    """A scrape: GET or HEAD of `metrics_path`, answered with the exposition."""

    __slots__ = ("accept", "method", "route")

    route: MetricsRoute
    method: str
    accept: str  # the request's Accept header: Prometheus's text format or OpenMetrics

    def start(self) -> None:
        route = self.route
        if self.method not in ("GET", "HEAD"):
            self._answer(405, [(b"allow", b"GET, HEAD"), _TEXT],
                         b"405 Method Not Allowed: metrics are read with GET\n")
            return
        try:
            route.refresh()
            body, content_type = route.metrics.exposition(self.accept)
        except Exception:  # the directory's trouble, not the client's: said, and a 500
            route.log.exception("gunicorn-async-workers: Prometheus metrics could not be "
                                "collected from %s", route.metrics.directory)
            self.fail()
            return
        self._answer(200, [(b"content-type", content_type.encode("latin-1"))], body)

    def _answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.response_state = STARTED
        self.status = status
        self.headers = headers
        self.write_head(body, False)
        self.finish()
