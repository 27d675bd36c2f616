"""Running `tzsb serve` in a subprocess for tests that meet the node as a user does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def tzsb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tzsb", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def init_province(home: Path, database_url: str = "") -> None:
    """`tzsb init` a province node (330000) in ``home``, on ``database_url`` (SQLite when empty)."""
    extra = ("--database-url", database_url) if database_url else ()
    init = tzsb("init", "--home", str(home), "--level", "province", "--region", "330000", *extra)
    assert init.returncode == 0, init.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(process: subprocess.Popen[bytes], base: str, log: Path, what: str = "server") -> None:
    """Return once ``base``/healthz answers 200; fail with the server's output if ``process`` ends or
    30 s pass first."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start: {log.read_text()}")
        time.sleep(0.1)


@contextmanager
def serving(
    home: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (), port: int | None = None
) -> Iterator[str]:
    """Serve the node in ``home`` (with ``args`` added to `tzsb serve`, on ``port`` or a free one) until the
    block ends; yields its base URL once /healthz answers."""
    port = port or free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tzsb", "serve", "--home", str(home), "--port", str(port), *args],
            env={**os.environ, **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
