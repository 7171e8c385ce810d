"""A FastAPI app: `gunicorn -k gaw.UvloopWorker examples.fastapi_app:app`."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.items = {}
    yield


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
async def home() -> dict[str, str]:
    return {"message": "Hello, world!"}


@app.put("/items/{item_id}")
async def put_item(item_id: int, item: Item) -> dict[str, object]:
    app.state.items[item_id] = item
    return {"item_id": item_id, "name": item.name, "price": item.price}
