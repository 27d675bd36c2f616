"""sync-up: a county's device records sent to its city by `tzsb sync` (change feed read, batches
signed, answers verified, positions stored), against the same city node's direct ingest of the same
records as signed 1,000-record adds from a client, in the same run (goal: sync >= 0.5 of direct).

Also the peak RSS of the syncing process during a full upload (`tzsb sync full`) of many records
(goal <= 300 MB: the feed is streamed a page at a time, never loaded whole).

python -m bench.sync_up [--quick] [--records 100000] [--full-records 1000000]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench.common import arguments, device, free_port, report, tzsb, wait_healthy

from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm
from tzsb.store import NewRecords, open_store, records_written

COUNTY = "330106"
APPID = "county-330106"


def county_device(number: int) -> dict[str, Any]:
    """The bench device, registered in the one county that syncs."""
    record = device(number)
    record["AREA_CODE"] = COUNTY
    record["EQP_CODE"] = f"3110{COUNTY}{2000 + (number // 100_000) % 20}{number % 100_000:05d}"
    return record


@contextmanager
def city_server(folder: Path, name: str) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """A city node served by `tzsb serve` (one worker), with the app it issues to the county; yields
    (interface URL, the app's secret, the server process)."""
    home = folder / name
    tzsb("init", "--home", str(home), "--level", "city", "--region", "330100")
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", APPID, "--region", COUNTY,
        "--busicode", "140101", "--action", "01", "--action", "03", "--json",
    )  # fmt: skip
    secret = json.loads(created)["secret"]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tzsb", "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield f"{base}/tzsb/exchange", secret, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def county_home(folder: Path, records: int, url: str, secret: str) -> Path:
    """A county node holding ``records`` devices (written straight into its store, as its own app's
    adds would leave them), with an upward link to the city at ``url``."""
    home = folder / "county"
    tzsb("init", "--home", str(home), "--level", "county", "--region", COUNTY)
    store = open_store(f"sqlite:///{home / 'tzsb.db'}")
    try:
        for offset in range(0, records, 10_000):
            devices = [county_device(n) for n in range(offset, min(offset + 10_000, records))]
            with store.write() as connection:
                last = records_written.lock_change_counter(connection)
                seqs = range(last + 1, last + 1 + len(devices))
                new = NewRecords(
                    "0101", "EQP_CODE", "AREA_CODE", "UPDATE_TIME", devices, seqs, "county-local", "2026-11-01 10:00:00"
                )
                records_written.insert_new(connection, new)
                records_written.store_change_counter(connection, seqs[-1])
    finally:
        store.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "tzsb", "link", "add", "up", "--home", str(home), "--url", url, "--appid", APPID,
         "--direction", "up", "--business", "0101"],
        input=secret + "\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tzsb link add failed: {done.stderr}")
    return home


def direct_ingest_seconds(url: str, secret: str, records: int) -> float:
    """The client's signed 1,000-record adds of the same devices (bodies built beforehand)."""
    bodies = [
        orjson.dumps(
            build_request(APPID, secret, SignAlgorithm.MD5, "140101", "01",
                          [county_device(n) for n in range(offset, min(offset + 1000, records))])
        )
        for offset in range(0, records, 1000)
    ]  # fmt: skip
    with httpx.Client(timeout=300) as client:
        began = time.perf_counter()
        for body in bodies:
            answer = orjson.loads(client.post(url, content=body, headers={"content-type": "application/json"}).content)
            if answer["datalist"]["result"] != "0001":
                raise RuntimeError(f"refused: {answer['datalist']}")
        return time.perf_counter() - began


SYNC_CHILD = """
import resource, sys, time, orjson
from tzsb.app import build_node
from tzsb.settings import load_settings
node = build_node(load_settings(__import__('pathlib').Path(sys.argv[1])))
began = time.perf_counter()
report = node.sync.full('up') if sys.argv[2] == 'full' else node.sync.run('up')[0]
spent = time.perf_counter() - began
node.close()
print(orjson.dumps({'seconds': spent, 'state': report.state, 'records': report.records,
                    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}).decode())
"""


def sync_in_process(home: Path, mode: str) -> dict[str, Any]:
    """One pass in a process of its own: its seconds (the pass alone, not the start-up) and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", SYNC_CHILD, str(home), mode], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the sync process failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    if result["state"] != "ok":
        raise RuntimeError(f"the sync pass ended {result['state']}")
    return result


def main() -> None:
    options = arguments(__doc__ or "", records=100_000, full_records=1_000_000)
    records = 2_000 if options.quick else options.records
    full_records = 5_000 if options.quick else options.full_records
    with tempfile.TemporaryDirectory(prefix="tzsb-bench-sync-") as name:
        folder = Path(name)
        with city_server(folder, "city-direct") as (url, secret, _):
            direct = records / direct_ingest_seconds(url, secret, records)
        with city_server(folder, "city-synced") as (url, secret, _):
            home = county_home(folder, records, url, secret)
            synced = sync_in_process(home, "run")
            assert synced["records"] == records, synced
        rate = records / synced["seconds"]
    with tempfile.TemporaryDirectory(prefix="tzsb-bench-sync-full-") as name:
        folder = Path(name)
        with city_server(folder, "city-full") as (url, secret, _):
            home = county_home(folder, full_records, url, secret)
            full = sync_in_process(home, "full")
    report(
        "sync-up",
        rate,
        "records/s",
        direct,
        "ratio >= 0.5; full-upload peak RSS <= 300 MB",
        [
            ("records", f"{records:,} devices, county 330106 → city 330100, batches of 1,000, one city worker"),
            ("tzsb sync (feed read, signed, verified, positions kept)", f"{rate:,.0f} records/s"),
            ("the city's direct ingest of the same records (baseline)", f"{direct:,.0f} records/s"),
            (f"full upload of {full_records:,} records", f"{full['seconds']:,.1f} s"),
            ("peak RSS of the syncing process during it", f"{full['peak_rss_mb']:,.0f} MB"),
        ],
    )


if __name__ == "__main__":
    main()
