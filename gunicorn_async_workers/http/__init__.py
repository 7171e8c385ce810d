"""HTTP/1.1: the connection protocol, the parser adapters, response framing and errors."""
