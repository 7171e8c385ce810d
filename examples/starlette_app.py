"""A Starlette app: `gunicorn -k gaw.UvloopWorker examples.starlette_app:app`."""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


@asynccontextmanager
async def lifespan(app):
    yield {"greeting": "Hello"}


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.state.greeting}, world!")


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"received": await request.json()})


app = Starlette(routes=[Route("/", home), Route("/echo", echo, methods=["POST"])],
                lifespan=lifespan)
