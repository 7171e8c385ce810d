"""A Flask (WSGI) app: `gunicorn -k gaw.UvloopWorker examples.flask_app:app`.

The worker sees a WSGI callable and runs it on its thread pool (`--threads` sets the pool
size); request bodies stream in and responses stream out on the event loop.

Routes:
    GET  /                    plain-text hello
    GET  /items?limit=N       query arguments (N from 0 to 100, default 3)
    POST /echo                JSON in, the same JSON back under "received"
    POST /form                form fields echoed back as JSON
    POST /upload              a multipart file: its filename, size and sha256
    GET  /stream              ten chunks from a generator, streamed as they are made
    GET  /static/hello.txt    a static file from examples/flask_static/
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, Response, abort, jsonify, request, stream_with_context

app = Flask(__name__, static_folder=str(Path(__file__).parent / "flask_static"),
            static_url_path="/static")

STREAM_CHUNKS = 10


@app.get("/")
def hello() -> Response:
    return Response("Hello, world!", mimetype="text/plain")


@app.get("/items")
def items() -> Response:
    try:
        limit = int(request.args.get("limit", "3"))
    except ValueError:
        limit = -1
    if not 0 <= limit <= 100:
        abort(400, "limit must be an integer from 0 to 100")
    return jsonify(limit=limit, items=[f"item-{i}" for i in range(limit)])


@app.post("/echo")
def echo() -> Response:
    return jsonify(received=request.get_json())


@app.post("/form")
def form() -> Response:
    return jsonify(fields=request.form.to_dict(flat=False))


@app.post("/upload")
def upload() -> Response:
    uploaded = request.files.get("file")
    if uploaded is None:
        abort(400, "send the file as the multipart field 'file'")
    digest = hashlib.sha256()
    size = 0
    while chunk := uploaded.stream.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(filename=uploaded.filename, size=size, sha256=digest.hexdigest(),
                   fields=request.form.to_dict())


@app.get("/stream")
def stream() -> Response:
    who = request.args.get("who", "world")

    @stream_with_context
    def generate() -> Iterator[str]:
        # The request context stays alive while the generator runs, so `request` works here.
        for i in range(STREAM_CHUNKS):
            yield f"chunk {i} for {who} from {request.path}\n"

    return Response(generate(), mimetype="text/plain")
