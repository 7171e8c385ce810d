"""Detect an application's interface at load time and present it as an ASGI 3 callable."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..config import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _is_asgi3(app: object) -> bool:
    if inspect.isclass(app):
        return False
    if inspect.iscoroutinefunction(app):  # also sees through functools.partial
        return True
    call = app if inspect.isroutine(app) else getattr(app, "__call__", None)  # noqa: B004
    return asyncio.iscoroutinefunction(call) or inspect.iscoroutinefunction(call)


def detect_interface(app: object) -> str:
    """`asgi3`, `asgi2`, or raise ConfigError for something that is neither.

    ASGI 3 is a coroutine function of (scope, receive, send); ASGI 2 is a callable of
    (scope) returning an object with an async `__call__(receive, send)`, usually a class.
    """
    if _is_asgi3(app):
        return "asgi3"
    if inspect.isclass(app):
        call = getattr(app, "__call__", None)  # noqa: B004
        if call is not None and inspect.iscoroutinefunction(call):
            return "asgi2"
    if callable(app):
        try:
            params = inspect.signature(app).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None and len(params) == 1:
            return "asgi2"
        if params is not None and len(params) == 3:
            return "asgi3"  # a callable returning an awaitable, e.g. a partial
    raise ConfigError(
        f"{app!r} is not an ASGI application; set interface='asgi3' or 'asgi2' "
        "(GAW_INTERFACE) if detection is wrong")


def as_asgi3(app: object, interface: str) -> ASGIApp:
    """The app as an ASGI 3 callable; `interface` is `auto`, `asgi3` or `asgi2`."""
    if not callable(app):
        raise ConfigError(f"the application {app!r} is not callable")
    kind = detect_interface(app) if interface == "auto" else interface
    if kind == "asgi3":
        return app  # type: ignore[return-value]

    async def asgi2_adapter(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)  # type: ignore[operator]
        await instance(receive, send)

    return asgi2_adapter
