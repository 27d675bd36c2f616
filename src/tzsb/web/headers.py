"""A cap on the size of a request's header section, and time-outs on reading a request, enforced
where the bytes arrive.

uvicorn's httptools protocol accepts header sections of any size (200 KB went through), and its
``h11_max_incomplete_event_size`` applies to h11 only. This protocol counts a request's head (the
request line and the headers) as it is parsed; past ``max_header_bytes`` it answers 431 Request
Header Fields Too Large, closes the connection, and the request never reaches the application.

Two counts, because httptools hands over a header only once it has read all of it (buffering the
value meanwhile): the parsed request line and headers give the exact size; the raw bytes of a head
still incomplete when a read ends bound what a single endless header can make the parser hold.

uvicorn also waits for a request's head and body without end: 600 connections that sent half a
header and then a byte now and then were all still open after 20 s. So a head must be complete
within ``ReadTimeouts.head_seconds`` of its first byte (or of the connection's start), answered
408 and closed otherwise; and a body may not pause longer than ``ReadTimeouts.body_gap_seconds``
between two reads (nginx's client_body_timeout), closed otherwise. Between requests uvicorn's own
keep-alive time-out applies. Together with ``--limit-concurrency`` this bounds what slow senders
hold; production still belongs behind a reverse proxy (docs/security.md).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES: Final = 16 * 1024
_MESSAGE: Final = "请求头过大 / Request header fields too large\n".encode()
_TIMEOUT_MESSAGE: Final = "请求发送超时，请重新发送 / Request not sent in time; send it again\n".encode()
# How long the rest of a refused request is read and dropped before the connection is closed.
LINGER_SECONDS: Final = 5.0
# ": " and CRLF around each header, as on the wire.
_HEADER_OVERHEAD: Final = 4


@dataclass(frozen=True, slots=True)
class ReadTimeouts:
    """How long a client may take to send a request: its whole head, and each pause in its body."""

    head_seconds: float = 10.0
    body_gap_seconds: float = 30.0


DEFAULT_TIMEOUTS: Final = ReadTimeouts()


class HeaderLimitProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a hard limit on each request's header section and time-outs
    on reading each request."""

    def __init__(
        self,
        *args: Any,
        max_header_bytes: int = MAX_HEADER_BYTES,
        timeouts: ReadTimeouts = DEFAULT_TIMEOUTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.timeouts = timeouts
        self._read_timer: asyncio.TimerHandle | None = None  # the head's deadline, or the body's next read
        self._head_size = 0  # request line and headers parsed so far of the current request
        self._head_open = True  # the next bytes belong to a request head (so at the connection's start)
        self._head_raw = 0  # bytes of reads that ended inside the current, incomplete head
        self._message_ended = False
        self._refused = False
        self._refusal_waits = False
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm(self.timeouts.head_seconds, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the 431 is sent (or waits for earlier answers): the rest is read and dropped
            return
        if self._head_open and self._read_timer is None:
            # The first bytes of the next request on a kept-alive connection: its head's clock starts.
            self._arm(self.timeouts.head_seconds, self._head_timed_out)
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
        self._arm(self.timeouts.body_gap_seconds, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._arm(self.timeouts.body_gap_seconds, self._body_timed_out)
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
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

    def _arm(self, seconds: float, handler: Callable[[], None]) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _head_timed_out(self) -> None:
        self._read_timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._answering():
            # Earlier requests of this connection are still being answered; the next head's time counts
            # from when the node is ready to read it.
            self._arm(self.timeouts.head_seconds, self._head_timed_out)
            return
        self._refused = True
        if self._head_raw or self._head_size:
            self._send_refusal(b"408 Request Timeout", _TIMEOUT_MESSAGE)
        else:  # not a byte of a request: nothing to answer
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The node stopped reading (the application has not taken the body so far): not the client's pause.
            self._arm(self.timeouts.body_gap_seconds, self._body_timed_out)
            return
        # The application is already waiting for this body: it sees the client disconnect and answers nothing.
        self._refused = True
        self.transport.close()

    def _send_refusal(self, status: bytes = b"431 Request Header Fields Too Large", message: bytes = _MESSAGE) -> None:
        self._disarm()
        self._unset_keepalive_if_required()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode("ascii") + b"\r\n"
            b"connection: close\r\n"
            b"\r\n" + message
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
        self._disarm()
        super().connection_lost(exc)


def http_protocol(
    max_header_bytes: int = MAX_HEADER_BYTES,
    protocol: type[HeaderLimitProtocol] = HeaderLimitProtocol,
    timeouts: ReadTimeouts = DEFAULT_TIMEOUTS,
) -> Callable[..., asyncio.Protocol]:
    """uvicorn's ``http`` option: ``protocol`` with the limit and time-outs bound. A partial of a
    module-level class pickles, so the worker processes of ``--workers N`` receive it too."""
    return functools.partial(protocol, max_header_bytes=max_header_bytes, timeouts=timeouts)
