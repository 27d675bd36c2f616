"""Run every benchmark and summarise their JSON lines. ``--quick`` only proves the scripts work.

python bench/run_all.py [--quick] [--only ingest_sqlite ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCHES = [
    "ingest_sqlite", "ingest_postgres", "query_key", "query_region", "validate_cost", "memory", "sync_up", "audit_cost",
    "route",
]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(os.environ.get("TZSB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
                             connect_timeout=3):  # fmt: skip
            return True
    except psycopg.Error:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=BENCHES)
    options = parser.parse_args()
    results: list[dict[str, object]] = []
    failed: list[str] = []
    for name in options.only or BENCHES:
        if name == "ingest_postgres" and not postgres_reachable():
            if os.environ.get("TZSB_REQUIRE_POSTGRES") == "1":
                failed.append(name)
                print(f"!! {name}: PostgreSQL unreachable and TZSB_REQUIRE_POSTGRES=1", flush=True)
            else:
                print(f"!! {name}: SKIPPED, PostgreSQL unreachable", flush=True)
            continue
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if options.quick else [])]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        print(done.stdout, end="", flush=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith('{"bench"')]
        if done.returncode != 0 or not lines:
            failed.append(name)
            print(f"!! {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}", flush=True)
            continue
        results.append(json.loads(lines[-1]))
    print("\nbench              value            baseline         ratio   goal")
    for result in results:
        print(f"{result['bench']:<18} {result['value']!s:<16} {result['baseline']!s:<16} {result['ratio']!s:<7} "
              f"{result['goal']}")  # fmt: skip
    if options.quick:
        print("(--quick: sizes too small for the figures to mean anything; this only proves the scripts run)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
