"""Reads the usual HTTP/1.x request head and frames the usual response head, one call each;
declines anything else (compiled_head.c)."""

from collections.abc import Iterable
from typing import Any

def scan(
    data: bytes, limit_line: int, limit_fields: int, limit_field_size: int,
    decline: frozenset[bytes], scheme_headers: dict[bytes, bytes], /,
) -> tuple[int, str, bytes, str, list[tuple[bytes, bytes]], bytes | None, bool, int | None,
           str | None] | None:
    ...

def frame(
    status: int, line: bytes | None, headers: Iterable[tuple[bytes, bytes]], date_block: bytes,
    kinds: dict[bytes, int], framing: Any, head_request: bool, http10: bool, keep_alive: bool,
    body_length: int | None, /,
) -> bytes | None:
    ...
