"""Shared pieces of the benchmarks: a node server in its own process, sample data, reporting.

Every bench measures the node and a baseline in the same run on the same data, prints a table,
and ends with one JSON line: {"bench", "value", "unit", "baseline", "ratio", "goal"}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm
from tzsb.store import NewRecords, open_store, records_written

POSTGRES_URL = os.environ.get("TZSB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
APPID = "bench"
#: Purpose 11 (本级内部接口): the bench app is another system of the node's own regulator.
BUSICODE = "110101"


def arguments(description: str, **sizes: int) -> argparse.Namespace:
    """``--quick`` (a size that only proves the script works) plus one option per size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: prove the script works, no figures")
    for name, default in sizes.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    return parser.parse_args()


def device(number: int, stamp: str = "2026-11-01 10:00:00") -> dict[str, Any]:
    """A valid 0101 record; numbers spread over 10 counties of two cities."""
    county = ["330102", "330105", "330106", "330108", "330110", "330203", "330205", "330206", "330211", "330212"][
        number % 10
    ]
    return {
        # 品种 + registration area + year + serial: a well-formed, unique 19-character 设备代码.
        "EQP_CODE": f"3110{county}{2000 + (number // 100_000) % 20}{number % 100_000:05d}",
        "EQP_TYPE": "3000",
        "EQP_SORT": "3100",
        "EQP_VART": "3110",
        "EQP_NAME": "曳引驱动乘客电梯",
        "EQP_MODEL": "GeN2-MR",
        "FACTORY_NO": f"F{number:08d}",
        "MAKE_UNIT_NAME": "某某电梯有限公司",
        "MAKE_DATE": "2015-06-01",
        "USE_UNIT_NAME": "杭州某某物业管理有限公司",
        "USE_UNIT_CODE": "91110000600037341L",
        "USE_ADDRESS": f"杭州市西湖区文三路{number % 500}号",
        "AREA_CODE": county,
        "USE_CERT_NO": f"梯11浙A{number:08d}(16)",
        "USE_STATUS": "2",
        "NEXT_INSP_DATE": "2027-06-01",
        "SAFETY_MANAGER": "张三",
        "SAFETY_MANAGER_PHONE": "13800138000",
        "UPDATE_TIME": stamp,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tzsb(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tzsb", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tzsb {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def wait_healthy(base: str, process: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if httpx.get(base + path, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


@dataclass(frozen=True)
class NodeServer:
    url: str
    base: str
    secret: str
    home: Path
    process: subprocess.Popen[bytes]

    @property
    def database_file(self) -> Path:
        return self.home / "tzsb.db"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def reset_peak_rss(self) -> None:
        """Start the peak RSS afresh from the current RSS (Linux: ``clear_refs``, value 5)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


@contextmanager
def postgres_schemas(count: int) -> Iterator[list[str]]:
    """``count`` fresh PostgreSQL schemas on ``POSTGRES_URL``, as database URLs that use them (dropped afterwards)."""
    import psycopg

    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    separator = "&" if "?" in POSTGRES_URL else "?"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        for schema in schemas:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield [f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}" for schema in schemas]
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def node_server(
    database_url: str = "", region: str = "330000", workers: int = 1, environ: Mapping[str, str] | None = None
) -> Iterator[NodeServer]:
    """A freshly initialised node served by `tzsb serve` (one uvicorn worker unless asked) in its own
    process, with ``environ`` added to its environment."""
    with tempfile.TemporaryDirectory(prefix="tzsb-bench-") as folder:
        home = Path(folder) / "node"
        extra = ["--database-url", database_url] if database_url else []
        tzsb("init", "--home", str(home), "--level", "province", "--region", region, *extra)
        created = tzsb(
            "app", "create", "--home", str(home), "--appid", APPID, "--region", region,
            "--busicode", "110101", "--action", "01", "--action", "04", "--json",
        )  # fmt: skip
        secret = json.loads(created)["secret"]
        port = free_port()
        command = [sys.executable, "-m", "tzsb", "serve", "--home", str(home), "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(environ or {})},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, process)
            yield NodeServer(f"{base}/tzsb/exchange", base, secret, home, process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def signed(secret: str, action: str, busilist: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(build_request(APPID, secret, SignAlgorithm.MD5, BUSICODE, action, busilist, uuid.uuid4().hex))


def post_ok(client: httpx.Client, url: str, body: bytes) -> dict[str, Any]:
    reply = client.post(url, content=body, headers={"content-type": "application/json"})
    answer: dict[str, Any] = orjson.loads(reply.content)  # the client's own parsing is not the node's time
    if answer["datalist"]["result"] != "0001":
        raise RuntimeError(f"request refused: {answer['datalist']}")
    return answer


def ingest(server: NodeServer, records: int, batch: int = 1000, start: int = 0, clients: int = 1) -> float:
    """Add ``records`` devices in signed batches from ``clients`` concurrent connections; returns the
    wall-clock seconds from the first request to the last answer (bodies are built beforehand)."""
    return ingest_measured(server, records, batch, start, clients).seconds


@dataclass(frozen=True)
class IngestRun:
    """An ingest's wall-clock seconds, and the CPU seconds the client (this process) and the server
    (its processes) spent meanwhile: a client far from one core's worth was not the limit."""

    seconds: float
    client_cpu: float
    server_cpu: float

    def described(self) -> str:
        return (
            f"client CPU {self.client_cpu / self.seconds:.0%} of the wall-clock time, "
            f"server CPU {self.server_cpu / self.seconds:.0%} (its processes: not PostgreSQL's)"
        )


def _processes(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker processes)."""
    found = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += _processes(int(child))
    except FileNotFoundError:  # the process or one of its threads ended meanwhile
        pass
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` and its descendants that are alive now."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in _processes(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def ingest_measured(server: NodeServer, records: int, batch: int = 1000, start: int = 0, clients: int = 1) -> IngestRun:
    """``ingest``, with the CPU time of the client and of the server."""
    bodies = [
        signed(server.secret, "01", [device(n) for n in range(offset, min(offset + batch, start + records))])
        for offset in range(start, start + records, batch)
    ]
    shares = [bodies[index::clients] for index in range(clients)]
    failures: list[BaseException] = []

    def send(share: list[bytes]) -> None:
        try:
            with httpx.Client(timeout=300) as client:
                for body in share:
                    post_ok(client, server.url, body)
        except BaseException as exc:  # reported below, in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    server_began, client_began = cpu_seconds(server.process.pid), time.process_time()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spent = time.perf_counter() - began
    client_cpu, server_cpu = time.process_time() - client_began, cpu_seconds(server.process.pid) - server_began
    if failures:
        raise failures[0]
    return IngestRun(spent, client_cpu, server_cpu)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(
    name: str,
    value: float,
    unit: str,
    baseline: float | None,
    goal: str,
    rows: list[tuple[str, str]],
) -> None:
    """Print the human table, then the one JSON line (``ratio`` = value / baseline)."""
    ratio = round(value / baseline, 3) if baseline else None
    width = max(len(label) for label, _ in rows)
    print(f"== {name} ==")
    for label, text in rows:
        print(f"  {label.ljust(width)}  {text}")
    print(json.dumps({"bench": name, "value": round(value, 3), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 3),
                      "ratio": ratio, "goal": goal}))  # fmt: skip
    sys.stdout.flush()


def store_alone_records_per_second(database_url: str, records: int, batch: int) -> float:
    """Not a baseline: the node's own store inserting the bench devices (its schema, its insert, one
    transaction per batch) with no request around it. Shows how much of an ingest gap is the schema
    and the store rather than the request pipeline."""
    store = open_store(database_url)
    spent = 0.0
    try:
        for offset in range(0, records, batch):
            # Parsed from JSON, as the node receives them.
            devices = orjson.loads(orjson.dumps([device(n) for n in range(offset, min(offset + batch, records))]))
            began = time.perf_counter()
            with store.write() as connection:
                last = records_written.lock_change_counter(connection)
                seqs = range(last + 1, last + 1 + len(devices))
                stamp = "2026-11-01 10:00:00"
                new = NewRecords("0101", "EQP_CODE", "AREA_CODE", "UPDATE_TIME", devices, seqs, APPID, stamp)
                records_written.insert_new(connection, new)
                records_written.store_change_counter(connection, seqs[-1])
            spent += time.perf_counter() - began
    finally:
        store.dispose()
    return records / spent


#: Feeds wrk one body per request, in order (each random used once), and counts refusals.
WRK_SCRIPT = r"""
local bodies = {}
local index = 0
refused = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end

function request()
  index = index + 1
  if index > #bodies then index = 1 end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[index])
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"result":"0000"', 1, true) then refused = refused + 1 end
end

function done(summary, latency, requests)
  local refusals = 0
  for _, thread in ipairs(threads) do refusals = refusals + thread:get("refused") end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout
  io.write(string.format('{"requests":%d,"seconds":%.6f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"refused":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, refusals))
end
"""


def wrk_run(url: str, bodies: Path, script: Path, seconds: float, connections: int) -> dict[str, Any]:
    """One wrk run; its figures (requests/s, p50, p99); raises if any request failed or was refused."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url,
         "--", str(bodies)],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
    )  # fmt: skip
    line = next(line for line in done.stdout.splitlines() if line.startswith('{"requests"'))
    figures: dict[str, Any] = json.loads(line)
    if figures["errors"] or figures["refused"]:
        raise RuntimeError(f"wrk saw {figures['errors']} errors and {figures['refused']} refusals:\n{done.stdout}")
    figures["rate"] = figures["requests"] / figures["seconds"]
    return figures


def warm_up_rate(output: str) -> float:
    """Requests/s of a warm-up run from what wrk printed (0 when it printed no figures)."""
    line = next((line for line in output.splitlines() if line.startswith('{"requests"')), None)
    if line is None:
        return 0.0
    figures = json.loads(line)
    return float(figures["requests"]) / max(float(figures["seconds"]), 1e-9)


@dataclass(frozen=True)
class Target:
    """Where wrk sends its requests, and the body asking for one key (one line: no newline inside)."""

    url: str
    body: Callable[[str], bytes]


def node_target(server: NodeServer) -> Target:
    """04 by key at a node, signed for its bench app, each with its own random."""
    return Target(server.url, lambda key: signed(server.secret, "04", [{"EQP_CODE": key}]))


@dataclass(frozen=True)
class Feed:
    """Where wrk sends its requests, and the ``n``-th body of a run (one line: no newline inside)."""

    url: str
    body: Callable[[int], bytes]


#: Seconds of the unmeasured wrk run against each server before its measured rounds.
WARM_UP_SECONDS = 2.0


@dataclass(kw_only=True)
class WrkRuns:
    """Runs of wrk against several feeds, a round each in turn: requests/s and latencies."""

    seconds: float
    clients: int
    #: Bodies prepared per run at least (more when the warm-up shows a faster feed): none may be sent
    #: twice (a repeated random is answered from its first answer, another path).
    per_round: int
    rates: dict[str, list[float]] = field(default_factory=dict)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def run_feeds(self, feeds: dict[str, Feed], rounds: int) -> None:
        """``rounds`` rounds, each a run of wrk against every feed in turn, after a warm-up run of each
        that is not measured: both sides open their pooled database connections on first use (with two
        workers on PostgreSQL, 32 at once), and the first round should not pay for it.

        The warm-up also sizes the rounds: each prepares ``per_round`` bodies, or more when the warm-up
        showed that the feed answers faster than that (machines differ by three times and more); a round
        that still outran its bodies is run again with twice as many."""
        warm_up = min(WARM_UP_SECONDS, self.seconds)
        with tempfile.TemporaryDirectory(prefix="tzsb-wrk-") as folder:
            script = Path(folder) / "feed.lua"
            script.write_text(WRK_SCRIPT, encoding="utf-8")
            bodies_per_round = {}
            for mode, feed in feeds.items():
                bodies = Path(folder) / f"{mode}-warm-up.txt"
                count = int(self.per_round * warm_up / self.seconds) + self.clients
                # Bodies of their own (indices past a round's), so that no random of a round was used.
                self._write_bodies(bodies, feed, range(self.per_round, self.per_round + count))
                warmed = subprocess.run(
                    ["wrk", "-t1", f"-c{self.clients}", f"-d{max(1, round(warm_up))}s", "-s", str(script), feed.url,
                     "--", str(bodies)],
                    capture_output=True, text=True, timeout=warm_up + 120, check=False,
                )  # fmt: skip
                if warmed.returncode != 0:
                    print(f"warning: the warm-up run against {mode} failed: {warmed.stderr.strip()}", file=sys.stderr)
                bodies_per_round[mode] = max(self.per_round, self._bodies_for(warm_up_rate(warmed.stdout)))
            for number in range(rounds):
                for mode, feed in feeds.items():
                    self._round(mode, feed, Path(folder) / f"{mode}-{number}.txt", script, bodies_per_round)

    def _bodies_for(self, rate: float) -> int:
        """Bodies enough for a round at ``rate`` requests/s, with half as many again to spare."""
        return int(rate * self.seconds * 1.5) + self.clients

    def _round(self, mode: str, feed: Feed, bodies: Path, script: Path, bodies_per_round: dict[str, int]) -> None:
        """One measured run against ``feed``, again with twice the bodies while it outruns them."""
        for _attempt in range(3):
            count = bodies_per_round[mode]
            self._write_bodies(bodies, feed, range(count))
            figures = wrk_run(feed.url, bodies, script, self.seconds, self.clients)
            # Requests still in flight when wrk stops are not counted: up to one per connection.
            if figures["requests"] + self.clients <= count:
                self.rates.setdefault(mode, []).append(figures["rate"])
                self.latency.setdefault(mode, []).append((figures["p50_ms"], figures["p99_ms"]))
                return
            print(f"note: {mode} outran {count} bodies ({figures['requests']} requests); run again", file=sys.stderr)
            bodies_per_round[mode] = max(2 * count, self._bodies_for(figures["rate"]))
        raise RuntimeError(f"{mode} outran its bodies three times (last {bodies_per_round[mode]})")

    @staticmethod
    def _write_bodies(path: Path, feed: Feed, indices: range) -> None:
        with path.open("wb") as output:
            for index in indices:
                output.write(feed.body(index) + b"\n")

    def median(self, mode: str) -> float:
        return statistics.median(self.rates[mode])

    def p99(self, mode: str) -> float:
        return statistics.median(item[1] for item in self.latency[mode])

    def described(self, mode: str) -> str:
        runs = ", ".join(f"{rate:.0f}" for rate in self.rates[mode])
        p50 = statistics.median(item[0] for item in self.latency[mode])
        return f"{self.median(mode):.0f} req/s (runs {runs}); p50 {p50:.1f} ms, p99 {self.p99(mode):.1f} ms"


@dataclass(kw_only=True)
class KeyQueryRuns(WrkRuns):
    """04-by-key runs of wrk: each body asks for a key drawn at random from ``keys``."""

    keys: list[str]

    def run(self, servers: dict[str, NodeServer | Target], rounds: int) -> None:
        """``rounds`` rounds, each a run against every server in turn: a node (04 by key, signed with
        its bench app's secret) or any other ``Target``."""
        targets = {
            mode: server if isinstance(server, Target) else node_target(server) for mode, server in servers.items()
        }
        self.run_feeds({mode: self._random_keys(target) for mode, target in targets.items()}, rounds)

    def _random_keys(self, target: Target) -> Feed:
        return Feed(target.url, lambda _index: target.body(random.choice(self.keys)))


def key_query_runs(options: argparse.Namespace, bodies_per_second: int = 2_500) -> tuple[KeyQueryRuns, int, int]:
    """The wrk runs of 04 by key that ``options`` ask for (``--records --clients --seconds --rounds``;
    ``--quick``: a size that only proves the script works), once wrk is found: the runs, the records
    to hold, the rounds. ``bodies_per_second``: the fastest rate a server of the bench may reach."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    records = 2_000 if options.quick else options.records
    seconds = 1.0 if options.quick else float(options.seconds)
    runs = KeyQueryRuns(
        keys=[device(n)["EQP_CODE"] for n in range(records)],
        seconds=seconds,
        clients=options.clients,
        per_round=max(3_000, int(bodies_per_second * 1.5)) if options.quick else int(bodies_per_second * seconds),
    )
    return runs, records, 1 if options.quick else options.rounds


def wrk_summary(runs: WrkRuns, records: int, rounds: int) -> str:
    """The report row that says how the rounds were run."""
    return f"{records:,} records; wrk -t1 -c{runs.clients}, {rounds} alternating rounds of {runs.seconds:.0f} s"
