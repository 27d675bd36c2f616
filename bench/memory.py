"""memory: peak RSS of the server after 1,000,000 records ingested and a full _since scan of them.

The process's peak includes its start-up, where the console's account store hashes a dummy password
with scrypt (N = 2^17, r = 8: 128 MB for a moment, so that refusing an unknown name costs what
refusing a known one does). The peak of the ingest and the scan alone is shown beside it: the peak
is reset once the server has started."""

from __future__ import annotations

import httpx
from bench.common import arguments, ingest, node_server, post_ok, report, signed


def main() -> None:
    options = arguments(__doc__ or "", records=1_000_000, page_size=1000)
    records = 5_000 if options.quick else options.records
    with node_server() as server:
        started = server.peak_rss_mb()
        server.reset_peak_rss()
        ingest(server, records)
        after_ingest = server.peak_rss_mb()
        seen = 0
        since = "0"
        with httpx.Client(timeout=120) as client:
            while True:
                answer = post_ok(
                    client,
                    server.url,
                    signed(server.secret, "04", [{"_since": since, "_page_size": options.page_size}]),
                )
                seen += len(answer["datalist"]["busilist"])
                since = answer["datalist"]["next_since"]
                if not answer["datalist"]["has_more"]:
                    break
        if seen != records:
            raise RuntimeError(f"the _since scan returned {seen} records, expected {records}")
        work = server.peak_rss_mb()
    peak = max(started, work)
    report(
        "memory",
        peak,
        "MB",
        None,
        "<= 300 MB",
        [
            ("records ingested, then scanned with _since", f"{records:,} (pages of {options.page_size})"),
            ("peak RSS of the start-up (the console's scrypt)", f"{started:,.0f} MB"),
            ("peak RSS of the ingest", f"{after_ingest:,.0f} MB"),
            ("peak RSS of the ingest and the scan", f"{work:,.0f} MB"),
        ],
    )


if __name__ == "__main__":
    main()
