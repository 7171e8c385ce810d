"""The bytes that open every HTTP/2 connection, known without importing `h2`."""

# The client's connection preface (RFC 9113 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
