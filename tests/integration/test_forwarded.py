"""Forwarded-header settings decide what the app sees exactly as Gunicorn 27 decides it.

`forwarded_allow_ips`, `secure_scheme_headers`, `forwarder_headers` and `header_map` (drop,
refuse, dangerous) are set alike on our worker and on Gunicorn's reference worker serving the
same app: `-k sync` for a WSGI app (what the environ says: `wsgi.url_scheme`, `REMOTE_ADDR`,
`SCRIPT_NAME`, `PATH_INFO`, every `HTTP_*` key) and Gunicorn 27's `-k asgi` for an ASGI app
(the scope's `scheme`, `client`, `root_path`, `path` and `headers`). The same requests go to
both, each on its own connection, and the answers are compared.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from gunicorn_process import HAS_GUNICORN_ASGI, GunicornProcess
from raw_http import ResponseReader

WSGI_APP = "apps.wsgi_apps:app"
ASGI_APP = "apps.http_behaviour:app"
# The app kinds, each compared with its reference worker (-k asgi exists from Gunicorn 24).
APPS = [WSGI_APP, pytest.param(ASGI_APP, marks=pytest.mark.skipif(
    not HAS_GUNICORN_ASGI, reason="this Gunicorn has no -k asgi worker to compare with"))]

CONFIGS: dict[str, dict[str, object]] = {
    # Our 127.0.0.1 peer is a trusted proxy; Gunicorn's defaults otherwise.
    "trusted": {"forwarded_allow_ips": "127.0.0.1"},
    # Only 10.9.9.9 is trusted: scheme headers and forwarder headers are ignored.
    "untrusted": {"forwarded_allow_ips": "10.9.9.9"},
    "trusted-refuse": {"forwarded_allow_ips": "127.0.0.1", "header_map": "refuse"},
    "untrusted-refuse": {"forwarded_allow_ips": "10.9.9.9", "header_map": "refuse"},
    "untrusted-dangerous": {"forwarded_allow_ips": "10.9.9.9", "header_map": "dangerous"},
    # Every underscored name from a trusted peer, and a custom scheme header.
    "trusted-star": {"forwarded_allow_ips": "127.0.0.1", "forwarder_headers": "*",
                     "secure_scheme_headers": {"X-SCHEME": "https"}},
    "untrusted-star": {"forwarded_allow_ips": "10.9.9.9", "forwarder_headers": "*"},
}

# (name, request target, extra header lines); the path is the app's route.
CASES: list[tuple[str, str, list[str]]] = [
    ("plain", "{route}", []),
    ("proto-https", "{route}", ["X-Forwarded-Proto: https"]),
    ("proto-http", "{route}", ["X-Forwarded-Proto: http"]),
    ("proto-upper", "{route}", ["X-Forwarded-Proto: HTTPS"]),
    ("ssl-on", "{route}", ["X-Forwarded-Ssl: on"]),
    ("protocol-ssl", "{route}", ["X-Forwarded-Protocol: ssl"]),
    ("conflict", "{route}", ["X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"]),
    ("agree", "{route}", ["X-Forwarded-Proto: https", "X-Forwarded-Ssl: on"]),
    ("repeat", "{route}", ["X-Forwarded-Proto: https", "X-Forwarded-Proto: https"]),
    ("repeat-conflict", "{route}", ["X-Forwarded-Proto: https", "X-Forwarded-Proto: http"]),
    ("custom-scheme", "{route}", ["X-Scheme: https"]),
    ("for", "{route}", ["X-Forwarded-For: 203.0.113.7, 10.0.0.1", "Forwarded: for=1.2.3.4"]),
    ("underscore", "{route}", ["X_Forwarded_For: 198.51.100.9", "X-Other: kept"]),
    ("underscore-proto", "{route}", ["X_Forwarded_Proto: https"]),
    ("script-name", "/app{route}", ["SCRIPT_NAME: /app"]),
    ("script-name-mismatch", "{route}", ["SCRIPT_NAME: /elsewhere"]),
    ("path-info", "{route}", ["PATH_INFO: /evil"]),
]

WSGI_KEYS = ("wsgi.url_scheme", "REMOTE_ADDR", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING")


def ask(server: GunicornProcess, target: str, headers: list[str]) -> tuple[int, Any]:
    raw = "\r\n".join([f"GET {target} HTTP/1.1", "Host: example.test", *headers,
                       "Connection: close"]) + "\r\n\r\n"
    with server.connect() as s:
        s.sendall(raw.encode("latin-1"))
        resp = ResponseReader(s).read_response()
    doc = None
    if resp.status == 200:
        doc = json.loads(resp.body)
    return resp.status, doc


def wsgi_view(doc: dict[str, Any]) -> dict[str, Any]:
    view = {k: doc.get(k) for k in WSGI_KEYS}
    view.update({k: v for k, v in doc.items() if k.startswith("HTTP_")})
    return view


def asgi_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {"scheme": doc["scheme"], "client_host": doc["client"][0],
            "root_path": doc["root_path"], "path": doc["path"],
            "headers": sorted(tuple(h) for h in doc["headers"])}


def answers(app: str, worker_class: str, config: dict[str, object]) -> dict[str, Any]:
    route = "/environ" if app == WSGI_APP else "/scope"
    view = wsgi_view if app == WSGI_APP else asgi_view
    out: dict[str, Any] = {}
    with GunicornProcess(app, worker_class, settings=config) as server:
        for name, target, headers in CASES:
            status, doc = ask(server, target.format(route=route), headers)
            # Gunicorn answers a SCRIPT_NAME that the path does not start with as a server
            # error (500); any other refusal is a 4xx.
            out[name] = (status, view(doc) if doc is not None else None)
    return out


@pytest.fixture(scope="module")
def reference() -> dict[tuple[str, str], dict[str, Any]]:
    """Gunicorn's own answers, computed once per (app, config) for every worker class."""
    return {}


def reference_answers(reference: dict[tuple[str, str], dict[str, Any]], app: str,
                      config_name: str) -> dict[str, Any]:
    key = (app, config_name)
    if key not in reference:
        reference[key] = answers(app, "sync" if app == WSGI_APP else "asgi",
                                 CONFIGS[config_name])
    return reference[key]


def assert_same(ours: dict[str, Any], theirs: dict[str, Any],
                only: Any = lambda case: True) -> None:
    differing = {name: {"ours": ours[name], "gunicorn": theirs[name]}
                 for name in ours if only(name) and ours[name] != theirs[name]}
    assert not differing, json.dumps(differing, indent=1)


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("app", APPS)
def test_app_sees_what_gunicorn_shows(worker_class: str, app: str, config_name: str,
                                      reference: dict[tuple[str, str], dict[str, Any]]
                                      ) -> None:
    """WSGI: our environ against `-k sync`'s; ASGI: our scope against `-k asgi`'s."""
    theirs = reference_answers(reference, app, config_name)
    ours = answers(app, worker_class, CONFIGS[config_name])
    assert_same(ours, theirs)


@pytest.mark.parametrize("app", APPS)
def test_untrusted_peer_gets_no_forwarder_exemption(
        worker_class: str, app: str, reference: dict[tuple[str, str], dict[str, Any]]) -> None:
    """forwarder_headers exempt underscored names only for peers in forwarded_allow_ips."""
    theirs = reference_answers(reference, app, "untrusted-refuse")
    ours = answers(app, worker_class, CONFIGS["untrusted-refuse"])
    assert_same(ours, theirs)


def test_the_cases_are_decided_both_ways(reference: dict[tuple[str, str], dict[str, Any]]
                                         ) -> None:
    """The corpus has teeth: Gunicorn itself answers these cases differently per config."""
    trusted = reference_answers(reference, WSGI_APP, "trusted")
    untrusted = reference_answers(reference, WSGI_APP, "untrusted")
    assert trusted["proto-https"][1]["wsgi.url_scheme"] == "https"
    assert untrusted["proto-https"][1]["wsgi.url_scheme"] == "http"
    assert trusted["conflict"][0] == 400 and untrusted["conflict"][0] == 200
