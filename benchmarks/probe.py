"""Check that a running server answers each workload's request correctly before it is measured."""

from __future__ import annotations

import http.client

from benchmarks.workloads import Workload


def problem(workload: Workload, host: str, port: int, timeout: float = 10.0) -> str | None:
    """Send the workload's request once; None if the response is right, else what is wrong."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if workload.request_body else {}
        connection.request(
            workload.method, workload.path, body=workload.request_body or None, headers=headers
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"{workload.method} {workload.path}: {type(error).__name__}: {error}"
    finally:
        connection.close()
    return _compare(workload, response, body)


def _compare(workload: Workload, response: http.client.HTTPResponse, body: bytes) -> str | None:
    where = f"{workload.method} {workload.path}"
    expected = workload.expected
    if response.status != 200:
        return f"{where}: status {response.status} {body[:200]!r}"
    content_type = response.getheader("content-type", "")
    if not content_type.startswith(expected.content_type):
        return f"{where}: content-type {content_type!r}, expected {expected.content_type!r}"
    if expected.body is not None and body != expected.body:
        return f"{where}: body {body[:60]!r}… ({len(body)} bytes) differs from the expected one"
    if expected.length is not None and len(body) != expected.length:
        return f"{where}: body of {len(body)} bytes, expected {expected.length}"
    if expected.chunked:
        encoding = (response.getheader("transfer-encoding") or "").lower()
        if "chunked" not in encoding or response.getheader("content-length") is not None:
            return f"{where}: expected a chunked response without content-length"
    return None
