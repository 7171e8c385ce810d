"""The ASGI lifespan protocol: run the app's startup before serving and its shutdown after."""

from __future__ import annotations

import asyncio
from typing import Any

from .app import ASGIApp, Message


class LifespanFailed(Exception):
    """Startup did not complete; the worker must stop with Gunicorn's boot-error code."""


class Lifespan:
    """Drives one `lifespan` scope through startup and shutdown.

    `mode` is `auto` (an app that raises or does not answer lifespan just serves without it),
    `on` (any failure is fatal) or `off` (never called).
    """

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any], log: Any) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.log = log
        self.supported = True
        self.task: asyncio.Task[None] | None = None
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.startup_done: asyncio.Future[Message] | None = None
        self.shutdown_done: asyncio.Future[Message] | None = None
        self.app_error: BaseException | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self._send)
        except asyncio.CancelledError:
            raise  # a quick exit: nothing to report
        except BaseException as exc:  # the app does not support lifespan, or failed
            self.app_error = exc
            if self.mode == "on" or (self.startup_done and self.startup_done.done()):
                self.log.error("ASGI lifespan error", exc_info=exc)
            else:
                self.log.debug("ASGI lifespan not supported by the app: %r", exc)
        finally:
            for fut in (self.startup_done, self.shutdown_done):
                if fut is not None and not fut.done():
                    fut.set_result({"type": "lifespan.app.exited"})

    async def _send(self, message: Message) -> None:
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

    async def startup(self) -> None:
        """Raise LifespanFailed when the app refuses to start (or `on` and unsupported)."""
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
            raise LifespanFailed(message.get("message") or "lifespan.startup.failed")
        # The app exited or raised without answering.
        self.supported = False
        if self.mode == "on":
            raise LifespanFailed(f"the app does not support lifespan: {self.app_error!r}")

    async def shutdown(self, timeout: float) -> None:
        """Run the app's shutdown, cut off after `timeout` seconds."""
        if not self.supported or self.task is None or self.shutdown_done is None:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(asyncio.shield(self.shutdown_done), timeout)
        except asyncio.TimeoutError:
            self.log.warning("ASGI lifespan shutdown did not finish in %.1f s "
                             "(graceful_timeout); cut off", timeout)
            self.task.cancel()
            return
        if message["type"] == "lifespan.shutdown.failed":
            self.log.error("ASGI lifespan shutdown failed: %s", message.get("message", ""))
