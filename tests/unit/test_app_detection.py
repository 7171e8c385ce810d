"""Unit tests of ASGI interface detection (detect_interface) and the ASGI 2 adapter (as_asgi3)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from gunicorn_async_workers.asgi.app import as_asgi3, detect_interface
from gunicorn_async_workers.config import ConfigError

Message = dict[str, Any]


async def asgi3_function(scope: Message, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


class Asgi3Instance:
    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        await asgi3_function(scope, receive, send)


class Asgi2App:
    """ASGI 2: instantiated with the scope, then awaited with receive and send."""

    def __init__(self, scope: Message) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": message["body"] + b"!"})


async def with_config(suffix: bytes, scope: Message, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode() + suffix})


async def with_keyword(scope: Message, receive: Any, send: Any, *, suffix: bytes) -> None:
    await with_config(suffix, scope, receive, send)


def asgi2_factory(scope: Message) -> Asgi2App:
    return Asgi2App(scope)


def drive(app: Any) -> list[Message]:
    """Run an ASGI 3 callable on one request; the messages it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"hi", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": "/p"}, receive, send))
    return sent


@pytest.mark.parametrize(("app", "kind"), [
    (asgi3_function, "asgi3"),
    (Asgi3Instance(), "asgi3"),
    (Asgi2App, "asgi2"),
    (asgi2_factory, "asgi2"),
    (functools.partial(with_config, b"?"), "asgi3"),
    (Asgi3Instance().__call__, "asgi3"),
])
def test_detect_interface(app: object, kind: str) -> None:
    assert detect_interface(app) == kind


def wsgi_function(environ: dict[str, object], start_response: object) -> list[bytes]:
    return []


class WsgiInstance:
    def __call__(self, environ: dict[str, object], start_response: object) -> list[bytes]:
        return []


@pytest.mark.parametrize("app", [wsgi_function, WsgiInstance(), lambda environ, sr: []])
def test_wsgi_detected(app: object) -> None:
    assert detect_interface(app) == "wsgi"


@pytest.mark.parametrize("app", [42, "module:app", None, object(), lambda a, b, c, d: None])
def test_not_an_application(app: object) -> None:
    with pytest.raises(ConfigError, match="interface"):
        detect_interface(app)


def test_as_asgi3_of_non_callable() -> None:
    with pytest.raises(ConfigError, match="not callable"):
        as_asgi3(42, "auto")


def test_as_asgi3_keeps_an_asgi3_app() -> None:
    assert as_asgi3(asgi3_function, "auto") is asgi3_function
    assert as_asgi3(asgi3_function, "asgi3") is asgi3_function


@pytest.mark.parametrize("interface", ["auto", "asgi2"])
def test_as_asgi3_runs_an_asgi2_class(interface: str) -> None:
    app = as_asgi3(Asgi2App, interface)
    assert app is not Asgi2App
    assert drive(app) == [
        {"type": "http.response.start", "status": 201, "headers": []},
        {"type": "http.response.body", "body": b"hi!"},
    ]


def test_as_asgi3_runs_a_partial() -> None:
    app = as_asgi3(functools.partial(with_config, b"?"), "auto")
    assert drive(app)[-1] == {"type": "http.response.body", "body": b"/p?"}


def test_partial_with_keyword_argument_is_asgi3() -> None:
    app = functools.partial(with_keyword, suffix=b"?")
    assert detect_interface(app) == "asgi3"
    assert drive(as_asgi3(app, "auto"))[-1] == {"type": "http.response.body", "body": b"/p?"}


def test_forced_interface_overrides_detection() -> None:
    # Forced asgi2 on an ASGI 2 factory function (detection would agree, but is not asked).
    assert drive(as_asgi3(asgi2_factory, "asgi2"))[0]["status"] == 201
