"""Gunicorn worker classes: one event loop per process, under the arbiter's management.

A worker builds its frozen config, loads the app, runs the ASGI lifespan, serves every
socket the arbiter bound, heartbeats, and ends gracefully on SIGTERM, `max_requests` or a
parent change, or quickly on SIGINT/SIGQUIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal, cast

from gunicorn.workers.base import Worker

from .access_log_json import write_json_access_lines
from .asgi.app import load_app
from .asgi.lifespan import Lifespan, LifespanFailed
from .asgi.websockets_internals import fast_path_problem
from .boot_check import check_at_boot
from .config import ConfigError, ServerConfig, config_file_names, resolve_options
from .http.parsers import H11Parser, HttptoolsParser, ParserAdapter, compiled_head_problem
from .prometheus.boot import start_metrics
from .prometheus.directory import ENV as METRICS_DIR_ENV
from .server import Server

if TYPE_CHECKING:
    import ssl
    from types import FrameType

    from _typeshed.wsgi import WSGIApplication
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from .asgi.types import ASGIApp
    from .prometheus.worker_metrics import WorkerMetrics

# Gunicorn's arbiter halts instead of respawning when a worker exits with this code.
WORKER_BOOT_ERROR = 3
# How long a worker that fails to boot after another one did waits for the halting arbiter's
# SIGTERM (it comes within a second or two) before it exits with the boot-error code anyway.
BOOT_ERROR_WAIT = 10.0


def _boot_error_token() -> int:
    """The read end of a pipe holding one byte, made in the arbiter (which imports this
    module before it forks). Gunicorn's arbiter halts on the first worker that exits with
    WORKER_BOOT_ERROR, but if it reaps a second one while halting it raises again and exits
    with 1 and a traceback of its own. So of the workers that fail to boot together (every
    one of `-w 4` fails the same startup), the one that reads the byte exits with the code
    and the others wait for the arbiter to stop them."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"!")
    os.close(write_end)  # an empty pipe reads as b"" then: the token is taken
    return read_end


_BOOT_ERROR_TOKEN = _boot_error_token()


def _uvloop_factory() -> asyncio.AbstractEventLoop:
    import uvloop

    return uvloop.new_event_loop()


def _retrieve_exception(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


def _remove_own_pidfile(cfg: Config) -> None:
    """The arbiter wrote its pidfile before calling check_config; one that stops there
    removes it, as a halting arbiter does."""
    path = getattr(cfg, "pidfile", None)
    if not path:
        return
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        if int(f.read().strip() or 0) == os.getpid():
            os.unlink(path)


class WorkerExit(enum.Enum):
    """Why a worker process ends: the `reason` of the `gaw_worker_exits_total` metric."""

    OTHER = "other"  # its loop ended otherwise: `--reload` saw a change, an error
    SIGNAL = "signal"  # SIGTERM, SIGINT or SIGQUIT: a stop, SIGHUP's reload, fewer workers
    MAX_REQUESTS = "max_requests"
    TIMEOUT = "timeout"  # SIGABRT: the arbiter missed its heartbeat for `timeout` seconds
    PARENT_CHANGED = "parent_changed"


class AsyncWorkerBase(Worker):
    """The contract with Gunicorn's arbiter, shared by every worker class of ours."""

    #: Builds the event loop of a worker process.
    loop_factory: ClassVar[Callable[[], asyncio.AbstractEventLoop]] = staticmethod(
        asyncio.new_event_loop)
    #: The HTTP/1.1 parser adapter.
    parser_class: ClassVar[type[ParserAdapter]] = HttptoolsParser
    #: What Gunicorn 27's `asgi_loop` and `http_parser` settings call this class's loop
    #: and parser; a setting naming another one is a boot error.
    loop_name: ClassVar[str] = "asyncio"
    parser_kind: ClassVar[str] = "fast"
    #: Our own options, set through `configure(...)`.
    options: ClassVar[dict[str, object]] = {}

    loop: asyncio.AbstractEventLoop
    server: Server | None = None
    config: ServerConfig
    # The app as `load_app` gives it: what it is, and the callable to serve.
    interface: Literal["asgi", "wsgi"]
    app_callable: ASGIApp | WSGIApplication
    quick_exit = False
    _stop: asyncio.Event | None = None
    # Prometheus metrics (None when off), and why the worker ends (the first reason given).
    metrics: WorkerMetrics | None = None
    exit_reason = WorkerExit.OTHER

    @classmethod
    def configure(cls, **options: object) -> type[AsyncWorkerBase]:
        """This worker class with our own options set, for `worker_class = ...`.

        The options (and the `GAW_*` variables) are checked here, so that the config file
        fails on the line that names a wrong one, under `gunicorn --check-config` too: an
        unknown or invalid one prints one line on stderr and exits with Gunicorn's
        boot-error code (3).
        """
        merged = {**cls.options, **options}
        try:
            resolve_options(merged, None)
        except ConfigError as exc:
            print(f"Error: gunicorn-async-workers: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(WORKER_BOOT_ERROR) from None
        return type(cls.__name__, (cls,), {"options": merged, "__module__": cls.__module__,
                                           "__qualname__": cls.__qualname__})

    @classmethod
    def check_config(cls, cfg: Config, log: Logger) -> None:
        """Gunicorn's arbiter calls this once, after binding and before forking any worker.

        A configuration no worker could boot with stops the arbiter here with one line and
        exit code 3, whatever the number of workers, instead of each worker failing in turn.
        (`gunicorn --check-config` does not call it: it only imports the app, so there our
        options are checked by `configure(...)` in the config file.)
        """
        try:
            cls.check_class_settings(cfg)
            config_file = config_file_names(cfg)
            warnings = check_at_boot(cls.options, cfg, config_file)
            # Prometheus: the multiprocess directory, set in the environment before the
            # workers fork (a reload keeps it).
            metrics = start_metrics(resolve_options(cls.options, cfg, config_file=config_file),
                                    bool(cfg.preload_app))
        except ConfigError as exc:
            log.error("gunicorn-async-workers: %s", exc)
            _remove_own_pidfile(cfg)
            raise SystemExit(WORKER_BOOT_ERROR) from None
        if metrics:
            log.info("gunicorn-async-workers: %s", metrics[0])
            warnings += metrics[1:]
        for line in warnings:
            log.warning("gunicorn-async-workers: %s", line)
        problem = fast_path_problem()  # WebSockets on the library's public API only
        if problem is not None:
            log.warning("gunicorn-async-workers: %s", problem)
        if cls.parser_class is HttptoolsParser:  # H11Worker reads heads in Python by design
            problem = compiled_head_problem()
            if problem is not None:
                log.warning("gunicorn-async-workers: %s", problem)

    # -- boot ----------------------------------------------------------------------------
    def init_process(self) -> None:
        # Until init_signals runs, the child still has the arbiter's handlers, which would
        # queue a SIGTERM for the arbiter and lose it: remember it here instead.
        signal.signal(signal.SIGTERM, self._early_signal)
        signal.signal(signal.SIGINT, self._early_signal)
        signal.signal(signal.SIGQUIT, self._early_signal)
        self.loop = type(self).loop_factory()
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def _early_signal(self, sig: int, frame: object) -> None:
        self.alive = False
        self._ending(WorkerExit.SIGNAL)
        if sig != signal.SIGTERM:
            self.quick_exit = True

    def _boot_error(self, message: str, cause: BaseException | None = None) -> None:
        """Say why the worker cannot boot (with the app's traceback, if it raised one) and
        exit with the code that makes the arbiter halt instead of respawning."""
        if os.read(_BOOT_ERROR_TOKEN, 1):  # the first worker to fail
            self.log.error("gunicorn-async-workers: %s", message, exc_info=cause)
            sys.stderr.flush()
            raise SystemExit(WORKER_BOOT_ERROR)
        self.log.error("gunicorn-async-workers: %s (another worker failed first and "
                       "stops Gunicorn)", message)
        stops = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        if self.alive and signal.sigtimedwait(stops, BOOT_ERROR_WAIT) is None:
            raise SystemExit(WORKER_BOOT_ERROR)  # no arbiter came to stop us
        raise SystemExit(0)  # stopped by the halting arbiter, which has the exit code

    @classmethod
    def check_class_settings(cls, cfg: Config) -> None:
        """Gunicorn's `asgi_loop` and `http_parser` (24+ and 25+), where the user set them,
        must agree with this class: each class has one loop and one parser."""
        name = f"gaw.{cls.__name__}"
        loop = getattr(cfg, "asgi_loop", "auto")
        if loop not in ("auto", cls.loop_name):
            better = {"uvloop": "gaw.UvloopWorker", "asyncio": "gaw.AsyncioWorker"}.get(loop)
            raise ConfigError(
                f"asgi_loop = {loop!r} contradicts {name}, which runs {cls.loop_name}: "
                f"use -k {better} or remove asgi_loop" if better else
                f"asgi_loop = {loop!r} is not a loop our workers have (auto, uvloop, asyncio)")
        parser = getattr(cfg, "http_parser", "auto")
        if parser not in ("auto", cls.parser_kind):
            better = {"python": "gaw.H11Worker", "fast": "gaw.UvloopWorker"}.get(parser)
            what = {"fast": "httptools (compiled)", "python": "h11 (pure Python)"}[
                cls.parser_kind]
            raise ConfigError(
                f"http_parser = {parser!r} contradicts {name}, whose parser is {what}: "
                f"use -k {better} or remove http_parser" if better else
                f"http_parser = {parser!r} is not a parser kind our workers have "
                "(auto, fast, python)")

    def load_wsgi(self) -> None:
        # Checked by the arbiter already (check_config); again here for a configuration
        # reloaded by SIGHUP, which Gunicorn does not check before forking.
        try:
            type(self).check_class_settings(self.cfg)
            self.config = ServerConfig.from_gunicorn(
                self.cfg, self.log, self.options, self.max_requests,
                config_file_names(self.cfg))
        except ConfigError as exc:
            self._boot_error(str(exc))
        if self.config.access_log_json:
            write_json_access_lines()
        # Before the app is imported: its own metrics may write to the directory at once.
        self.metrics = self._open_metrics(str(self.config.options["metrics_path"]))
        try:
            super().load_wsgi()
            try:
                self.interface, self.app_callable = load_app(self.wsgi, self.config.interface)
            except ConfigError as exc:
                self._boot_error(str(exc))
        except BaseException:
            self._close_metrics()  # a worker that never serves leaves no files behind
            raise

    def _open_metrics(self, path: str) -> WorkerMetrics | None:
        """This worker's Prometheus metrics, in the directory the arbiter chose; None with
        `metrics_path` empty, or when they cannot work (said in the log: serving goes on)."""
        if not path:
            return None
        directory = os.environ.get(METRICS_DIR_ENV)
        if not directory:  # the arbiter's check_config found metrics off: turned on later
            self.log.warning("gunicorn-async-workers: metrics_path was set after Gunicorn "
                             "started (by a reload): restart Gunicorn to serve metrics")
            return None
        try:
            from .prometheus.worker_metrics import WorkerMetrics

            return WorkerMetrics(directory, path)
        except Exception:  # the directory's trouble: the app is served without metrics
            self.log.exception("gunicorn-async-workers: Prometheus metrics are off in this "
                               "worker: its files in %s could not be set up", directory)
            return None

    def _ending(self, reason: WorkerExit) -> None:
        if self.exit_reason is WorkerExit.OTHER:
            self.exit_reason = reason

    def _close_metrics(self) -> None:
        """Count this worker's end and fold its files (the last thing it does with them)."""
        metrics = self.metrics
        if metrics is None:
            return
        self.metrics = None
        try:
            metrics.close(self.exit_reason.value)
        except Exception:  # the process is exiting either way
            self.log.exception("gunicorn-async-workers: Prometheus metrics of this worker "
                               "could not be folded in %s", metrics.directory)

    def init_signals(self) -> None:
        """Plain handlers until the loop runs (uvloop drops a signal that comes between
        add_signal_handler and the loop's start, e.g. while the app is imported); the loop's
        own handlers are installed by `_install_loop_signals` once it runs."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, self._early_signal)
        signal.signal(signal.SIGINT, self._early_signal)
        signal.signal(signal.SIGQUIT, self._early_signal)
        signal.signal(signal.SIGUSR1, lambda sig, frame: self.log.reopen_files())
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)
        # SIGABRT comes from the arbiter when the worker missed its heartbeat, usually
        # because an app blocked the loop: a plain handler still runs between bytecodes.
        signal.signal(signal.SIGABRT, self.handle_abort)

    def _install_loop_signals(self) -> None:
        loop = self.loop
        loop.add_signal_handler(signal.SIGTERM, self._on_term)
        loop.add_signal_handler(signal.SIGINT, self._on_quit)
        loop.add_signal_handler(signal.SIGQUIT, self._on_quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        if self.quick_exit and self.alive is False:
            self.cfg.worker_int(self)  # a SIGINT/SIGQUIT that came before the loop ran

    # -- signals -------------------------------------------------------------------------
    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """SIGABRT from the arbiter (a missed heartbeat, usually an app blocking the loop):
        stop accepting before the exit unwinds through the loop, which may still run a
        pending accept on its way out; clients in the backlog go to the other workers."""
        self._ending(WorkerExit.TIMEOUT)
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop_listening()
        with contextlib.suppress(RuntimeError):  # RuntimeError: no loop running here
            task = asyncio.current_task(self.loop)
            if task is not None:
                # The SystemExit below ends the task that held the loop; the request cycle
                # logs its traceback once. Retrieving it keeps asyncio from printing it again
                # ("Task exception was never retrieved") as the loop closes.
                task.add_done_callback(_retrieve_exception)
        super().handle_abort(sig, frame)

    def _wake(self) -> None:
        """Leave the serving loop; a graceful end stops accepting at once, not a tick later."""
        if self.server is not None and not self.quick_exit:
            self.server.stop_listening()
        if self._stop is not None:
            self._stop.set()

    def _on_term(self) -> None:
        self.alive = False
        self._ending(WorkerExit.SIGNAL)
        self._wake()

    def _on_quit(self) -> None:
        self._ending(WorkerExit.SIGNAL)
        self.quick_exit = True
        if self.alive:
            self.alive = False
            self.cfg.worker_int(self)
        self._wake()

    def _on_max_requests(self) -> None:
        if self.alive:
            self.log.info("Autorestarting worker after current request.")
            self._ending(WorkerExit.MAX_REQUESTS)
            self.alive = False
            self._wake()

    # -- serving -------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            # However serving ended (SIGABRT's SystemExit out of a blocked app, too), the
            # loop runs once more below to end tasks: a dying worker must not accept the
            # clients waiting in the backlog, which the other workers will serve.
            if self.server is not None:
                self.server.stop_listening()
            self._close_loop()
            self._close_metrics()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.cfg.is_ssl:
            return None
        from .tls import server_context

        return server_context(self.cfg, self.config.http_protocols)

    async def _serve(self) -> None:
        config = self.config
        loop = self.loop
        self._stop = asyncio.Event()
        self._install_loop_signals()
        state: dict[str, object] = {}
        wsgi = self.interface == "wsgi"
        # (A WSGI app is never called by the lifespan: its mode is then `off`.)
        lifespan = Lifespan(cast("ASGIApp", self.app_callable),
                            "off" if wsgi else config.lifespan, state, self.log)
        try:
            await lifespan.startup()
        except LifespanFailed as exc:
            self._boot_error(f"ASGI lifespan startup failed: {exc}", exc.cause)
        server = self.server = Server(
            config, self.app_callable, loop, self.log, self,
            parser_class=type(self).parser_class, ssl_context=self._ssl_context(),
            on_max_requests=self._on_max_requests, state=state, metrics=self.metrics)
        if wsgi:
            from .wsgi.bridge import base_environ

            server.serve_wsgi(base_environ(self.cfg, config.threads),
                              config.root_path or os.environ.get("SCRIPT_NAME", ""))
        server.listen([getattr(s, "sock", s) for s in self.sockets])
        interval = self.heartbeat_interval
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self._ending(WorkerExit.PARENT_CHANGED)
                break
            server.tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
        self.alive = False
        if self.quick_exit:
            server.stop_listening()
            server.close_all()
            return
        started = time.monotonic()
        heartbeat = loop.create_task(self._heartbeat(interval))
        try:
            await server.shutdown_gracefully(config.graceful_timeout)
            left = config.graceful_timeout - (time.monotonic() - started)
            await lifespan.shutdown(max(0.1, left - 0.2))
        finally:
            heartbeat.cancel()

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats, which are also the server's ticks: half of
        `timeout`, from 0.1 to 1."""
        return max(0.1, min(1.0, self.timeout / 2))

    def notify(self) -> None:
        """Heartbeat, stamped as good until the next one is due.

        The arbiter kills a worker whose heartbeat file is older than `timeout`. Stamped with
        the time of the beat, a loop blocked just after one would be killed up to an interval
        early; stamped `interval` ahead (in whatever clock Gunicorn's own `notify` uses: read
        back from the file), a block is killed no earlier than `timeout` after it started,
        and at most `interval` plus the arbiter's own check period later.
        """
        tmp = self.tmp
        tmp.notify()
        ahead = tmp.last_update() + self.heartbeat_interval
        os.utime(tmp.fileno(), (ahead, ahead))

    async def _heartbeat(self, interval: float) -> None:
        while True:
            self.notify()
            await asyncio.sleep(interval)

    def _close_loop(self) -> None:
        loop = self.loop
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(
                    asyncio.wait(tasks, timeout=1.0 if self.quick_exit else 5.0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception as exc:  # the process is exiting either way
            self.log.debug("error while closing the event loop: %r", exc)
        finally:
            # The arbiter repeats SIGTERM to a worker it retires until it is gone. Closing a
            # loop shuts its wakeup pipe and then puts its signals back to SIG_DFL: a SIGTERM
            # in between is written to a closed pipe (a traceback on stderr), and one after
            # would kill a worker still running worker_exit. So SIGTERM is held back while
            # the loop closes, and then ignored (SIG_IGN: Python handlers are reset while the
            # interpreter shuts down). The other signals the loop handles are held back too
            # (they then find their default handlers); the WSGI pool's threads block them
            # all, so none is delivered to a thread that still lets it through.
            held = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1}
            signal.pthread_sigmask(signal.SIG_BLOCK, held)
            try:
                loop.close()
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


class UvloopWorker(AsyncWorkerBase):
    """uvloop event loop + httptools parser: the default and fastest."""

    loop_factory = staticmethod(_uvloop_factory)
    parser_class = HttptoolsParser
    loop_name = "uvloop"


class AsyncioWorker(AsyncWorkerBase):
    """The standard library's asyncio event loop + httptools: for debuggers, tracers and
    profilers that hook the stdlib loop, and where `loop.sendfile` is wanted."""

    loop_factory = staticmethod(asyncio.new_event_loop)
    parser_class = HttptoolsParser


class H11Worker(AsyncWorkerBase):
    """The standard library's asyncio event loop + the pure-Python h11 parser: no compiled
    dependency on the request path, and h11's strict RFC 9112 grammar for request heads."""

    loop_factory = staticmethod(asyncio.new_event_loop)
    parser_class = H11Parser
    parser_kind = "python"
