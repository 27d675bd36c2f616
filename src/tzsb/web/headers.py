"""A cap on the size of a request's header section, enforced where the bytes arrive.

uvicorn's httptools protocol accepts header sections of any size (200 KB went through), and its
``h11_max_incomplete_event_size`` applies to h11 only. This protocol counts a request's head (the
request line and the headers) as it is parsed; past ``max_header_bytes`` it answers 431 Request
Header Fields Too Large, closes the connection, and the request never reaches the application.

Two counts, because httptools hands over a header only once it has read all of it (buffering the
value meanwhile): the parsed request line and headers give the exact size; the raw bytes of a head
still incomplete when a read ends bound what a single endless header can make the parser hold.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES: Final = 16 * 1024
_MESSAGE: Final = "请求头过大 / Request header fields too large\n".encode()
# How long the rest of a refused request is read and dropped before the connection is closed.
LINGER_SECONDS: Final = 5.0
# ": " and CRLF around each header, as on the wire.
_HEADER_OVERHEAD: Final = 4


class HeaderLimitProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a hard limit on each request's header section."""

    def __init__(self, *args: Any, max_header_bytes: int = MAX_HEADER_BYTES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self._head_size = 0  # request line and headers parsed so far of the current request
        self._head_open = True  # the next bytes belong to a request head (so at the connection's start)
        self._head_raw = 0  # bytes of reads that ended inside the current, incomplete head
        self._message_ended = False
        self._refused = False
        self._refusal_waits = False
        self._linger: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the 431 is sent (or waits for earlier answers): the rest is read and dropped
            return
        head_open_before = self._head_open
        self._message_ended = False
        super().data_received(data)
        if self._refused or not (head_open_before and self._head_open) or self._message_ended:
            return
        # The whole read belonged to a head that is not complete yet.
        self._head_raw += len(data)
        if self._head_raw > self.max_header_bytes:
            self._refuse()

    def on_message_begin(self) -> None:
        self._head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._count(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count(len(name) + len(value) + _HEADER_OVERHEAD):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._head_open = False
        self._head_raw = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._head_open = True
        self._head_raw = 0
        self._message_ended = True
        super().on_message_complete()

    def _count(self, size: int) -> bool:
        """Count ``size`` bytes of the head; False (and the request refused) once it is over the limit."""
        if self._refused:
            return False
        self._head_size += size
        if self._head_size > self.max_header_bytes:
            self._refuse()
            return False
        return True

    def _refuse(self) -> None:
        self._refused = True
        if self._answering():
            # A pipelined request while earlier ones are still being answered: a status line now would
            # land inside their answers, so the 431 follows the last of them (on_response_complete).
            self._refusal_waits = True
            return
        self._send_refusal()

    def _answering(self) -> bool:
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal_waits and not self._answering() and not self.transport.is_closing():
            self._refusal_waits = False
            self._send_refusal()

    def _send_refusal(self) -> None:
        self._unset_keepalive_if_required()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_MESSAGE)).encode("ascii") + b"\r\n"
            b"connection: close\r\n"
            b"\r\n" + _MESSAGE
        )
        # Closing a socket with unread input makes the kernel answer with a reset, which destroys the
        # 431 at the client before it is read (seen with 200 KB of headers on loopback). So the answer
        # is followed by our end of the stream, and the rest of the request is read and dropped until
        # the client closes or LINGER_SECONDS pass.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)


def http_protocol(
    max_header_bytes: int = MAX_HEADER_BYTES, protocol: type[HeaderLimitProtocol] = HeaderLimitProtocol
) -> Callable[..., asyncio.Protocol]:
    """uvicorn's ``http`` option: ``protocol`` with the limit bound. A partial of a module-level class
    pickles, so the worker processes of ``--workers N`` receive it too."""
    return functools.partial(protocol, max_header_bytes=max_header_bytes)
