"""The ASGI lifespan protocol: run the app's startup before serving and its shutdown after."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, TypedDict

from .scope import ASGI_VERSION

if TYPE_CHECKING:
    from gunicorn.glogging import Logger

    from .types import ASGIApp, ASGISendEvent, LifespanReceiveEvents, LifespanScope

# An app that reports `lifespan.*.failed` may go on to raise (Starlette re-raises the
# exception whose traceback it sent as the message): it gets this long to end, so that its
# exception, with the full traceback, is what gets printed, once.
FAILED_APP_EXIT_WAIT = 1.0


class AppExited(TypedDict):
    """What a startup or shutdown awaiting the app's answer gets when the app ended instead."""

    type: Literal["lifespan.app.exited"]


if TYPE_CHECKING:
    # What the app answered (any event: `_send` refuses the wrong ones), or that it ended.
    Answer = ASGISendEvent | AppExited


class LifespanFailed(Exception):
    """Startup did not complete; the worker must stop with Gunicorn's boot-error code.

    `cause` is the app's own exception, if it raised one: its traceback is printed with the
    boot error, and nowhere else.
    """

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.cause = cause


def describe(exc: BaseException) -> str:
    """`RuntimeError: the text`, as the last line of a traceback says it."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure_reason(message: Answer, error: BaseException | None) -> str:
    """What a `lifespan.*.failed` message and the exception the app raised say, in one line
    where they allow it: a message that is a whole traceback (Starlette's) yields to the
    exception, whose traceback is printed in full beside it."""
    text = str(message.get("message") or "").strip()
    if error is not None and (not text or "\n" in text):
        return describe(error)
    return text or str(message["type"])


class Lifespan:
    """Drives one `lifespan` scope through startup and shutdown.

    `mode` is `on` (the app must complete startup), `off` (never called) or `auto`: an app
    that refuses the lifespan scope itself (raises, or returns, before it first receives
    a message) is served without lifespan; once it has received `lifespan.startup`, a
    failure is a failed startup, as under `on`.
    """

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, object], log: Logger) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.log = log
        self.supported = True
        self.task: asyncio.Task[None] | None = None
        self.inbox: asyncio.Queue[LifespanReceiveEvents] = asyncio.Queue()
        self.startup_done: asyncio.Future[Answer] | None = None
        self.shutdown_done: asyncio.Future[Answer] | None = None
        self.startup_received = False
        self.shutdown_sent = False
        self.app_error: BaseException | None = None

    async def _run(self) -> None:
        scope: LifespanScope = {"type": "lifespan", "asgi": ASGI_VERSION.copy(),
                                "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise  # a quick exit: nothing to report
        except BaseException as exc:
            self.app_error = exc  # startup() and shutdown() report it
            if self._serving():  # nobody awaits the app now: say it here
                self.log.error("ASGI lifespan error while serving: %s", describe(exc),
                               exc_info=exc)
        finally:
            for fut in (self.startup_done, self.shutdown_done):
                if fut is not None and not fut.done():
                    fut.set_result({"type": "lifespan.app.exited"})

    def _serving(self) -> bool:
        done = self.startup_done
        return (done is not None and done.done() and not self.shutdown_sent
                and done.result()["type"] == "lifespan.startup.complete")

    async def _receive(self) -> LifespanReceiveEvents:
        message = await self.inbox.get()
        if message["type"] == "lifespan.startup":
            self.startup_received = True
        return message

    async def _send(self, message: ASGISendEvent) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            fut = self.startup_done
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            fut = self.shutdown_done
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
        if fut is None or fut.done():
            raise RuntimeError(f"lifespan message {kind!r} sent out of order")
        fut.set_result(message)

    async def _app_exception(self, timeout: float) -> BaseException | None:
        """The exception the app ends with, waiting up to `timeout` s for it to end."""
        if self.task is not None and not self.task.done():
            await asyncio.wait({self.task}, timeout=timeout)
        return self.app_error

    async def startup(self) -> None:
        """Raise LifespanFailed when startup fails (or `on` and the app refuses lifespan)."""
        if self.mode == "off":
            self.supported = False
            return
        loop = asyncio.get_running_loop()
        self.startup_done = loop.create_future()
        self.shutdown_done = loop.create_future()
        self.task = loop.create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.startup_done
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            return
        if kind == "lifespan.startup.failed":
            error = await self._app_exception(FAILED_APP_EXIT_WAIT)
            raise LifespanFailed(failure_reason(message, error), error)
        # The app ended without answering.
        error = self.app_error
        if error is not None and self.startup_received:
            raise LifespanFailed(describe(error), error)
        self.supported = False
        if self.mode == "on":
            what = f"it raised {describe(error)}" if error else "it returned"
            raise LifespanFailed(f"lifespan = on, but the app does not support lifespan "
                                 f"({what} on the lifespan scope)", error)
        if error is not None:
            self.log.info("ASGI lifespan not supported by the app (it raised %s on the "
                          "lifespan scope); serving without it", describe(error))
        elif self.startup_received:
            self.log.warning("ASGI lifespan: the app returned without answering "
                             "lifespan.startup; serving without lifespan")
        else:
            self.log.debug("ASGI lifespan not supported by the app (it returned on the "
                           "lifespan scope); serving without it")

    async def shutdown(self, timeout: float) -> None:
        """Run the app's shutdown, cut off after `timeout` seconds."""
        if (not self.supported or self.task is None or self.task.done()
                or self.shutdown_done is None):
            return  # (an app that ended while serving has been reported already)
        self.shutdown_sent = True
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(asyncio.shield(self.shutdown_done), timeout)
        except asyncio.TimeoutError:
            self.log.warning("ASGI lifespan shutdown did not finish in %.1f s "
                             "(graceful_timeout); cut off", timeout)
            self.task.cancel()
            return
        if message["type"] == "lifespan.shutdown.failed":
            error = await self._app_exception(min(FAILED_APP_EXIT_WAIT, timeout))
            self.log.error("ASGI lifespan shutdown failed: %s",
                           failure_reason(message, error), exc_info=error)
        elif message["type"] == "lifespan.app.exited" and self.app_error is not None:
            self.log.error("ASGI lifespan shutdown failed: %s", describe(self.app_error),
                           exc_info=self.app_error)
