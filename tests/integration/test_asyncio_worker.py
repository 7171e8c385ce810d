"""`gaw.AsyncioWorker` (stdlib loop + httptools) in every run, whatever the class matrix:
it serves ASGI and WSGI, and `wsgi.file_wrapper` goes out through the stdlib loop's
`loop.sendfile` (uvloop has none), stopping at the app's Content-Length."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from gunicorn_process import GunicornProcess, read_until_close
from raw_http import ResponseReader

WORKER = "gaw.AsyncioWorker"


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[GunicornProcess]:
    with GunicornProcess("apps.wsgi_apps:app", WORKER, settings={"threads": 2}) as server:
        yield server


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "three.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    return path


def test_asgi_app_served() -> None:
    with GunicornProcess("examples.hello:app", WORKER) as server:
        r = httpx.get(server.url + "/")
        assert (r.status_code, r.text) == (200, "Hello, world!")
        assert "Using worker: gaw.AsyncioWorker" in server.logs()


def test_file_wrapper_through_loop_sendfile(wsgi_server: GunicornProcess,
                                            big_file: Path) -> None:
    r = httpx.get(f"{wsgi_server.url}/file?path={quote(str(big_file), safe='')}", timeout=20)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(big_file.read_bytes()).digest()


def test_sendfile_stops_at_the_apps_content_length(wsgi_server: GunicornProcess,
                                                   big_file: Path) -> None:
    target = f"/file?path={quote(str(big_file), safe='')}&length=1000"
    with wsgi_server.connect() as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        reader = ResponseReader(s)
        resp = reader.read_response()
        assert resp.body == big_file.read_bytes()[:1000]
        assert reader.buf + read_until_close(s) == b""
