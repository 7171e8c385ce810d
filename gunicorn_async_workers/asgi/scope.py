"""What the ASGI HTTP and WebSocket scopes share: the `asgi` key and the path keys."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..http.errors import BadRequest
from ..http.exchange import split_target

if TYPE_CHECKING:
    from .types import ASGIVersions

# The scope's `asgi` key: the ASGI version apps are called with and the spec version served.
ASGI_VERSION: ASGIVersions = {"version": "3.0", "spec_version": "2.4"}


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
