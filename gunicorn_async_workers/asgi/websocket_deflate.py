"""permessage-deflate (RFC 7692) as WebSocket sessions offer it: the `websockets` library's
negotiation, built once per worker from the `ws_deflate_*` options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from websockets.exceptions import NegotiationError
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

if TYPE_CHECKING:
    from websockets.extensions.base import Extension
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.typing import ExtensionParameter

    from ..config import OptionValue


class DeflateFactory(ServerPerMessageDeflateFactory):
    """The library's permessage-deflate negotiation, declining an offer of
    `server_max_window_bits=8` (zlib cannot compress raw deflate with an 8-bit window), so that
    the client's next offer is taken. websockets 17 declines it itself; 13-16 accept it and
    fail building the compressor, which would answer the upgrade 500."""

    def process_request_params(self, params: Sequence[ExtensionParameter],
                               accepted_extensions: Sequence[Extension]
                               ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        if any(name == "server_max_window_bits" and value == "8" for name, value in params):
            raise NegotiationError("unsupported server_max_window_bits = 8, use 9")
        return super().process_request_params(params, accepted_extensions)


_deflate: tuple[Mapping[str, OptionValue],
                list[ServerPerMessageDeflateFactory] | None] | None = None


def deflate_extensions(options: Mapping[str, OptionValue]
                       ) -> list[ServerPerMessageDeflateFactory] | None:
    """The extensions a session offers, built once per worker from its options: the library
    negotiates permessage-deflate with them as RFC 7692 says (a client's smaller
    `server_max_window_bits` is honoured; `client_max_window_bits` is asked only of a client
    that offers it)."""
    global _deflate
    if _deflate is not None and _deflate[0] is options:
        return _deflate[1]
    factories: list[ServerPerMessageDeflateFactory] | None = None
    if options["ws_per_message_deflate"]:
        server_bits, client_bits, memory, level = (
            int(options[f"ws_deflate_{name}"])
            for name in ("server_max_window_bits", "client_max_window_bits", "memory_level",
                         "compression_level"))
        factories = [DeflateFactory(
            server_max_window_bits=server_bits, client_max_window_bits=client_bits,
            compress_settings={"memLevel": memory, "level": level})]
    _deflate = (options, factories)
    return factories
