"""A FastAPI app: `gunicorn -k gaw.UvloopWorker examples.fastapi_app:app`.

The lifespan opens what the app shares (here a greeting in the lifespan state, which every
request and WebSocket sees as `.state`, and an item store on `app.state`); `/ws` is a
WebSocket that greets and echoes.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
    app.state.items = {}
    yield {"greeting": "Hello"}  # the lifespan state: a copy reaches every request


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
async def home(request: Request) -> dict[str, str]:
    return {"message": f"{request.state.greeting}, world!"}


@app.put("/items/{item_id}")
async def put_item(item_id: int, item: Item) -> dict[str, object]:
    app.state.items[item_id] = item
    return {"item_id": item_id, "name": item.name, "price": item.price}


@app.websocket("/ws")
async def ws(websocket: WebSocket, name: str = "stranger") -> None:
    await websocket.accept()
    await websocket.send_json({"greeting": f"{websocket.state.greeting}, {name}!"})
    try:
        while True:
            await websocket.send_json({"echo": await websocket.receive_json()})
    except WebSocketDisconnect:
        pass
