"""A Quart app: `gunicorn -k gaw.UvloopWorker examples.quart_app:app`.

Quart is Flask's API on ASGI: the same routes and `request`, but async views and WebSockets.
`before_serving` and `after_serving` run in the worker's ASGI lifespan; `/ws` echoes text.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request, websocket

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    app.config["GREETING"] = "Hello"  # open pools, warm caches: once per worker


@app.get("/")
async def home() -> str:
    return f"{app.config['GREETING']}, world!"


@app.post("/echo")
async def echo() -> dict[str, Any]:
    return {"received": await request.get_json()}


@app.websocket("/ws")
async def ws() -> None:
    while True:
        message = await websocket.receive()
        await websocket.send(f"echo: {message}")
