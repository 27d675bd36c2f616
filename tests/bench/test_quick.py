"""The benchmark scripts run (at a size that proves only that); their figures come from hand runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_every_bench_runs_and_reports_one_json_line(postgres_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"bench"')]
    assert [line["bench"] for line in lines] == [
        "ingest-sqlite", "ingest-postgres", "query-key", "query-region", "validate-cost", "memory", "sync-up",
        "audit-cost", "route",
    ]  # fmt: skip
    for line in lines:
        assert set(line) == {"bench", "value", "unit", "baseline", "ratio", "goal"}
        assert line["value"] > 0
