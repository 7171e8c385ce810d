"""Reads the usual HTTP/1.x request head in one call, or declines it (compiled_head.c)."""

def scan(
    data: bytes, limit_line: int, limit_fields: int, limit_field_size: int,
    decline: frozenset[bytes], /,
) -> tuple[int, str, bytes, str, list[tuple[bytes, bytes]], bytes | None, bool, int | None] | None:
    ...
