"""The benchmark scripts run (at a size that proves only that); their figures come from hand runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(*arguments: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """``python *arguments`` from the repository's root; fails the test unless it exits with 0."""
    done = subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.postgres
def test_every_bench_runs_and_reports_one_json_line(postgres_url: str) -> None:
    done = _bench("bench/run_all.py", "--quick", timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"bench"')]
    assert [line["bench"] for line in lines] == [
        "ingest-sqlite", "ingest-postgres", "query-key", "query-region", "validate-cost", "memory", "sync-up",
        "audit-cost", "route",
    ]  # fmt: skip
    for line in lines:
        assert set(line) == {"bench", "value", "unit", "baseline", "ratio", "goal"}
        assert line["value"] > 0


@pytest.mark.postgres
def test_query_key_runs_on_postgresql_with_two_workers(postgres_url: str) -> None:
    """The PostgreSQL baseline's lookup, awaited on the event loop, in two worker processes, as the
    node's: ``run_all`` runs query-key on SQLite only."""
    done = _bench("-m", "bench.query_key", "--quick", "--postgres", "1", "--workers", "2", timeout=300)
    (line,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"bench"')]
    assert line["bench"] == "query-key"
    assert line["value"] > 0
    assert line["baseline"] > 0
    assert "PostgreSQL / 2" in done.stdout
