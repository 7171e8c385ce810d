"""What goes into ASGI scopes besides the request itself: the `asgi` key, the path keys (for
HTTP and WebSocket scopes alike) and an HTTP scope's `extensions`."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..http.errors import BadRequest
from ..http.exchange import split_target

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .types import ASGIVersions, Extensions

# The scope's `asgi` key: the ASGI version apps are called with and the spec version served.
ASGI_VERSION: ASGIVersions = {"version": "3.0", "spec_version": "2.4"}

# The response extensions (asgiref's extensions.rst) every HTTP/1.1 request's scope offers:
# one dict shared by all of them, so a plaintext request pays nothing for it (apps read it;
# one that changes it changes it for every request). `asgi/http.py` serves them.
PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
HTTP_EXTENSIONS: Extensions = {PATHSEND: {}, ZEROCOPYSEND: {}, EARLY_HINT: {}}
# HTTP/1.0 has no interim responses (no 103) and no chunked coding (no trailers); an HTTP/2
# stream's body is framed by the stream, never sent as a file.
_HTTP10_EXTENSIONS: Extensions = {PATHSEND: {}, ZEROCOPYSEND: {}}
_HTTP2_EXTENSIONS: Extensions = {EARLY_HINT: {}}


def request_extensions(tls: Mapping[str, Mapping[str, object]] | None, http_version: str,
                       te_trailers: bool) -> Extensions:
    """An HTTP scope's `extensions` when they are not `HTTP_EXTENSIONS` as they are: with the
    connection's `tls`, less what HTTP/1.0 or HTTP/2 cannot carry, or with
    `http.response.trailers` for a request whose TE field takes trailers."""
    http10 = http_version == "1.0"
    extensions = dict(_HTTP10_EXTENSIONS if http10 else _HTTP2_EXTENSIONS
                      if http_version == "2" else HTTP_EXTENSIONS)
    if te_trailers and not http10:
        extensions[TRAILERS] = {}
    if tls is not None:
        extensions.update(tls)
    return extensions


def scope_path(target: bytes, method: str, root_path: str) -> tuple[str, bytes, bytes]:
    """(path, raw_path, query_string) of a scope for a request target.

    `path` is the target's path percent-decoded (UTF-8), with `root_path` in front unless
    it is there already: the proxy stripped the mount point, and ASGI paths include it.
    A byte that is not ASCII in the path is a bad request (the parsers refuse it first).
    The HTTP cycle inlines the usual case (origin-form, nothing to decode, no root_path)
    and calls this for the rest.
    """
    if target[:1] == b"/" and b"#" not in target:  # origin-form, the usual case
        raw_path, _, query = target.partition(b"?")
    else:
        raw_path, query = split_target(target, method)
    try:
        path = raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(f"non-ASCII byte in request target {raw_path[:100]!r}") from None
    if "%" in path:
        path = unquote(path)
    if root_path and not (path == root_path or path.startswith(root_path + "/")):
        path = root_path + path
    return path, raw_path, query
