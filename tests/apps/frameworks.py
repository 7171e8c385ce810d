"""A Starlette app and a FastAPI app, served as they are, to show real frameworks run unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


@asynccontextmanager
async def starlette_lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    yield {"greeting": "set by lifespan"}


async def s_root(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def s_state(request: Request) -> Response:
    return PlainTextResponse(request.state.greeting)


async def s_items(request: Request) -> Response:
    data = await request.json()
    return JSONResponse({"framework": "starlette", "received": data,
                         "path": request.url.path}, status_code=201)


starlette_app = Starlette(
    routes=[
        Route("/", s_root),
        Route("/__ready", s_root),
        Route("/state", s_state),
        Route("/items", s_items, methods=["POST"]),
    ],
    lifespan=starlette_lifespan,
)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


fastapi_app = FastAPI()


@fastapi_app.get("/")
async def f_root() -> dict[str, str]:
    return {"framework": "fastapi"}


@fastapi_app.get("/__ready")
async def f_ready() -> dict[str, str]:
    return {"ready": "yes"}


@fastapi_app.post("/items", status_code=201)
async def f_items(item: Item) -> dict[str, object]:
    return {"framework": "fastapi", "received": item.model_dump()}
