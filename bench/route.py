"""route: 04 by key through a routing node to its provider node on loopback (tzsb service), against
the provider asked directly, in the same run; both driven by wrk (one thread, 16 connections) with
bodies signed beforehand, each random used once. Rounds alternate direct / routed; the medians are
compared. Goal (issue 13): routed ≥ 0.5 × direct."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import BUSICODE, arguments, ingest, key_query_runs, node_server, report, wrk_summary


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3)
    runs, records, rounds = key_query_runs(options)
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
            ("runs", wrk_summary(runs, records, rounds)),
        ],
    )


if __name__ == "__main__":
    main()
