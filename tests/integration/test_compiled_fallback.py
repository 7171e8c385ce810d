"""An install without the compiled module (no C compiler at `pip install`) serves the same,
and says so once at boot.

The config file makes `import gunicorn_async_workers.http.compiled_head` fail, as it does
where setup.py could not build it: every head is then read and framed the long way. The
same requests get the same answers, PEP 3333's validator included, and the httptools worker
classes log one warning that names the missing module and what to do; H11Worker, which
reads heads in Python by design, logs none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import compiled_module
import httpx
from gunicorn_process import GunicornProcess

# Run by gunicorn before it imports the worker class: the module cannot be imported.
WITHOUT_MODULE = 'import sys\nsys.modules["gunicorn_async_workers.http.compiled_head"] = None\n'
WARNING = "the compiled head reader (http/compiled_head.c) was not built"


def served_alike(server: GunicornProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = client.get("/v/environ/x?y=1", headers={"X-A": "b"})
        assert answer.status_code == 200
        environ = answer.json()
        assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["HTTP_X_A"]) == (
            "/v/environ/x", "y=1", "b")
        body = bytes(range(256)) * 64
        answer = client.post("/v/input?how=readline", content=body)
        assert answer.status_code == 200
        assert json.loads(answer.text)["sha256"] == hashlib.sha256(body).hexdigest()
        assert client.get("/nowhere-\xe9".encode().decode("latin-1")).status_code == 404


def test_without_the_compiled_module_the_same_answers_and_one_warning(
        gunicorn: Callable[..., GunicornProcess], worker_class: str) -> None:
    server = gunicorn("apps.wsgi_apps:app", config_text=WITHOUT_MODULE)
    served_alike(server)
    logs = server.logs()
    if worker_class == "gaw.H11Worker":
        assert WARNING not in logs, logs
    else:
        assert logs.count(WARNING) == 1, logs
        assert "[WARNING]" in next(line for line in logs.splitlines() if WARNING in line)


def test_with_the_compiled_module_no_warning(gunicorn: Callable[..., GunicornProcess]) -> None:
    compiled_module.require()
    server = gunicorn("apps.wsgi_apps:app")
    served_alike(server)
    assert WARNING not in server.logs()
