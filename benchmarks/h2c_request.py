"""One GET over cleartext HTTP/2 with prior knowledge (the `h2` library as the client): how the
suite checks that a server started for the h2 workloads is ready and answers right."""

from __future__ import annotations

import socket
from dataclasses import dataclass


class H2RequestError(RuntimeError):
    """The server closed, reset the stream or refused HTTP/2 before the response ended."""


@dataclass(frozen=True)
class H2Response:
    """A complete response: status, headers (names lower-case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def get(host: str, port: int, path: str, timeout: float) -> H2Response:
    """Send the connection preface and `GET path` on stream 1; read until that stream ends."""
    # imported here: `python -m benchmarks` imports the suite before it has made the venv
    # that holds h2 (benchmarks/requirements.txt)
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    connection = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    connection.initiate_connection()
    connection.send_headers(
        1,
        [(":method", "GET"), (":path", path), (":scheme", "http"),
         (":authority", f"{host}:{port}")],
        end_stream=True,
    )
    status, headers, body = 0, {}, bytearray()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(connection.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                raise H2RequestError("the server closed the connection before the response ended")
            try:
                events = connection.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                raise H2RequestError(f"not an HTTP/2 answer: {error}") from error
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    headers = {str(k): str(v) for k, v in event.headers or ()}
                    status = int(headers.pop(":status", "0"))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    connection.acknowledge_received_data(event.flow_controlled_length or 0, 1)
                elif isinstance(event, h2.events.StreamReset):
                    raise H2RequestError(f"stream reset with error code {event.error_code}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise H2RequestError(f"GOAWAY with error code {event.error_code}")
                elif isinstance(event, h2.events.StreamEnded):
                    connection.close_connection()
                    sock.sendall(connection.data_to_send())
                    return H2Response(status, headers, bytes(body))
            sock.sendall(connection.data_to_send())
