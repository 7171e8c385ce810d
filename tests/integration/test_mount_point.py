"""A mount point (`root_path`) is split off a request path only at a `/` boundary: with the
app at /env, a request for /environ/x is not under it, in the WSGI `SCRIPT_NAME`/`PATH_INFO`
split and in the ASGI `root_path`/`path` of the scope alike (`/app` against `/application/x`
once gave `PATH_INFO=lication/x`)."""

from __future__ import annotations

import httpx
from gunicorn_process import GunicornProcess


def test_wsgi_path_info_is_split_only_at_a_slash(gunicorn: object) -> None:
    server: GunicornProcess = gunicorn(  # type: ignore[operator]
        "apps.wsgi_apps:app", settings={"root_path": "/env"})
    under = httpx.get(server.url + "/env/environ/y", timeout=10).json()
    assert (under["SCRIPT_NAME"], under["PATH_INFO"]) == ("/env", "/environ/y")
    beside = httpx.get(server.url + "/environ/x", timeout=10)
    assert beside.status_code == 200, beside.text  # routed by its whole path
    assert beside.json()["PATH_INFO"] == "/environ/x"


def test_asgi_path_is_prefixed_unless_under_the_root_at_a_slash(gunicorn: object) -> None:
    server: GunicornProcess = gunicorn(  # type: ignore[operator]
        "apps.http_behaviour:app", settings={"root_path": "/sc"})
    under = httpx.get(server.url + "/sc/scope/y", timeout=10).json()
    assert (under["root_path"], under["path"]) == ("/sc", "/sc/scope/y")
    beside = httpx.get(server.url + "/scope/x", timeout=10).json()
    assert (beside["root_path"], beside["path"]) == ("/sc", "/sc/scope/x")
