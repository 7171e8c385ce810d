"""Flow control the stdlib socket transport skips on `writelines` (its private API, here only).

CPython's `asyncio.selector_events._SelectorSocketTransport.writelines` in 3.12 and 3.13 (at
least 3.12.1 and 3.13.0, which CI runs) queues the data without checking the write buffer
against its high-water mark, so `pause_writing()` never comes: an app streaming to a client
that does not read would fill memory without end. After each `writelines` the protocol calls
the transport's own check, `_maybe_pause_protocol()`; where `writelines` already made it
(3.10 and 3.11 join the pieces and `write` them), it finds the protocol paused or the buffer
low and does nothing. uvloop's transports and the stdlib's TLS transport do their own flow
control and are left alone. tests/integration (the never-reading clients of test_wsgi,
test_websocket and test_hostile_clients) show it on every Python version CI runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


def high_water_check(transport: asyncio.BaseTransport) -> Callable[[], None] | None:
    """The check to call after `transport.writelines`, or None where none is needed."""
    if type(transport).__name__ != "_SelectorSocketTransport":
        return None
    check = getattr(transport, "_maybe_pause_protocol", None)
    return check if callable(check) else None
