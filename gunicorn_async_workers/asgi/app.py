"""Detect an application's interface at load time: ASGI 3, ASGI 2 (made ASGI 3) or WSGI."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from ..config import ConfigError

# The ASGI types (defined in asgi/types.py), under the names first given them here.
from .types import ASGIApp as ASGIApp
from .types import Message as Message
from .types import Receive as Receive
from .types import Scope as Scope
from .types import Send as Send

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def _is_asgi3(app: object) -> bool:
    if inspect.isclass(app):
        return False
    if inspect.iscoroutinefunction(app):  # also sees through functools.partial
        return True
    call = app if inspect.isroutine(app) else getattr(app, "__call__", None)  # noqa: B004
    return asyncio.iscoroutinefunction(call) or inspect.iscoroutinefunction(call)


def _positional_count(app: Callable[..., object]) -> int | None:
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def detect_interface(app: object) -> str:
    """`asgi3`, `asgi2` or `wsgi`; raise ConfigError when the app's shape does not say.

    ASGI 3 is a coroutine function of (scope, receive, send); ASGI 2 a callable of (scope)
    returning an object with an async `__call__(receive, send)`, usually a class; WSGI a
    plain callable of (environ, start_response).
    """
    if _is_asgi3(app):
        return "asgi3"
    if inspect.isclass(app):
        call = getattr(app, "__call__", None)  # noqa: B004
        if call is not None and inspect.iscoroutinefunction(call):
            return "asgi2"
    if callable(app):
        count = _positional_count(app)
        if count == 2:
            return "wsgi"
        if count == 1:
            return "asgi2"
        if count == 3:
            return "asgi3"  # a callable returning an awaitable
    raise ConfigError(
        f"cannot tell whether {app!r} is an ASGI or a WSGI application; set "
        "interface='asgi3', 'asgi2' or 'wsgi' (GAW_INTERFACE)")


def load_app(app: object, interface: str
             ) -> tuple[Literal["asgi"], ASGIApp] | tuple[Literal["wsgi"], WSGIApplication]:
    """(`asgi` or `wsgi`, the callable to serve) for `interface` auto/asgi3/asgi2/wsgi.

    An explicit interface that contradicts what the app clearly is stops the worker.
    """
    if not callable(app):
        raise ConfigError(f"the application {app!r} is not callable")
    if interface == "auto":
        kind = detect_interface(app)
    else:
        kind = interface
        try:
            detected: str | None = detect_interface(app)
        except ConfigError:
            detected = None
        async_app = _is_asgi3(app) or detected == "asgi2"
        if (kind == "wsgi" and async_app) or (kind != "wsgi" and detected == "wsgi"
                                             and not _is_asgi3(app)):
            raise ConfigError(
                f"interface is {kind!r} but {app!r} looks like "
                f"{'an ASGI' if async_app else 'a WSGI'} app; fix interface (GAW_INTERFACE)")
    if kind == "wsgi":
        return "wsgi", app
    return "asgi", as_asgi3(app, kind)


def as_asgi3(app: object, interface: str) -> ASGIApp:
    """The app as an ASGI 3 callable; `interface` is `auto`, `asgi3` or `asgi2`."""
    if not callable(app):
        raise ConfigError(f"the application {app!r} is not callable")
    kind = detect_interface(app) if interface == "auto" else interface
    if kind == "wsgi":
        raise ConfigError(f"{app!r} is a WSGI application, not ASGI")
    if kind == "asgi3":
        return app

    async def asgi2_adapter(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi2_adapter
