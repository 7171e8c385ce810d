"""A WebSocket chat with Starlette: `gunicorn -k gaw.UvloopWorker -w 1 examples.ws_chat:app`.

Open http://127.0.0.1:8000/ in two browser tabs: what one tab says, every tab sees. The page
at `/` has a name field (a `guest-NNNN` to start with) and connects to `/ws?name=...`; a
changed name reconnects. A dropped connection (a server reload, say) is retried after a wait
of up to half a second, doubling on each failure up to ten seconds; the status line above the log
shows the connection's state (connecting, connected, or reconnecting in so many seconds).
Clients send plain text; the server sends every client a JSON event for each join, message
and leave: `{"type": "joined" | "message" | "left", "name": ...,
"text": ... (messages only), "own": ...}`, where `own` is true in the copy that goes to the
client the event is about, so the page sets your own messages apart.

Run it with one worker (`-w 1`). The room is the set of clients in one worker's memory, so
with two workers (`examples/gunicorn.conf.py` starts two) each worker has its own room and
two tabs see each other only when both connections landed on the same worker. To scale past
one worker, share the messages between workers (Redis pub/sub, say).
"""

from __future__ import annotations

import asyncio
import itertools
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_MESSAGE = 1000  # characters; longer messages are cut
MAX_NAME = 40  # characters; longer names are cut

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat</title>
<style>
  body { font-family: sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em;
         display: flex; flex-direction: column; gap: .3em; }
  #log p { margin: 0; padding: .3em .6em; border-radius: .6em; max-width: 80%;
           background: #eee; align-self: flex-start;
           overflow-wrap: anywhere; white-space: pre-wrap; }
  #log p.own { align-self: flex-end; background: #cfe3ff; }
  #log p.note { align-self: center; background: none; color: #666; font-size: .9em; }
  #log b { margin-right: .4em; }
  #status { margin: 0 0 .3em; font-size: .9em; color: #a40; }
  #status[data-state="connected"] { color: #070; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #name { width: 8em; }
  #text { flex: 1; min-width: 0; }
</style>
</head>
<body>
<h1>Chat</h1>
<p id="status" role="status" data-state="connecting">connecting…</p>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="name" aria-label="Your name" maxlength="40" autocomplete="off">
  <input id="text" aria-label="Message" autocomplete="off" placeholder="Say something" autofocus>
  <button>Send</button>
</form>
<script>
  const log = document.getElementById("log");
  const nameInput = document.getElementById("name");
  const textInput = document.getElementById("text");
  const status = document.getElementById("status");
  nameInput.value = "guest-" + Math.floor(1000 + Math.random() * 9000);
  // A dropped connection is retried after a wait that doubles on each failure and goes back
  // to the first once a connection opens; each wait is cut by up to a half at random, so the
  // tabs a reload dropped together do not all come back at the same instant.
  const FIRST_RETRY_MS = 500;
  const LAST_RETRY_MS = 10000;
  let retryMs = FIRST_RETRY_MS;
  let retryTimer = null;
  let ws = null;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function add(line) {
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  }
  function note(text) {
    const line = document.createElement("p");
    line.className = "note";
    line.textContent = text;
    add(line);
  }
  function show(event) {
    if (event.type !== "message") {
      note(`${event.own ? "you" : event.name} ${event.type}` +
           (event.own ? ` as ${event.name}` : ""));
      return;
    }
    const line = document.createElement("p");
    if (event.own) line.className = "own";
    const who = document.createElement("b");
    who.textContent = event.name;
    line.append(who, event.text);  // text nodes, never HTML: messages cannot inject markup
    add(line);
  }
  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const name = encodeURIComponent(nameInput.value.trim());
    const socket = new WebSocket(`${scheme}://${location.host}/ws?name=${name}`);
    socket.onopen = () => {
      if (socket !== ws) return;
      retryMs = FIRST_RETRY_MS;
      setStatus("connected", "connected");
    };
    socket.onmessage = (event) => show(JSON.parse(event.data));
    socket.onclose = () => {
      if (socket !== ws) return;  // replaced by the connection under a new name
      if (status.dataset.state === "connected") note("disconnected");
      const wait = retryMs * (0.5 + Math.random() / 2);
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
      setStatus("reconnecting", `disconnected: reconnecting in ${(wait / 1000).toFixed(1)} s`);
      retryTimer = setTimeout(connect, wait);
    };
    ws = socket;
    setStatus("connecting", "connecting…");
  }
  nameInput.onchange = () => {  // a new name: leave as the old one, join as the new one
    const old = ws;
    connect();
    old.close();
  };
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    if (textInput.value && ws.readyState === WebSocket.OPEN) {
      ws.send(textInput.value);
      textInput.value = "";
    }
  };
  connect();
</script>
</body>
</html>
"""

clients: set[WebSocket] = set()
guests = itertools.count(1)


async def broadcast(event: dict[str, str], about: WebSocket) -> None:
    """Send `event` to every connected client, with `own` true in the copy for `about`; a
    client that has gone away is just skipped."""
    async def send(client: WebSocket) -> None:
        await client.send_text(json.dumps({**event, "own": client is about}))

    await asyncio.gather(*(send(client) for client in list(clients)), return_exceptions=True)


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def chat(websocket: WebSocket) -> None:
    name = (websocket.query_params.get("name") or "").strip()[:MAX_NAME]
    name = name or f"guest-{next(guests)}"
    await websocket.accept()
    clients.add(websocket)
    try:
        await broadcast({"type": "joined", "name": name}, websocket)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            await broadcast({"type": "message", "name": name, "text": text[:MAX_MESSAGE]},
                            websocket)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
        await broadcast({"type": "left", "name": name}, websocket)


app = Starlette(routes=[Route("/", home), WebSocketRoute("/ws", chat)])
