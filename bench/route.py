"""route: 04 by key through a routing node to its provider node on loopback (tzsb service), against
the provider asked directly, in the same run; both driven by wrk (one thread, 16 connections) with
bodies signed beforehand, each random used once. Rounds alternate direct / routed; the medians are
compared. Goal (issue 13): routed ≥ 0.5 × direct."""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import APPID, BUSICODE, WRK_SCRIPT, arguments, device, ingest, node_server, report, signed, wrk_run


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    records = 2_000 if options.quick else options.records
    seconds = 1.0 if options.quick else float(options.seconds)
    rounds = 1 if options.quick else options.rounds
    per_round = 3_000 if options.quick else int(2_500 * seconds)
    keys = [device(n)["EQP_CODE"] for n in range(records)]
    rates: dict[str, list[float]] = {"direct": [], "routed": []}
    latency: dict[str, list[tuple[float, float]]] = {"direct": [], "routed": []}
    with (
        tempfile.TemporaryDirectory(prefix="tzsb-route-") as folder,
        node_server() as provider,
        node_server() as router,
    ):
        ingest(provider, records)
        # The provider's app for the routing node, and the service that sends 0101 queries there.
        created = subprocess.run(
            [sys.executable, "-m", "tzsb", "app", "create", "--home", str(provider.home), "--appid", "router",
             "--region", "330000", "--busicode", BUSICODE, "--action", "04", "--json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "tzsb", "service", "add", "--home", str(router.home), "provider",
             "--business", "0101", "--url", provider.url, "--appid", "router"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "TZSB_SERVICE_SECRET": json.loads(created.stdout)["secret"]},
        )  # fmt: skip
        script = Path(folder) / "feed.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        for number in range(rounds):
            for mode, server in (("direct", provider), ("routed", router)):
                bodies = Path(folder) / f"{mode}-{number}.txt"
                with bodies.open("wb") as output:
                    for _ in range(per_round):
                        output.write(signed(server.secret, "04", [{"EQP_CODE": random.choice(keys)}]) + b"\n")
                figures = wrk_run(server.url, bodies, script, seconds, options.clients)
                if figures["requests"] > per_round:
                    raise RuntimeError(f"{figures['requests']} requests outran {per_round} bodies: raise per_round")
                rates[mode].append(figures["rate"])
                latency[mode].append((figures["p50_ms"], figures["p99_ms"]))
    routed, direct = statistics.median(rates["routed"]), statistics.median(rates["direct"])

    def described(mode: str) -> str:
        runs = ", ".join(f"{rate:.0f}" for rate in rates[mode])
        p50 = statistics.median(item[0] for item in latency[mode])
        p99 = statistics.median(item[1] for item in latency[mode])
        return f"{statistics.median(rates[mode]):.0f} req/s (runs {runs}); p50 {p50:.1f} ms, p99 {p99:.1f} ms"

    report(
        "route",
        routed,
        "requests/s",
        direct,
        "routed ≥ 0.5 × direct",
        [
            ("routed (requester → node → provider)", described("routed")),
            ("the provider asked directly (baseline)", described("direct")),
            ("records / rounds", f"{records} / {rounds} × {seconds:.0f} s, wrk -t1 -c{options.clients}, app {APPID}"),
        ],
    )


if __name__ == "__main__":
    main()
