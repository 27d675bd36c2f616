"""route: 04 by key through a routing node to its provider node on loopback (tzsb service), against
the provider asked directly, in the same run; both driven by wrk (one thread, 16 connections) with
bodies signed beforehand, each random used once. Rounds alternate direct / routed; the medians are
compared. Goal (issue 13): routed ≥ 0.5 × direct."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from bench.common import APPID, BUSICODE, KeyQueryRuns, arguments, device, ingest, node_server, report


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    records = 2_000 if options.quick else options.records
    seconds = 1.0 if options.quick else float(options.seconds)
    rounds = 1 if options.quick else options.rounds
    runs = KeyQueryRuns(
        keys=[device(n)["EQP_CODE"] for n in range(records)],
        seconds=seconds,
        clients=options.clients,
        per_round=3_000 if options.quick else int(2_500 * seconds),
    )
    with node_server() as provider, node_server() as router:
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
        runs.run({"direct": provider, "routed": router}, rounds)
    routed, direct = runs.median("routed"), runs.median("direct")
    described = runs.described

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
