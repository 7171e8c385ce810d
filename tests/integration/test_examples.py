"""Every example in examples/ is served by a real gunicorn with our worker."""

from __future__ import annotations

import httpx
from gunicorn_process import REPO


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
