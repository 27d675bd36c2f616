"""query-key: 04 by primary key from 16 concurrent clients (requests/s, p50, p99), against a bare
Starlette endpoint doing the same SQLite lookup and returning the JSON unsigned."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import orjson
from bench.common import device, free_port, ingest, node_server, percentile, report, signed, wait_healthy


async def load(url: str, bodies: Callable[[], bytes], clients: int, seconds: float) -> tuple[float, list[float]]:
    """``clients`` loops posting for ``seconds``; returns (requests/s, latencies in ms)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(session: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            body = bodies()
            began = time.perf_counter()
            reply = await session.post(url, content=body, headers={"content-type": "application/json"})
            latencies.append((time.perf_counter() - began) * 1000)
            if reply.status_code != 200 or b'"0000"' in reply.content:
                raise RuntimeError(reply.text[:300])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, latencies


def main() -> None:
    from bench.common import arguments

    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10)
    records = 2_000 if options.quick else options.records
    seconds = 1.0 if options.quick else float(options.seconds)
    keys = [device(n)["EQP_CODE"] for n in range(records)]
    with node_server() as server:
        ingest(server, records)
        # Requests are signed ahead of time, so the client's own signing does not limit the node.
        prepared = [
            signed(server.secret, "04", [{"EQP_CODE": random.choice(keys)}])
            for _ in range(200_000 if not options.quick else 5_000)
        ]
        supply = iter(prepared)
        node_rate, node_latency = asyncio.run(load(server.url, lambda: next(supply), options.clients, seconds))

        port = free_port()
        baseline_process = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_app", str(server.database_file), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", baseline_process)
            base_rate, base_latency = asyncio.run(
                load(
                    f"http://127.0.0.1:{port}/lookup",
                    lambda: orjson.dumps({"key": random.choice(keys)}),
                    options.clients,
                    seconds,
                )
            )
        finally:
            baseline_process.terminate()
            baseline_process.wait(timeout=30)
    report(
        "query-key",
        node_rate,
        "requests/s",
        base_rate,
        "ratio >= 0.6",
        [
            ("records held", f"{records:,}"),
            ("clients, duration", f"{options.clients}, {seconds:.0f} s each"),
            (
                "node 04 by key",
                f"{node_rate:,.0f} req/s  p50 {percentile(node_latency, 0.5):.1f} ms  "
                f"p99 {percentile(node_latency, 0.99):.1f} ms",
            ),
            (
                "bare Starlette + sqlite3",
                f"{base_rate:,.0f} req/s  p50 {percentile(base_latency, 0.5):.1f} ms  "
                f"p99 {percentile(base_latency, 0.99):.1f} ms",
            ),
        ],
    )


if __name__ == "__main__":
    main()
