"""`tzsb audit tail | query | export`: the interaction log from the shell."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
from datetime import timedelta
from typing import Any

import orjson
import sqlalchemy as sa

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


def test_verify_head_and_archive_from_the_shell(node: Node, clock: Any) -> None:
    home = str(node.settings.home)
    _traffic(node)
    clock.advance(timedelta(days=1))
    _traffic_again = grant(node, appid="later", region="330100")
    assert call(node, body("later", _traffic_again, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}],
                           random="later-req-1"))["datalist"]["result"] == "0001"  # fmt: skip

    kept = tzsb("audit", "head", "--home", home).stdout.strip()
    assert kept.startswith("4:") and len(kept) == 2 + 64
    verified = tzsb("audit", "verify", "--home", home, "--head", kept)
    assert verified.returncode == 0, verified.stderr
    assert "chain intact: 4 live entries, 0 archived in 0 file(s); head " + kept in verified.stdout

    archived = tzsb("audit", "archive", "--home", home, "--before", clock.now().strftime("%Y-%m-%d"), "--json")
    assert archived.returncode == 0, archived.stderr
    [written] = orjson.loads(archived.stdout)
    assert (written["first_seq"], written["last_seq"], written["entries"]) == (1, 3, 3)
    assert written["file"].startswith(str(node.settings.home / "audit-archive"))
    report = orjson.loads(tzsb("audit", "verify", "--home", home, "--head", kept, "--json").stdout)
    assert (report["ok"], report["entries"], report["archived_entries"], report["archive_files"]) == (True, 1, 3, 1)

    with node.store.write() as connection:
        connection.execute(sa.text("UPDATE interaction_log SET client_addr = '203.0.113.5' WHERE chain_seq = 4"))
    broken = tzsb("audit", "verify", "--home", home)
    assert broken.returncode == 1
    assert "chain broken at entry 4" in broken.stdout and "entry 4 was edited" in broken.stdout
    assert orjson.loads(tzsb("audit", "verify", "--home", home, "--json").stdout)["problem"]["kind"] == "edited"


def test_chain_options_say_what_to_give(node: Node) -> None:
    home = str(node.settings.home)
    bad_head = tzsb("audit", "verify", "--home", home, "--head", "latest")
    assert bad_head.returncode == 1
    assert "--head 'latest': give SEQ:DIGEST as `tzsb audit head` prints it" in bad_head.stderr
    bad_day = tzsb("audit", "archive", "--home", home, "--before", "2026-12-01 10:00:00")
    assert bad_day.returncode == 1
    assert "--before '2026-12-01 10:00:00': give a day as YYYY-MM-DD" in bad_day.stderr
    nothing = tzsb("audit", "archive", "--home", home, "--before", "2000-01-01")
    assert nothing.returncode == 0 and "no entries before 2000-01-01 to archive" in nothing.stdout


def test_record_history_from_the_shell(node: Node) -> None:
    home = str(node.settings.home)
    _traffic(node)
    key = device(1)["EQP_CODE"]

    shown = orjson.loads(tzsb("record", "history", "--home", home, "0101", key, "--json").stdout)
    assert [(row["action"], row["by"], row["random"]) for row in shown] == [("add", "hz", "hz-req-1")]
    assert shown[0]["data"]["SAFETY_MANAGER_PHONE"] == "13800138000"
    table = tzsb("record", "history", "--home", home, "0101", key)
    assert table.returncode == 0 and "hz-req-1" in table.stdout
    unknown = tzsb("record", "history", "--home", home, "0101", "NOPE")
    assert unknown.returncode == 1 and "holds no 0101 record with key NOPE" in unknown.stderr
