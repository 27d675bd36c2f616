"""memory: peak RSS of the server after 1,000,000 records ingested and a full _since scan of them."""

from __future__ import annotations

import httpx
from bench.common import arguments, ingest, node_server, post_ok, report, signed


def main() -> None:
    options = arguments(__doc__ or "", records=1_000_000, page_size=1000)
    records = 5_000 if options.quick else options.records
    with node_server() as server:
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
        peak = server.peak_rss_mb()
    report(
        "memory",
        peak,
        "MB",
        None,
        "<= 300 MB",
        [
            ("records ingested, then scanned with _since", f"{records:,} (pages of {options.page_size})"),
            ("peak RSS after ingest", f"{after_ingest:,.0f} MB"),
            ("peak RSS after the scan", f"{peak:,.0f} MB"),
        ],
    )


if __name__ == "__main__":
    main()
