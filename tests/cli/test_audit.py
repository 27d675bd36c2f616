"""`tzsb audit tail | query | export`: the interaction log from the shell."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys

import orjson

from tests.support import body, call, device, grant
from tzsb.app import Node


def tzsb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tzsb", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _traffic(node: Node) -> None:
    hz = grant(node, appid="hz", region="330100")
    xihu = grant(node, appid="xihu", region="330106")
    assert call(node, body("hz", hz, "140101", "01", [device(1)], random="hz-req-1"))["datalist"]["result"] == "0001"
    refused = call(node, body("hz", hz, "140101", "01", [device(2, AREA_CODE="330205")], random="hz-req-2"))
    assert refused["datalist"]["code"] == "E_REGION"
    assert (
        call(node, body("xihu", xihu, "140101", "01", [device(3)], random="xihu-req-1"))["datalist"]["result"] == "0001"
    )


def test_tail_query_and_export(node: Node) -> None:
    _traffic(node)
    home = str(node.settings.home)

    tail = orjson.loads(tzsb("audit", "tail", "--home", home, "--limit", "2", "--json").stdout)
    assert [row["random"] for row in tail] == ["xihu-req-1", "hz-req-2"]
    query = orjson.loads(tzsb("audit", "query", "--home", home, "--appid", "hz", "--code", "E_REGION", "--json").stdout)
    assert [row["random"] for row in query] == ["hz-req-2"]
    dated = tzsb("audit", "query", "--home", home, "--from", "2000-01-01", "--to", "2000-01-02", "--json")
    assert orjson.loads(dated.stdout) == []

    lines = tzsb("audit", "export", "--home", home, "--from", "2000-01-01", "--to", "2099-12-31").stdout.splitlines()
    assert [orjson.loads(line)["random"] for line in lines] == ["hz-req-1", "hz-req-2", "xihu-req-1"]  # oldest first
    out = node.settings.home / "export.csv"
    done = tzsb("audit", "export", "--home", home, "--from", "2000-01-01", "--to", "2099-12-31", "--format", "csv",
                "--out", str(out), "--appid", "hz")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 entries written" in done.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(row["random"], row["code"]) for row in rows] == [("hz-req-1", ""), ("hz-req-2", "E_REGION")]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_malformed_options_say_what_to_give(node: Node) -> None:
    home = str(node.settings.home)
    bad_date = tzsb("audit", "query", "--home", home, "--from", "yesterday")
    assert bad_date.returncode == 1
    assert "--from 'yesterday': give YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS' (Beijing time)" in bad_date.stderr
    bad_format = tzsb(
        "audit", "export", "--home", home, "--from", "2026-01-01", "--to", "2026-01-02", "--format", "xml"
    )
    assert bad_format.returncode == 1
    assert "--format 'xml': csv or jsonl" in bad_format.stderr
