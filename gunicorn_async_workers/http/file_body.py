"""A response body read from a file (ASGI's `pathsend` and `zerocopysend` extensions).

The file's bytes go out with the loop's `sendfile`, the kernel copying them to the socket,
where the loop has one and the socket is plaintext (`loop_sendfile_usable`); elsewhere in
pieces of `PIECE` bytes read in a thread, each written once the transport has room again,
so memory stays bounded whatever the file's size. The head is framed from the file's size
when the app gave no Content-Length. A file that cannot be sent as announced is refused
before the head (the exchange answers 500); one that fails or ends early after the head
leaves the caller to cut the connection: never a short body under a full Content-Length.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from typing import TYPE_CHECKING

from .exchange import ClientDisconnected
from .response import CRLF, Framing, ResponseError, frame_response_head

if TYPE_CHECKING:
    from ..config import ServerConfig
    from .exchange import Exchange
    from .seams import RequestConnection

# Bytes read per piece where the loop's sendfile is not used: a 100 MB file is 400 reads in
# a thread, and a client that does not read holds at most one piece beyond the transport's
# high-water mark.
PIECE = 256 * 1024


class FileEndedEarly(OSError):
    """The file had fewer bytes than its part of the response announced (it shrank while
    it was sent)."""


def loop_sendfile_usable(loop: asyncio.AbstractEventLoop, config: ServerConfig) -> bool:
    """Whether file bodies go out with `loop.sendfile` (os.sendfile): the stdlib loop has it
    and uvloop has none; never over TLS (the kernel would send the bytes unencrypted; the
    stdlib loop would read them in 16 KiB pieces itself), nor with Gunicorn's `sendfile`
    setting off."""
    native = type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile
    return config.sendfile and not config.is_ssl and native and hasattr(os, "sendfile")


def open_regular_file(path: str) -> tuple[int, int]:
    """(descriptor, size) of a regular file opened for reading. OSError when it cannot be
    opened or is no regular file (O_NONBLOCK: a FIFO does not block the opening thread)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.EINVAL,
                          "not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


async def open_file(loop: asyncio.AbstractEventLoop, path: str) -> tuple[int, int]:
    """`open_regular_file` in a thread (opening may wait on a slow disk or network file
    system). A descriptor opened after the caller was cancelled is closed, not leaked."""
    opening = loop.run_in_executor(None, open_regular_file, path)
    try:
        return await opening
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[tuple[int, int]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result()[0])


def file_range(file: object, offset: object, count: object) -> tuple[int, int, int]:
    """(descriptor, offset, count) of a `zerocopysend` message: its `file` (a descriptor, or
    an object with `fileno()`), from `offset` or the file's position, `count` bytes or to the
    file's end. ResponseError when the file is no regular file or the range is not in it."""
    try:
        if type(file) is int:
            fd = file
        else:
            fileno = getattr(file, "fileno", None)
            if fileno is None:
                raise TypeError("it has no fileno()")
            fd = fileno()
            if type(fd) is not int:
                raise TypeError(f"its fileno() gave {fd!r}")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ResponseError(f"zerocopysend needs a regular file, got {file!r:.100}")
        if offset is None:
            # A Python file object's position counts what it has buffered ahead.
            tell = getattr(file, "tell", None)
            offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, TypeError, ValueError, OSError) as exc:
        raise ResponseError(f"zerocopysend needs an open file descriptor or file object, "
                            f"got {file!r:.100}: {exc}") from None
    if type(offset) is not int or offset < 0:
        raise ResponseError(f"zerocopysend offset must be an int >= 0, got {offset!r:.40}")
    if count is None:
        count = max(0, info.st_size - offset)
    elif type(count) is not int or count < 0:
        raise ResponseError(f"zerocopysend count must be an int >= 0, got {count!r:.40}")
    if offset + count > info.st_size:
        raise ResponseError(f"zerocopysend of {count} bytes from offset {offset} goes past "
                            f"the end of the file ({info.st_size} bytes)")
    return fd, offset, count


def set_position(file: object, fd: int, position: int) -> None:
    """Leave a `zerocopysend` file at `position`, past what was sent (as `loop.sendfile`
    leaves a file), through the file object when there is one (it drops its buffer)."""
    seek = getattr(file, "seek", None) if type(file) is not int else None
    if seek is not None:
        seek(position)
    else:
        os.lseek(fd, position, os.SEEK_SET)


def _frame_file_head(exchange: Exchange, count: int, more: bool, exact: bool) -> bytes:
    """The head before a file part that starts the body (`Exchange.write_head` frames the
    same for bytes): `count` is the whole body's length unless `more` follows. ResponseError
    when the app's Content-Length cannot hold the part, or (`exact`, a whole file) differs
    from it."""
    protocol = exchange.protocol
    framing = Framing()
    head = frame_response_head(
        exchange.status, exchange.headers, protocol.date, framing,
        head_request=exchange.head_request, http10=exchange.http10,
        keep_alive=exchange.keep_alive and protocol.may_keep_alive,
        body_length=None if more else count)
    length = framing.content_length
    if length is not None and not framing.no_body:
        if count > length or (exact and count != length):
            raise ResponseError(f"the response's content-length is {length}, its file "
                                f"{count} bytes")
        exchange.remaining = length
    exchange.framing = framing
    exchange.keep_alive = framing.keep_alive
    return head


async def send_file_part(exchange: Exchange, fd: int, offset: int, count: int, *, more: bool,
                         native: bool, exact: bool = False) -> None:
    """Send `count` bytes of the file `fd` from `offset` as the next part of an exchange's
    response body (the head first, if this part starts the body; a chunk when the body is
    chunked). `native`: with the loop's sendfile (see `loop_sendfile_usable`). Raises
    ResponseError before anything is written for a part the head cannot frame;
    ClientDisconnected when the client went away; FileEndedEarly or the file's OSError
    when the file failed mid-way (the caller cuts the connection)."""
    protocol = exchange.protocol
    if protocol.closing:
        raise ClientDisconnected("client disconnected")
    head = b"" if exchange.framing is not None else _frame_file_head(exchange, count, more,
                                                                       exact)
    framing = exchange.framing
    assert framing is not None
    if framing.no_body or not count:
        if head:
            protocol.write(head)
        return
    remaining = exchange.remaining
    if remaining is not None:
        if count > remaining:
            raise ResponseError("response body is longer than its content-length")
        exchange.remaining = remaining - count
    if framing.chunked:
        head += b"%x\r\n" % count
    protocol.write(head)
    if native:
        sent = await _sendfile(protocol, fd, offset, count)
    else:
        sent = await _send_pieces(protocol, fd, offset, count)
    exchange.bytes_sent += sent
    if sent < count:
        raise FileEndedEarly(f"the file ended {count - sent} bytes before the {count} bytes "
                             "announced")
    if framing.chunked:
        protocol.write(CRLF)


async def _sendfile(protocol: RequestConnection, fd: int, offset: int, count: int) -> int:
    """The loop's sendfile (it waits for the transport's buffer to empty, then lets the
    kernel copy the file while the socket takes it): the bytes sent."""
    # The loop's sendfile takes a file object; this one leaves the descriptor open.
    with open(fd, "rb", buffering=0, closefd=False) as file:
        try:
            return await protocol.sendfile(file, offset, count)
        except ConnectionError:
            raise ClientDisconnected("client disconnected") from None


async def _send_pieces(protocol: RequestConnection, fd: int, offset: int, count: int) -> int:
    """The file in pieces read in a thread, each read only once the transport has room (its
    pause_writing/resume_writing): the bytes sent."""
    loop = protocol.loop
    sent = 0
    while sent < count:
        if protocol.write_paused:
            await protocol.drain()
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        piece = await loop.run_in_executor(None, os.pread, fd, min(PIECE, count - sent),
                                           offset + sent)
        if not piece:
            break
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        protocol.write(piece)
        sent += len(piece)
    return sent
