"""The outgoing leg of a routed request: one POST to a provider over kept-alive connections.

The standard library's ``http.client`` with a small pool per provider, instead of httpx: a routed
request is one POST of a few hundred bytes with a fixed timeout and no redirects, cookies or auth,
and httpx's transport (httpcore's pool, its locks and events) cost 0.83–0.95 ms of CPU per request
where ``http.client`` costs 0.36–0.40 ms (``/tmp`` micro-bench against one loopback server, the
same body and answer); in the routing node's profile under wrk the outgoing call was 18 % of the
time the process held the GIL.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx

#: Idle connections kept per provider; more requests at once open more, and the extra are closed.
MAX_IDLE: Final = 32
_CHUNK: Final = 256 * 1024


class UpstreamTimeout(Exception):
    """No (whole) answer within the timeout."""


class UpstreamUnreachable(Exception):
    """The connection could not be made or broke (the name of the error says how)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class AnswerTooLarge(Exception):
    """The answer is larger than the caller accepts."""


class _NotSent(Exception):
    """The request could not be written: the provider cannot have acted on it."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _NoAnswer(Exception):
    """The request was written and the connection ended before the first byte of an answer: the
    provider may or may not have acted on it."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


class _Provider:
    """The idle connections to one origin (scheme, host, port)."""

    def __init__(self, url: str, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Never the user:password@ of a URL: the provider is not sent credentials it was not given.
        self.host_header = parts.netloc.rpartition("@")[2]
        self.context = context
        self.lock = threading.Lock()
        self.idle: list[http.client.HTTPConnection] = []
        self.closed = False

    def connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was kept from an earlier request. A kept connection the
        provider has since closed (readable while idle: its end of file, or bytes nobody asked
        for) is dropped here, before a request is written to it."""
        while True:
            with self.lock:
                kept = self.idle.pop() if self.idle else None
            if kept is None:
                return self.fresh(timeout), False
            if kept.sock is None or _dropped(kept.sock):
                kept.close()
                continue
            kept.timeout = timeout
            kept.sock.settimeout(timeout)
            return kept, True

    def fresh(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def keep(self, connection: http.client.HTTPConnection) -> None:
        with self.lock:
            if not self.closed and len(self.idle) < MAX_IDLE:
                self.idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: a closed end, or an answer nobody asked
    for (bytes TLS has already buffered included). Either way it cannot carry a request (urllib3
    checks the same before reusing one). ``poll``, not ``select``: a busy process has descriptors
    past select's 1,024."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class UpstreamPool:
    """POSTs to providers over kept-alive connections, one pool per provider URL; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._providers: dict[str, _Provider] = {}
        self._context: ssl.SSLContext | None = None

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            provider.close()

    def _provider(self, url: str) -> _Provider:
        provider = self._providers.get(url)
        if provider is None:
            with self._lock:
                provider = self._providers.get(url)
                if provider is None:
                    if url.startswith("https:") and self._context is None:
                        # The same trust as the node's other outgoing calls (httpx: certifi's roots).
                        self._context = httpx.create_ssl_context()
                    provider = self._providers[url] = _Provider(url, self._context)
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
        provider = self._provider(url)
        deadline = time.monotonic() + timeout
        connection, kept = provider.connection(timeout)
        try:
            try:
                reply, keep = self._exchange(provider, connection, body, deadline, max_bytes)
            except (_NotSent, _NoAnswer) as failed:
                connection.close()
                remaining = deadline - time.monotonic()
                if not kept or (isinstance(failed, _NoAnswer) and not idempotent):
                    raise failed.cause from None
                if remaining <= 0:
                    raise TimeoutError from None
                # The same signed body and random: a provider that did see it answers its first answer.
                connection = provider.fresh(remaining)
                try:
                    reply, keep = self._exchange(provider, connection, body, deadline, max_bytes)
                except (_NotSent, _NoAnswer) as again:
                    raise again.cause from None
        except TimeoutError:
            connection.close()
            raise UpstreamTimeout from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise UpstreamUnreachable(_kind(exc)) from None
        except BaseException:
            connection.close()
            raise
        if keep:
            provider.keep(connection)
        else:
            connection.close()
        return reply

    @staticmethod
    def _exchange(
        provider: _Provider, connection: http.client.HTTPConnection, body: bytes, deadline: float, max_bytes: int
    ) -> tuple[Reply, bool]:
        connection.putrequest("POST", provider.target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", provider.host_header)
        connection.putheader("Content-Type", "application/json; charset=utf-8")
        connection.putheader("Content-Length", str(len(body)))
        try:
            connection.endheaders(body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _NotSent(exc) from None
        if connection.sock is not None:  # the answer within what is left of the timeout
            connection.sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            raise _NoAnswer(exc) from None
        length = response.getheader("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise AnswerTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            # read1: what one read brings, so that a provider dripping its answer meets the deadline.
            chunk = response.read1(_CHUNK) if response.length != 0 else b""
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise AnswerTooLarge
            chunks.append(chunk)
        if response.length:  # the provider hung up before the length it announced
            raise http.client.IncompleteRead(b"".join(chunks), response.length)
        keep = not response.will_close
        response.close()  # read to its end: the connection may carry the next request
        return Reply(response.status, b"".join(chunks)), keep


def _kind(exc: BaseException) -> str:
    """How a connection failed, in the names an operator knows (as httpx named them)."""
    if isinstance(exc, ConnectionRefusedError | socket.gaierror) or (
        isinstance(exc, OSError) and not isinstance(exc, ConnectionError | http.client.HTTPException)
    ):
        return "ConnectError"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "RemoteProtocolError"
    if isinstance(exc, http.client.HTTPException):
        return "RemoteProtocolError"
    return "ReadError"
