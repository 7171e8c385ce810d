"""A WebSocket chat with Starlette: `gunicorn -k gaw.UvloopWorker examples.ws_chat:app`.

Open http://127.0.0.1:8000/ in two browser tabs: what one tab says, every tab sees. The page
at `/` connects to `/ws?name=...`; the server broadcasts `* name joined`, `name: text` and
`* name left` to every connected client.

The clients live in one worker's memory, so a broadcast reaches the clients of that worker:
run it with `--workers 1`, or share messages between workers (Redis pub/sub, say) to scale.
"""

from __future__ import annotations

import asyncio
import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_MESSAGE = 1000  # characters; longer messages are cut

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Chat</title>
<style>
  body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>Chat</h1>
<div id="log"></div>
<form id="form">
  <input id="text" autocomplete="off" placeholder="Say something" autofocus>
  <button>Send</button>
</form>
<script>
  const name = prompt("Your name?") || "guest";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?name=${encodeURIComponent(name)}`);
  const log = document.getElementById("log");
  function show(text) {
    const line = document.createElement("p");
    line.textContent = text;  // text, never HTML: messages cannot inject markup
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  }
  ws.onmessage = (event) => show(event.data);
  ws.onclose = () => show("* disconnected");
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    if (input.value && ws.readyState === WebSocket.OPEN) {
      ws.send(input.value);
      input.value = "";
    }
  };
</script>
</body>
</html>
"""

clients: set[WebSocket] = set()
guests = itertools.count(1)


async def broadcast(text: str) -> None:
    """Send `text` to every connected client; one that has gone away is just skipped."""
    await asyncio.gather(*(client.send_text(text) for client in list(clients)),
                         return_exceptions=True)


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def chat(websocket: WebSocket) -> None:
    name = (websocket.query_params.get("name") or "").strip()[:40] or f"guest{next(guests)}"
    await websocket.accept()
    clients.add(websocket)
    try:
        await broadcast(f"* {name} joined")
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            await broadcast(f"{name}: {text[:MAX_MESSAGE]}")
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
        await broadcast(f"* {name} left")


app = Starlette(routes=[Route("/", home), WebSocketRoute("/ws", chat)])
