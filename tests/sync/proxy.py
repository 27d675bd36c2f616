"""A bad network on loopback: an HTTP/1.1 proxy between a child and its parent that breaks the
requests it is told to break (toxiproxy's server does not install here).

Each request (keep-alive connections carry several) is read whole (head and Content-Length body),
forwarded to the parent over a connection of its own and answered — unless a fault is planned for it:

- ``reset``: the request never reaches the parent; the client's connection is reset (RST).
- ``reset_after_forward``: the parent handles the request and answers; the client's connection is
  reset before any of the answer reaches it (the parent committed, the answer was lost).
- ``stall``: the request never reaches the parent; nothing comes back until the client gives up.
- ``truncate``: the answer's head and half its body reach the client, then the connection closes.
- ``alter_sign``: the answer's ``sign`` has one character changed (same length).
- ``http_503``: the proxy answers 503 itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import deque
from typing import Final

FAULTS: Final = frozenset({"reset", "reset_after_forward", "stall", "truncate", "alter_sign", "http_503"})


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One HTTP message: (head with its blank line, body of Content-Length bytes); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _altered(body: bytes) -> bytes:
    marker = b'"sign":"'
    at = body.find(marker)
    if at < 0 or at + len(marker) >= len(body):
        return body
    position = at + len(marker)
    flipped = b"0" if body[position : position + 1] != b"0" else b"1"
    return body[:position] + flipped + body[position + 1 :]


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.requests_seen = 0
        self.faults_applied: list[str] = []
        self._planned: deque[str] = deque()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, *faults: str) -> None:
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        with self._lock:
            self._planned.extend(faults)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _next_fault(self) -> str | None:
        with self._lock:
            self.requests_seen += 1
            fault = self._planned.popleft() if self._planned else None
            if fault is not None:
                self.faults_applied.append(fault)
            return fault

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                fault = self._next_fault()
                if fault == "reset":
                    _reset(writer)
                    return
                if fault == "stall":
                    await reader.read()  # until the client gives up and closes
                    return
                if fault == "http_503":
                    body = b'{"error": "unavailable"}'
                    writer.write(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    continue
                answer = await self._forward(*request)
                if answer is None:
                    _reset(writer)
                    return
                head, body = answer
                if fault == "reset_after_forward":
                    _reset(writer)
                    return
                if fault == "truncate":
                    writer.write(head + body[: len(body) // 2])
                    await writer.drain()
                    writer.close()
                    return
                if fault == "alter_sign":
                    body = _altered(body)
                writer.write(head + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, head: bytes, body: bytes) -> tuple[bytes, bytes] | None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return None
        try:
            upstream_writer.write(head + body)
            await upstream_writer.drain()
            return await _read_message(upstream_reader)
        finally:
            upstream_writer.close()
