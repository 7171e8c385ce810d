"""Request errors that carry their own HTTP answer, and the one function that frames it.

Every way a client's request can be refused is one exception class holding its status;
the protocol never maps errors to statuses with an ``isinstance`` ladder.
"""

from __future__ import annotations


class RequestError(Exception):
    """A client's request that is refused before it reaches the application."""

    status: int = 400
    reason: str = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(RequestError):
    """Malformed syntax, smuggling attempts, or a header Gunicorn's policy refuses."""


class Forbidden(RequestError):
    """A PROXY header from a peer that is not in `proxy_allow_ips`."""

    status = 403
    reason = "Forbidden"


class RequestLineTooLong(RequestError):
    """The request line exceeds ``limit_request_line``."""

    status = 414
    reason = "URI Too Long"


class HeadersTooLarge(RequestError):
    """Too many header fields, or one field larger than ``limit_request_field_size``."""

    status = 431
    reason = "Request Header Fields Too Large"


class ContentTooLarge(RequestError):
    """A request body larger than our `max_body_size` option."""

    status = 413
    reason = "Content Too Large"


class ExpectationFailed(RequestError):
    """An ``Expect`` value other than ``100-continue``."""

    status = 417
    reason = "Expectation Failed"


class UnsupportedTransferCoding(RequestError):
    """A transfer coding other than `chunked` (RFC 9112 6.1: one the server does not
    implement is answered 501)."""

    status = 501
    reason = "Not Implemented"


def error_body(error: RequestError) -> bytes:
    """The body of a refused request's answer (HTTP/1.1's and HTTP/2's)."""
    return f"{error.reason}\n".encode()


def error_response(error: RequestError) -> bytes:
    """The complete response for a refused request; the connection is closed after it."""
    body = error_body(error)
    return (
        f"HTTP/1.1 {error.status} {error.reason}\r\n"
        f"content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        f"connection: close\r\n\r\n"
    ).encode("latin-1") + body
