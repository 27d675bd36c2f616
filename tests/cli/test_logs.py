"""The node's own log lines: their formats, every worker process, and nothing secret in them."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.web.servers import init_province, serving, tzsb
from tzsb.cli.logs import JSONFormatter, log_config
from tzsb.client import ExchangeClient


def _record(exc_info: bool = False) -> logging.LogRecord:
    error = None
    if exc_info:
        try:
            raise RuntimeError("the disk is full")
        except RuntimeError:
            error = sys.exc_info()
    record = logging.LogRecord("tzsb.rules.ruleset", logging.ERROR, __file__, 1, "rules from %s", ("x.json",), error)
    record.created = 1796428799.123  # 2026-12-04T23:59:59.123Z
    record.msecs = 123.0
    return record


def test_a_json_line_carries_the_exception_when_there_is_one() -> None:
    plain = json.loads(JSONFormatter().format(_record()))
    assert plain == {
        "time": "2026-12-04T23:59:59.123Z",
        "level": "ERROR",
        "logger": "tzsb.rules.ruleset",
        "message": "rules from x.json",
    }
    failed = json.loads(JSONFormatter().format(_record(exc_info=True)))
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert failed["exception"].endswith("RuntimeError: the disk is full")


def test_the_text_format_is_a_utc_timestamp_level_logger_and_message() -> None:
    formatter = logging.config.DictConfigurator(log_config("debug", "text")).configure_formatter(
        log_config("debug", "text")["formatters"]["node"]
    )
    assert formatter.format(_record()) == "2026-12-04T23:59:59.123Z ERROR tzsb.rules.ruleset: rules from x.json"


def test_the_level_applies_to_the_nodes_loggers_and_uvicorns() -> None:
    config = log_config("warning", "json")
    assert {name: config["loggers"][name]["level"] for name in ("tzsb", "uvicorn", "uvicorn.error")} == {
        "tzsb": "WARNING",
        "uvicorn": "WARNING",
        "uvicorn.error": "WARNING",
    }
    assert config["loggers"]["uvicorn.access"]["handlers"] == []  # the interaction log records requests


def _app(home: Path) -> str:
    created = tzsb("app", "create", "--home", str(home), "--appid", "reader", "--region", "330100",
                   "--busicode", "140101", "--action", "04", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


def _wait_for(log: Path, found: Callable[[str], bool], poke: Callable[[], None]) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        poke()
        text = log.read_text(encoding="utf-8")
        if found(text):
            return text
        time.sleep(0.2)
    pytest.fail(f"not logged: {log.read_text(encoding='utf-8')}")


def test_every_worker_process_logs_in_the_configured_format(tmp_path: Path) -> None:
    """--workers N: each worker re-reads its settings; an INFO line of the node (rules reloaded), which
    nothing printed before, arrives as a JSON object."""
    home = tmp_path / "node"
    init_province(home)
    secret = _app(home)
    log = tmp_path / "serve.log"
    env = {"TZSB_RULES_CHECK_SECONDS": "0", "TZSB_LOG_FORMAT": "json"}
    with serving(home, log, env=env, args=("--workers", "2")) as base:
        (home / "rules.json").write_text("{}", encoding="utf-8")

        def query() -> None:
            with ExchangeClient(f"{base}/tzsb/exchange", "reader", secret) as client:
                client.send("140101", "04", [{"_region": "330100"}])

        text = _wait_for(log, lambda text: "rules reloaded from" in text, query)
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    reloaded = [entry for entry in entries if entry["message"].startswith("rules reloaded from")]
    assert reloaded[0]["level"] == "INFO"
    assert reloaded[0]["logger"] == "tzsb.rules.ruleset"
    assert reloaded[0]["time"].endswith("Z")
    # uvicorn's worker lines ("Started server process [...]") go through the same formatter.
    assert any(entry["logger"].startswith("uvicorn") for entry in entries)


def test_no_log_line_holds_a_secret(tmp_path: Path) -> None:
    """At the most talkative level, with requests signed and refused: no app secret, no master key."""
    home = tmp_path / "node"
    init_province(home)
    secret = _app(home)
    master_key = (home / "master.key").read_text(encoding="utf-8").strip()
    log = tmp_path / "serve.log"
    env = {"TZSB_RULES_CHECK_SECONDS": "0"}
    with serving(home, log, env=env, args=("--log-level", "debug")) as base:
        (home / "rules.json").write_text("{ not json", encoding="utf-8")

        def requests() -> None:
            with ExchangeClient(f"{base}/tzsb/exchange", "reader", secret) as client:
                client.send("140101", "04", [{"_region": "330100"}])
            with ExchangeClient(f"{base}/tzsb/exchange", "reader", secret[::-1]) as client:
                client.send("140101", "04", [{"_region": "330100"}])  # a wrong signature

        text = _wait_for(log, lambda text: "rules file rejected" in text, requests)
    assert " DEBUG " in text or " INFO " in text  # the level reached the node: lines below WARNING appear
    for value in (secret, master_key):
        assert value not in text
