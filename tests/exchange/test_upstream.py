"""The outgoing leg's connection pool against a real socket server on loopback: connections are kept
and reused, a kept connection the provider closed is replaced, and the timeout, size limit and
connection failures end the exchange with the error the routing names. Each test runs twice: called
from a thread (the pool runs on ``inline``'s own loop) and by a handler on a served node's kind of
event loop (uvloop, ``inline.run_on_loop``)."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.sync.nodes import free_port
from tests.web.test_tls import issue
from tzsb import inline
from tzsb.exchange.upstream import (
    AnswerTooLarge,
    Reply,
    UpstreamPool,
    UpstreamTimeout,
    UpstreamUnreachable,
    _Provider,
)

Behaviour = Callable[[socket.socket, bytes], bool]


class RawServer:
    """Answers each request on a connection by ``behaviour(connection, request)``; it returns whether
    to keep the connection open. Counts connections accepted."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        #: Released each time the server has closed a connection (tests wait on it, not on a sleep).
        self.closed = threading.Semaphore(0)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/tzsb/exchange"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            self._exchange(connection)
        finally:
            self.closed.release()

    def _exchange(self, connection: socket.socket) -> None:
        with connection:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, rest = buffered.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(rest) < length:
                    rest += connection.recv(65536)
                buffered = rest[length:]
                if not self.behaviour(connection, head + b"\r\n\r\n" + rest[:length]):
                    return

    def close(self) -> None:
        self.listener.close()


def answer(body: bytes, *extra: str) -> bytes:
    headers = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def answering(seen: list[bytes], body: bytes = b"{}") -> Behaviour:
    """Answers every request with ``body`` on a kept connection, noting each request in ``seen``."""

    def behaviour(connection: socket.socket, request: bytes) -> bool:
        seen.append(request)
        connection.sendall(answer(body))
        return True

    return behaviour


class Caller:
    """Calls ``UpstreamPool.post`` from this thread, or from a handler on an event loop of its own."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.upstream = UpstreamPool()
        self.loop = loop

    def trusting(self, ca: Path) -> None:
        """Trust the test CA for HTTPS providers (a fresh pool)."""
        self.upstream.close()
        self.upstream = UpstreamPool(ssl.create_default_context(cafile=str(ca)))

    def post(self, url: str, body: bytes, **options: Any) -> Reply:
        if self.loop is None:
            return self.upstream.post(url, body, **options)

        async def on_loop() -> Reply:
            return await inline.run_on_loop(lambda: self.upstream.post(url, body, **options))

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result(30)

    def close(self) -> None:
        self.upstream.close()


@pytest.fixture(params=["from-a-thread", "on-the-loop"])
def pool(request: pytest.FixtureRequest) -> Iterator[Caller]:
    if request.param == "from-a-thread":
        caller = Caller(None)
        yield caller
        caller.close()
        return
    loop = uvloop.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    caller = Caller(loop)
    try:
        yield caller
    finally:
        caller.close()
        # A turn of the loop for the connections to close before it stops.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def serve(behaviour: Behaviour) -> Iterator[RawServer]:
    server = RawServer(behaviour)
    yield server
    server.close()


def test_connections_are_kept_and_the_request_is_sent_whole(pool: Caller) -> None:
    seen: list[bytes] = []
    for server in serve(answering(seen, b'{"ok":1}')):
        replies = [pool.post(server.url, b'{"n":%d}' % n, timeout=5, max_bytes=1000) for n in range(3)]
        assert [(reply.status, reply.body) for reply in replies] == [(200, b'{"ok":1}')] * 3
        assert server.connections == 1
        assert seen[0].startswith(b"POST /tzsb/exchange HTTP/1.1\r\n")
        assert b"\r\nContent-Type: application/json; charset=utf-8\r\n" in seen[0]
        assert seen[2].endswith(b'\r\n\r\n{"n":2}')


def test_a_kept_connection_the_provider_closed_is_replaced(pool: Caller) -> None:
    def once_per_connection(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(answer(b"{}"))
        return False  # closes without saying so (no Connection: close)

    for server in serve(once_per_connection):
        for _ in range(3):
            assert pool.post(server.url, b"{}", timeout=5, max_bytes=1000).status == 200
            assert server.closed.acquire(timeout=5)  # the provider has closed the kept connection
            time.sleep(0.01)  # and its end reached this side over loopback
        assert server.connections == 3


def test_connection_close_is_honoured(pool: Caller) -> None:
    def closing(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(answer(b"{}", "Connection: close"))
        return False

    for server in serve(closing):
        for _ in range(2):
            assert pool.post(server.url, b"{}", timeout=5, max_bytes=1000).status == 200
        assert server.connections == 2


def test_a_provider_silent_past_the_timeout(pool: Caller) -> None:
    def silent(connection: socket.socket, request: bytes) -> bool:
        time.sleep(2)
        return False

    for server in serve(silent):
        began = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            pool.post(server.url, b"{}", timeout=0.5, max_bytes=1000)
        assert time.monotonic() - began < 1.5


def test_a_provider_dripping_its_answer_past_the_timeout(pool: Caller) -> None:
    def dripping(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            time.sleep(0.1)
            try:
                connection.sendall(b"x")
            except OSError:
                return False
        return False

    for server in serve(dripping):
        began = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            pool.post(server.url, b"{}", timeout=0.5, max_bytes=1000)
        assert time.monotonic() - began < 1.5


@pytest.mark.parametrize("declared", [True, False])
def test_an_answer_over_the_limit_is_not_read(pool: Caller, declared: bool) -> None:
    def large(connection: socket.socket, request: bytes) -> bool:
        body = b"x" * 5000
        if declared:
            connection.sendall(answer(body))
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            connection.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        return True

    for server in serve(large):
        with pytest.raises(AnswerTooLarge):
            pool.post(server.url, b"{}", timeout=5, max_bytes=1000)


def test_nothing_listening_is_a_connect_error(pool: Caller) -> None:
    with pytest.raises(UpstreamUnreachable) as failed:
        pool.post(f"http://127.0.0.1:{free_port()}/tzsb/exchange", b"{}", timeout=2, max_bytes=1000)
    assert failed.value.kind == "ConnectError"


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # hangs up without answering
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40,  # hangs up halfway through
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",  # talks another protocol
    ],
    ids=["hangs-up", "halfway", "nonsense"],
)
def test_a_provider_that_breaks_the_protocol(pool: Caller, sent: bytes) -> None:
    def breaking(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(sent)
        return False

    for server in serve(breaking):
        with pytest.raises(UpstreamUnreachable) as failed:
            pool.post(server.url, b"{}", timeout=2, max_bytes=1000)
        assert failed.value.kind == "RemoteProtocolError"


def test_https_with_an_untrusted_certificate_is_refused(pool: Caller, tmp_path: Path) -> None:
    """TLS to a provider whose certificate no trusted root signed: the handshake fails, nothing is sent."""
    credentials = issue(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(credentials.server_cert, credentials.server_key)
    received: list[bytes] = []

    def serve_tls(listener: socket.socket) -> None:
        connection, _ = listener.accept()
        with connection:
            try:
                with context.wrap_socket(connection, server_side=True) as wrapped:
                    received.append(wrapped.recv(65536))
            except (ssl.SSLError, OSError):
                pass

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=serve_tls, args=(listener,), daemon=True).start()
        with pytest.raises(UpstreamUnreachable) as failed:
            pool.post(f"https://127.0.0.1:{listener.getsockname()[1]}/x", b"{}", timeout=5, max_bytes=1000)
    assert failed.value.kind == "ConnectError" and received == []


def test_credentials_in_the_url_are_not_sent_as_the_host(pool: Caller) -> None:
    seen: list[bytes] = []
    for server in serve(answering(seen)):
        url = server.url.replace("http://", "http://user:secret@")
        assert pool.post(url, b"{}", timeout=5, max_bytes=1000).status == 200
        port = server.url.split(":")[2].split("/")[0]
        assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in seen[0]
        assert b"secret" not in seen[0]


def test_a_write_taken_and_not_answered_is_not_sent_again(pool: Caller) -> None:
    """The request was written to a kept connection and the provider hung up before any answer (as
    a provider that stored a record and crashed): a write (01/02/03) may have been stored, so it is
    not sent a second time; the caller is told the provider is unreachable."""
    requests: list[bytes] = []

    def answers_only_the_first(connection: socket.socket, request: bytes) -> bool:
        requests.append(request)
        if len(requests) == 1:
            connection.sendall(answer(b"{}"))
            return True
        return False

    for server in serve(answers_only_the_first):
        assert pool.post(server.url, b'{"n":1}', timeout=5, max_bytes=1000).status == 200
        with pytest.raises(UpstreamUnreachable) as failed:
            pool.post(server.url, b'{"n":2}', timeout=5, max_bytes=1000)
        assert failed.value.kind == "RemoteProtocolError"
        assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in requests] == [b'{"n":1}', b'{"n":2}']
        assert server.connections == 1


def test_a_query_taken_and_not_answered_is_asked_again_on_a_new_connection(pool: Caller) -> None:
    requests: list[bytes] = []

    def first_on_each_connection(connection: socket.socket, request: bytes) -> bool:
        requests.append(request)
        if len(requests) == 2:  # the kept connection's second request: taken, not answered
            return False
        connection.sendall(answer(b"{}"))
        return True

    for server in serve(first_on_each_connection):
        assert pool.post(server.url, b'{"n":1}', timeout=5, max_bytes=1000, idempotent=True).status == 200
        assert pool.post(server.url, b'{"n":2}', timeout=5, max_bytes=1000, idempotent=True).status == 200
        assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in requests] == [b'{"n":1}', b'{"n":2}', b'{"n":2}']
        assert server.connections == 2


def test_a_write_that_could_not_be_written_is_sent_on_a_new_connection(
    pool: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider reset a kept connection between the idle check and the write (a race the check
    cannot close; here the check is told the connection is fine): nothing reached it, so the write
    goes once on a new connection."""
    requests: list[bytes] = []

    def answer_then_reset(connection: socket.socket, request: bytes) -> bool:
        requests.append(request)
        connection.sendall(answer(b"{}"))
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return False  # closed with a reset

    monkeypatch.setattr("tzsb.exchange.upstream._Connection.open", lambda connection: True)
    for server in serve(answer_then_reset):
        assert pool.post(server.url, b'{"n":1}', timeout=5, max_bytes=1000).status == 200
        assert server.closed.acquire(timeout=5)  # the provider has reset the kept connection
        time.sleep(0.05)
        assert pool.post(server.url, b'{"n":2}', timeout=5, max_bytes=1000).status == 200
        assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in requests] == [b'{"n":1}', b'{"n":2}']
        assert server.connections == 2


def test_a_kept_connection_closed_while_idle_is_not_written_to(pool: Caller) -> None:
    """The provider closed the kept connection while it was idle: it is dropped before a request is
    written to it, so even a write goes out exactly once."""
    requests: list[bytes] = []

    def once_per_connection(connection: socket.socket, request: bytes) -> bool:
        requests.append(request)
        connection.sendall(answer(b"{}"))
        return False

    for server in serve(once_per_connection):
        for n in range(3):
            assert pool.post(server.url, b'{"n":%d}' % n, timeout=5, max_bytes=1000).status == 200
            assert server.closed.acquire(timeout=5)
            time.sleep(0.01)
        assert len(requests) == 3 and server.connections == 3


def test_a_connection_out_on_a_request_when_the_pool_closes_is_closed_when_it_comes_back(pool: Caller) -> None:
    received, release = threading.Event(), threading.Event()

    def slow(connection: socket.socket, request: bytes) -> bool:
        received.set()
        release.wait(5)
        connection.sendall(answer(b"{}"))
        return True  # kept open from this side: only the pool can close it

    for server in serve(slow):
        replies: list[Reply] = []

        def ask(url: str = server.url, replies: list[Reply] = replies) -> None:
            replies.append(pool.post(url, b"{}", timeout=5, max_bytes=1000))

        asker = threading.Thread(target=ask)
        asker.start()
        assert received.wait(5)
        pool.close()
        release.set()
        asker.join(5)
        assert [reply.status for reply in replies] == [200]
        assert server.closed.acquire(timeout=5)  # the pool closed it instead of keeping it


def test_an_answer_that_ends_with_its_connection(pool: Caller) -> None:
    """No Content-Length and not chunked (HTTP/1.0 style): the body is what came before the
    provider closed the connection, which is not kept."""

    def until_closed(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"whole":' + b"1}")
        return False

    for server in serve(until_closed):
        for _ in range(2):
            reply = pool.post(server.url, b"{}", timeout=5, max_bytes=1000)
            assert (reply.status, reply.body) == (200, b'{"whole":1}')
        assert server.connections == 2


def test_an_interim_answer_is_skipped_and_a_chunked_answer_is_read_whole(pool: Caller) -> None:
    def interim_then_chunked(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        connection.sendall(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        time.sleep(0.05)
        connection.sendall(b"2\r\nde\r\n0\r\n\r\n")
        return True

    for server in serve(interim_then_chunked):
        for _ in range(2):
            reply = pool.post(server.url, b"{}", timeout=5, max_bytes=1000)
            assert (reply.status, reply.body) == (201, b"abcde")
        assert server.connections == 1


def test_bytes_nobody_asked_for_make_a_kept_connection_unusable(pool: Caller) -> None:
    """An answer followed by bytes of a second answer: the connection cannot carry the next request."""

    def answer_twice(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(answer(b'{"n":1}') + answer(b'{"n":"stray"}'))
        return True

    for server in serve(answer_twice):
        replies = [pool.post(server.url, b"{}", timeout=5, max_bytes=1000).body for _ in range(2)]
        assert replies == [b'{"n":1}', b'{"n":1}']
        assert server.connections == 2


def test_a_provider_name_outside_ascii_and_a_path_to_quote(pool: Caller) -> None:
    seen: list[bytes] = []
    for server in serve(answering(seen)):
        url = server.url.replace("/tzsb/exchange", "/tzsb/交换 x")
        assert pool.post(url, b"{}", timeout=5, max_bytes=1000).status == 200
        assert seen[0].startswith(b"POST /tzsb/%E4%BA%A4%E6%8D%A2%20x HTTP/1.1\r\n")


def test_on_the_loop_other_handlers_run_while_one_waits_for_its_provider() -> None:
    """Eight handlers on one loop thread each ask a provider that answers only once all eight
    requests are in: a handler that blocked the loop while it waited would leave the others unsent."""
    all_in = threading.Barrier(8, timeout=5)

    def together(connection: socket.socket, request: bytes) -> bool:
        all_in.wait()  # BrokenBarrierError after 5 s unless all eight are out at once
        connection.sendall(answer(b"{}"))
        return True

    upstream = UpstreamPool()
    try:
        for server in serve(together):

            async def main(url: str) -> list[int]:
                asked = [
                    inline.run_on_loop(lambda: upstream.post(url, b"{}", timeout=10, max_bytes=100).status)
                    for _ in range(8)
                ]
                answered = list(await asyncio.gather(*asked))
                upstream.close()  # on the loop, while it runs: the kept connections close with it
                await asyncio.sleep(0.01)
                return answered

            assert uvloop.run(main(server.url)) == [200] * 8
            assert server.connections == 8
    finally:
        upstream.close()


@pytest.mark.parametrize("closing", [True, False], ids=["connection-close", "kept"])
def test_https_to_a_trusted_provider(
    pool: Caller, tmp_path: Path, closing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS 1.3 servers send session tickets right after the handshake: bytes on a new connection,
    not yet read by the loop, that are not an answer nobody asked for. Every request is answered,
    whether each comes on a new connection or on a kept one."""
    connect = _Provider.connect

    async def connect_then_hold_the_loop(provider: _Provider) -> Any:
        connection = await connect(provider)
        time.sleep(0.02)  # the loop turns no more before the request is written: the tickets wait unread
        return connection

    monkeypatch.setattr(_Provider, "connect", connect_then_hold_the_loop)
    credentials = issue(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(credentials.server_cert, credentials.server_key)
    pool.trusting(credentials.ca)
    accepted: list[int] = []

    def serve_tls(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=answer_tls, args=(connection,), daemon=True).start()

    def answer_tls(connection: socket.socket) -> None:
        try:
            with context.wrap_socket(connection, server_side=True) as wrapped:
                while wrapped.recv(65536):
                    wrapped.sendall(answer(b'{"tls":1}', *(["Connection: close"] if closing else [])))
                    if closing:
                        return
        except (ssl.SSLError, OSError):
            pass

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=serve_tls, args=(listener,), daemon=True).start()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/tzsb/exchange"
        for _ in range(20):
            reply = pool.post(url, b"{}", timeout=5, max_bytes=1000)
            assert (reply.status, reply.body) == (200, b'{"tls":1}')
    assert len(accepted) == (20 if closing else 1)


def test_a_reset_before_the_end_of_an_answer_that_ends_with_its_connection(pool: Caller) -> None:
    """Without a length the end of the connection ends the body, but a reset is not an end: the
    answer is cut short and is not passed on."""

    def reset_halfway(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b'{"partial":')
        time.sleep(0.05)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return False

    for server in serve(reset_halfway):
        with pytest.raises(UpstreamUnreachable) as failed:
            pool.post(server.url, b"{}", timeout=5, max_bytes=1000)
        assert failed.value.kind == "ReadError"


def test_a_pool_whose_loop_closed_closes_without_it() -> None:
    """A pool's connections on a loop that is closed now (a test's loop, a node stopped without
    closing its exchange) are shut down without the loop, and closing does not raise."""
    seen: list[bytes] = []
    upstream = UpstreamPool()
    for server in serve(answering(seen)):

        async def ask(url: str) -> int:
            return await inline.run_on_loop(lambda: upstream.post(url, b"{}", timeout=5, max_bytes=100).status)

        assert asyncio.run(ask(server.url)) == 200  # a plain asyncio loop, closed on return
        upstream.close()
        assert server.closed.acquire(timeout=5)  # the provider saw the kept connection end
        with warnings.catch_warnings():
            # The transport, never closed by its loop, says so as it goes: it was shut down above.
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_the_host_header_of_a_provider_named_outside_ascii() -> None:
    provider = _Provider("http://user:pw@Bücher.example:8080/tzsb/exchange", None)
    assert provider.host == "xn--bcher-kva.example"
    assert b"\r\nHost: xn--bcher-kva.example:8080\r\n" in provider.head and b"pw" not in provider.head
    assert b"Host: [::1]:9\r\n" in _Provider("http://[::1]:9/x/y", None).head
