"""Every example in examples/ is served by a real gunicorn with our worker."""

from __future__ import annotations

import asyncio
import json
import runpy
import subprocess
import sys

import httpx
import pytest
from gunicorn.config import Config
from gunicorn_process import GUNICORN_SETTINGS, REPO, GunicornProcess
from websockets.asyncio.client import connect

from gunicorn_async_workers.config import OPTIONS, resolve_options

EXAMPLE_CONF = REPO / "examples" / "gunicorn.conf.py"


def ws_exchange(server: GunicornProcess, path: str, send: list[str], receive: int) -> list[str]:
    """Open a WebSocket to `path`, send `send` in order, return the first `receive` texts."""
    async def scenario() -> list[str]:
        async with connect(f"ws://{server.host}:{server.port}{path}", open_timeout=10,
                           close_timeout=5, ping_interval=None, proxy=None) as ws:
            for text in send:
                await ws.send(text)
            return [str(await ws.recv()) for _ in range(receive)]
    return asyncio.run(asyncio.wait_for(scenario(), 30))


def test_hello_example(gunicorn) -> None:
    server = gunicorn("examples.hello:app")
    r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["server"] == "gunicorn"


def test_starlette_example(gunicorn) -> None:
    server = gunicorn("examples.starlette_app:app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "Hello, world!"  # lifespan state reached the request
        assert client.post("/echo", json={"a": [1, 2]}).json() == {"received": {"a": [1, 2]}}


def test_fastapi_example(gunicorn) -> None:
    server = gunicorn("examples.fastapi_app:app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").json() == {"message": "Hello, world!"}
        r = client.put("/items/7", json={"name": "pen", "price": 1.5})
        assert r.json() == {"item_id": 7, "name": "pen", "price": 1.5}
        assert client.put("/items/x", json={}).status_code == 422


def test_fastapi_websocket_sees_the_lifespan_state(gunicorn) -> None:
    server = gunicorn("examples.fastapi_app:app")
    got = ws_exchange(server, "/ws?name=Ada", [json.dumps({"n": 1}), json.dumps([2, "x"])], 3)
    assert [json.loads(m) for m in got] == [
        {"greeting": "Hello, Ada!"}, {"echo": {"n": 1}}, {"echo": [2, "x"]}]


def test_quart_example(gunicorn) -> None:
    pytest.importorskip("quart")
    server = gunicorn("examples.quart_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/").text == "Hello, world!"  # before_serving ran in the lifespan
        assert client.post("/echo", json={"a": [1, None]}).json() == {"received": {"a": [1, None]}}
        assert client.get("/missing").status_code == 404
    assert ws_exchange(server, "/ws", ["one", "two"], 2) == ["echo: one", "echo: two"]
    assert "Traceback" not in server.logs()


def test_example_gunicorn_conf(gunicorn) -> None:
    """The commented example config boots as written (its bind and workers from the env)."""
    conf = REPO / "examples" / "gunicorn.conf.py"
    server = gunicorn(
        "examples.hello:app",
        config_text=f"exec(compile(open({str(conf)!r}).read(), 'gunicorn.conf.py', 'exec'))",
        env={"BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "1"},
    )
    r = httpx.get(server.url + "/")
    assert r.text == "Hello, world!"
    assert "Using worker: " in server.logs()


def test_example_gunicorn_conf_shows_every_option_and_shadows_no_gunicorn_setting() -> None:
    """Every option in OPTIONS is named in the file; configure() sets each one that has no
    Gunicorn setting of its own (at the value a worker has without it), and none that has,
    so a Gunicorn setting given on the command line is not overridden behind its back."""
    text = EXAMPLE_CONF.read_text()
    missing = [o.name for o in OPTIONS if f"{o.name}=" not in text]
    assert not missing, f"examples/gunicorn.conf.py does not show {missing}"
    namespace = runpy.run_path(str(EXAMPLE_CONF))
    options = namespace["worker_class"].options
    assert sorted(options) == sorted(o.name for o in OPTIONS if not o.gunicorn_setting)
    assert not {o.name for o in OPTIONS} & set(namespace), "a top-level option name"
    # Each is shown at the value a worker would have without it (and so is valid).
    assert resolve_options(options, Config(), environ={}) == resolve_options(
        {}, Config(), environ={})


@pytest.mark.skipif("root_path" not in GUNICORN_SETTINGS,
                    reason="this Gunicorn has no root_path setting (--root-path)")
def test_example_gunicorn_conf_leaves_root_path_to_the_command_line(
        gunicorn, worker_class: str) -> None:
    """`--root-path /api` with the example config reaches the app, and nothing warns."""
    module, name = worker_class.rsplit(".", 1)
    server = gunicorn(
        "apps.http_behaviour:app",
        # The example as written, then its options on the class under test.
        config_text=(f"exec(compile(open({str(EXAMPLE_CONF)!r}).read(), 'gunicorn.conf.py', "
                     f"'exec'))\nfrom {module} import {name} as _Class\n"
                     "worker_class = _Class.configure(**worker_class.options)\n"),
        env={"BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "1"},
        args=["--root-path", "/api"],
    )
    scope = httpx.get(server.url + "/api/scope", timeout=10).json()
    assert scope["root_path"] == "/api"
    assert "gunicorn-async-workers:" not in server.logs()


def test_example_gunicorn_conf_passes_check_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(EXAMPLE_CONF),
         "examples.hello:app"],
        cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
