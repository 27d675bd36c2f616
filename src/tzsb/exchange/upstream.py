"""The outgoing leg of a routed request: one POST to a provider over kept-alive connections.

asyncio connections read by httptools' response parser (the parser uvicorn reads requests with),
a pool per provider on each event loop. A routed request's handler on the event loop
(``tzsb.inline``) awaits the provider's answer there and the loop serves other requests meanwhile;
a caller in a thread (a PostgreSQL node's handler, a SOAP request) waits while ``inline``'s own
loop does the same for it (``inline.awaited``). One implementation for both, so that a timeout,
a retry or a dropped connection means the same wherever the request runs.

Not httpx: a routed request is one POST of a few hundred bytes with a fixed timeout and no
redirects, cookies or auth, and httpx's transport (httpcore's pool, its locks and events) cost
0.83–0.95 ms of CPU per request where a blocking ``http.client`` pool cost 0.36–0.40 ms (``/tmp``
micro-bench against one loopback server, the same body and answer). ``http.client`` in turn blocks
its thread for the whole call, so a routed request could not be served on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import quote, urlsplit

import httptools
import httpx

from tzsb import inline

#: Idle connections kept per provider; more requests at once open more, and the extra are closed.
MAX_IDLE: Final = 32


class UpstreamTimeout(Exception):
    """No (whole) answer within the timeout."""


class UpstreamUnreachable(Exception):
    """The connection could not be made or broke (the name of the error says how, in the names an
    operator knows from httpx: ConnectError, ReadError, RemoteProtocolError)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class AnswerTooLarge(Exception):
    """The answer is larger than the caller accepts."""


class _NotSent(Exception):
    """The request could not be written: the provider cannot have acted on it."""


class _Stray(Exception):
    """An answer nobody asked for."""


class _NoAnswer(Exception):
    """The request was written and the connection ended before the first byte of an answer: the
    provider may or may not have acted on it."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection to a provider, and the answer it is reading (httptools calls ``on_*``)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: The connection ended (or cannot carry a request: bytes came that nobody asked for).
        self.lost = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[Reply, bool]] | None = None
        self._max_bytes = 0
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._received = False
        self._headers_done = False
        #: The headers said where the body ends (Content-Length, chunked); else it ends with the connection.
        self._framed = False
        self._too_large = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def open(self) -> bool:
        """Whether the connection is still open as far as the loop has seen."""
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def unread(self) -> bool:
        """Whether bytes are waiting on the socket that the loop has not read yet: on an idle plain
        connection its end of file or an answer nobody asked for (urllib3 checks the same before
        reusing a connection); on TLS possibly only the session tickets a server sends after the
        handshake. ``poll``, not ``select``: a busy process has descriptors past select's 1,024."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        try:
            poller.register(sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        self.lost = True
        if self.transport is None:
            return
        try:
            self.transport.close()
        except RuntimeError:
            # Its loop is closed (a loop should outlive its pools: ``UpstreamPool.close`` first), and with
            # it the callback that closes the socket: shut down here, so that the provider sees the end;
            # the descriptor goes with the transport.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def exchange(self, request: bytes, max_bytes: int) -> asyncio.Future[tuple[Reply, bool]]:
        """Write ``request``; the future of its answer and whether the connection may be kept.
        Raises ``_NotSent`` if the request could not be written."""
        if not self.open():
            raise _NotSent
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._max_bytes, self._status, self._chunks, self._size = max_bytes, 0, [], 0
        self._received = self._headers_done = self._framed = self._too_large = False
        try:
            self.transport.write(request)
        except (OSError, RuntimeError):  # uvloop: the transport closed under the check
            self._answer = None
            raise _NotSent from None
        if self.transport.is_closing():  # the write failed at once (a reset the loop had not seen yet)
            self._answer = None
            raise _NotSent
        return self._answer

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # bytes nobody asked for: this connection cannot carry a request
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail(AnswerTooLarge() if self._too_large else UpstreamUnreachable("RemoteProtocolError"))

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost decides what the answer was

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._answer is None or self._answer.done():
            return
        if not self._received:
            # Closed without a word (RemoteProtocolError) or reset (ReadError), before any answer.
            self._fail(_NoAnswer("ReadError" if isinstance(exc, OSError) else "RemoteProtocolError"))
        elif exc is None and self._headers_done and not self._framed and self._status >= 200:
            self._finish(keep=False)  # an answer whose body ends with the connection (HTTP/1.0 style)
        else:  # hung up halfway through the answer
            self._fail(UpstreamUnreachable("ReadError" if isinstance(exc, OSError) else "RemoteProtocolError"))

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self._answer is None:  # a second answer in the bytes of the first: nobody asked for it
            raise _Stray

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            self._framed = True
            if value.strip().isdigit() and int(value) > self._max_bytes:
                self._too_large = True
                raise AnswerTooLarge
        elif name == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_bytes:
            self._too_large = True
            raise AnswerTooLarge
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # an interim answer (100 Continue): the answer follows
            self._status, self._chunks, self._size, self._headers_done, self._framed = 0, [], 0, False, False
            return
        self._finish(keep=self._parser.should_keep_alive())

    def _finish(self, *, keep: bool) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result((Reply(self._status, b"".join(self._chunks)), keep))

    def _fail(self, error: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()


class _Provider:
    """The idle connections to one provider URL on one event loop (used only from that loop's thread)."""

    def __init__(self, url: str, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        hostname = parts.hostname or ""
        self.host = hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")
        self.port = parts.port or (443 if https else 80)
        self.context = context if https else None
        # Never the user:password@ of a URL: the provider is not sent credentials it was not given.
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host_header += f":{parts.port}"
        target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe="/?=&%:@!$'()*+,;~")
        self.head = (
            f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: "
        ).encode("ascii")
        self.idle: list[_Connection] = []
        self.closed = False

    def request(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self.head, len(body), body)

    async def kept(self) -> _Connection | None:
        """An idle connection that can carry a request; those the provider has since closed, or on
        which bytes came that nobody asked for, are dropped. Bytes the loop has not read yet are
        first left to it for one turn: it closes a plain connection on them (``data_received``,
        ``connection_lost``), while TLS reads its session tickets and stays open."""
        while self.idle:
            connection = self.idle.pop()
            if connection.open() and connection.unread():
                await asyncio.sleep(0)
            if connection.open():
                return connection
            connection.close()
        return None

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self.context, server_hostname=self.host if self.context else None
        )
        return connection

    def keep(self, connection: _Connection) -> None:
        if not self.closed and len(self.idle) < MAX_IDLE:
            self.idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


class UpstreamPool:
    """POSTs to providers over kept-alive connections: one pool per provider URL and event loop;
    ``post`` may be called from any thread, or by a handler on the loop."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        """``context``: the trust for HTTPS providers; by default certifi's roots, as the node's
        other outgoing calls (httpx)."""
        self._lock = threading.Lock()
        self._pools: dict[asyncio.AbstractEventLoop, dict[str, _Provider]] = {}
        self._context = context

    def close(self) -> None:
        """Close the idle connections, and each connection out on a request when it comes back (on
        the loop that holds them, from whichever thread this is called)."""
        with self._lock:
            pools, self._pools = self._pools, {}
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, providers in pools.items():

            def close_all(providers: dict[str, _Provider] = providers) -> None:
                for provider in providers.values():
                    provider.close()

            if loop is running or loop.is_closed():
                close_all()  # (a closed loop's connections are shut down without it: ``_Connection.close``)
            else:
                try:
                    loop.call_soon_threadsafe(close_all)
                except RuntimeError:  # closed meanwhile
                    close_all()

    def _provider(self, url: str) -> _Provider:
        loop = asyncio.get_running_loop()
        providers = self._pools.get(loop)
        if providers is None:
            with self._lock:
                gone = [self._pools.pop(known) for known in list(self._pools) if known.is_closed()]
                providers = self._pools.setdefault(loop, {})
            for dropped in gone:  # the pools of loops closed meanwhile
                for idle in dropped.values():
                    idle.close()
        provider = providers.get(url)
        if provider is None:
            if url.startswith("https:") and self._context is None:
                # The same trust as the node's other outgoing calls (httpx: certifi's roots).
                self._context = httpx.create_ssl_context()
            provider = providers[url] = _Provider(url, self._context)
        return provider

    def post(self, url: str, body: bytes, *, timeout: float, max_bytes: int, idempotent: bool = False) -> Reply:
        """The provider's answer to one POST of ``body``. The whole exchange ends within ``timeout``
        seconds or raises ``UpstreamTimeout``; a connection that fails raises ``UpstreamUnreachable``;
        an answer over ``max_bytes`` raises ``AnswerTooLarge``.

        A kept connection that fails is replaced, within what is left of the timeout, only when the
        provider cannot have acted twice: the request could not be written, or ``idempotent`` (a
        query) and no byte of an answer came. A write (01/02/03) that was written and then met a
        closed connection is not sent again: the provider may have stored it; the caller is told
        the provider is unreachable and decides."""
        try:
            # Bounded for a caller in a thread, should inline's own loop ever stall: its timeout, and a margin.
            return inline.awaited(lambda: self._post(url, body, timeout, max_bytes, idempotent), timeout + 5)
        except TimeoutError:
            raise UpstreamTimeout from None

    async def _post(self, url: str, body: bytes, timeout: float, max_bytes: int, idempotent: bool) -> Reply:
        provider = self._provider(url)
        request = provider.request(body)
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                connection = await provider.kept()
                kept = connection is not None
                if connection is None:
                    connection = await provider.connect()
                try:
                    reply, keep = await connection.exchange(request, max_bytes)
                except (_NotSent, _NoAnswer) as failed:
                    connection.close()
                    if not kept:
                        raise _unreachable(failed) from None
                    if isinstance(failed, _NoAnswer) and not idempotent:
                        raise _unreachable(failed) from None
                    # The same signed body and random: a provider that did see it answers its first answer.
                    connection = await provider.connect()
                    try:
                        reply, keep = await connection.exchange(request, max_bytes)
                    except (_NotSent, _NoAnswer) as again:
                        raise _unreachable(again) from None
        except TimeoutError:
            if connection is not None:
                connection.close()
            raise UpstreamTimeout from None
        except OSError:  # the connection could not be made (refused, no such host, TLS refused)
            if connection is not None:
                connection.close()
            raise UpstreamUnreachable("ConnectError") from None
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        if keep:
            provider.keep(connection)
        else:
            connection.close()
        return reply


def _unreachable(failed: _NotSent | _NoAnswer) -> UpstreamUnreachable:
    return UpstreamUnreachable(failed.kind if isinstance(failed, _NoAnswer) else "ReadError")
