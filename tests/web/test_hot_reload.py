"""Rules against a real server process (issue 3): the rules file changes while a client keeps sending,
and a sample valid record of every business type goes through HTTP.

The server is started as an operator starts it (`tzsb init`, `tzsb app create`, `tzsb serve`) on
SQLite, with ``TZSB_RULES_CHECK_SECONDS=0.2``. Waits poll with a deadline; none sleeps longer than
one poll step.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest

from tests.support import device
from tests.web.servers import serving, tzsb
from tzsb.catalog import load_catalog
from tzsb.client import ExchangeClient, build_request
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.protocol.signing import SignAlgorithm
from tzsb.rules.ruleset import RULES_FILE, shipped_rule_sets

APPID: Final = "zj-internal"
REGION: Final = "330000"
CHECK_SECONDS: Final = "0.2"
SHIPPED: Final = shipped_rule_sets()
CATALOG: Final = load_catalog()
NEW_RULE: Final = "floors-at-most-500"
NEW_RULE_MESSAGE: Final = "层数（FLOORS）应不大于 500 / FLOORS must be at most 500"
REJECTED_FLOORS: Final = 999


# ------------------------------------------------------------------ a real server (tests/web/servers.py)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


@dataclass(frozen=True)
class Server:
    url: str
    base: str
    secret: str
    home: Path

    @property
    def rules(self) -> Path:
        return self.home / RULES_FILE

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.base}/healthz", timeout=5).json()
        return answer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A province node on SQLite with an app of the same regulator granted all 22 business types (purpose 11)."""
    home = tmp_path / "node"
    init = tzsb("init", "--home", str(home), "--level", "province", "--region", REGION)
    assert init.returncode == 0, init.stderr
    grants = [arg for code in sorted(BUSINESS_TYPES) for arg in ("--busicode", f"11{code}")]
    # Another system of the same regulator: it sees (and may look up by) sensitive fields unmasked.
    grants += [arg for code in sorted(BUSINESS_TYPES) for arg in ("--unmasked", code)]
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", APPID, "--region", REGION, *grants,
        "--action", "01", "--action", "04", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    app = json.loads(created.stdout)
    assert sorted(app["busicodes"]) == sorted(f"11{code}" for code in BUSINESS_TYPES)
    with serving(home, tmp_path / "serve.log", {"TZSB_RULES_CHECK_SECONDS": CHECK_SECONDS}) as base:
        yield Server(f"{base}/tzsb/exchange", base, app["secret"], home)


# ------------------------------------------------------------------ a client that never stops sending


@dataclass(frozen=True)
class Outcome:
    started: float
    finished: float
    rejected_value: bool  # the record carries FLOORS = 999, which the new rule refuses
    status: int | None = None
    result: str | None = None
    code: str | None = None
    error_rules: tuple[str, ...] = ()
    error_messages: tuple[str, ...] = ()
    warning_rules: frozenset[str] = frozenset()
    failure: str | None = None  # transport error or an answer that does not parse


@dataclass
class Sender:
    """Sends signed 0101 adds one after another, each with a new random and a new record."""

    server: Server
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        number = 0
        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                number += 1
                rejected_value = number % 3 == 0
                record = device(number, FLOORS=REJECTED_FLOORS) if rejected_value else device(number)
                request = build_request(APPID, self.server.secret, SignAlgorithm.MD5, "110101", "01", [record])
                started = time.monotonic()
                try:
                    reply = http.post(
                        self.server.url, content=orjson.dumps(request), headers={"content-type": "application/json"}
                    )
                    answer = orjson.loads(reply.content)
                    datalist = answer["datalist"]
                    details = datalist.get("busilist", []) if datalist["result"] != "0001" else []
                    errors = [error for detail in details for error in detail.get("errors", [])]
                    outcome = Outcome(
                        started,
                        time.monotonic(),
                        rejected_value,
                        status=reply.status_code,
                        result=datalist["result"],
                        code=datalist.get("code"),
                        error_rules=tuple(error["rule"] for error in errors),
                        error_messages=tuple(error["message"] for error in errors),
                        warning_rules=frozenset(
                            warning["rule"] for item in datalist.get("warnings", []) for warning in item["warnings"]
                        ),
                    )
                except Exception as exc:  # every failure is recorded and asserted on below
                    outcome = Outcome(started, time.monotonic(), rejected_value, failure=f"{type(exc).__name__}: {exc}")
                self.outcomes.append(outcome)

    def since(self, moment: float) -> list[Outcome]:
        return [outcome for outcome in list(self.outcomes) if outcome.started > moment]


def marker(version: int) -> dict[str, Any]:
    """A warning every sample record triggers: shows which version of the file answered a request."""
    return {
        "id": f"marker-v{version}",
        "type": "date_range",
        "field": "UPDATE_TIME",
        "max": "2000-01-01",
        "severity": "warning",
    }


def publish(server: Server, document: Any) -> float:
    """Rewrite rules.json in place, as an operator's editor does; returns when the write began."""
    began = time.monotonic()
    server.rules.write_bytes(document.encode() if isinstance(document, str) else orjson.dumps(document))
    return began


def test_rules_file_changes_under_load_without_failed_requests(server: Server) -> None:
    sender = Sender(server)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(sender.outcomes) >= 5, "the first answers")

        # Valid versions, each shown to be in force by its marker warning on a request sent after the write.
        valid_versions = [
            {"0101": {"rules": [marker(1)]}},
            {
                "0101": {
                    "rules": [
                        marker(2),
                        {"id": "rated-load-cap", "type": "numeric_range", "field": "RATED_LOAD", "max": 100000},
                    ],
                    "severity": {"area-code-exists": "error"},
                    "cases": {"valid": [device(0)]},
                }
            },
            {"0101": {"rules": [marker(3)]}, "0102": {"severity": {"unit-code-check-digit": "error"}}},
        ]
        for version, document in enumerate(valid_versions, start=1):
            written = publish(server, document)
            wait_until(
                lambda written=written, version=version: any(
                    f"marker-v{version}" in outcome.warning_rules for outcome in sender.since(written)
                ),
                f"version {version} in force",
            )

        # A broken version: reported by /healthz, nothing disabled, the previous rules keep answering.
        broken_at = publish(server, '{"0101": {"rules": [')

        def reported() -> dict[str, Any] | None:
            health = server.health()
            return health if health["rules_error"] else None

        report = wait_until(reported, "the broken file to be reported")
        assert report["status"] == "degraded"
        assert str(server.rules) in report["rules_error"]
        assert "not valid JSON" in report["rules_error"]
        assert report["disabled_interfaces"] == {}
        assert report["business_types"] == sorted(BUSINESS_TYPES)
        detected = time.monotonic()
        wait_until(lambda: len(sender.since(detected)) >= 6, "requests while the file is broken")
        while_broken = sender.since(detected)
        assert all(outcome.result == "0001" for outcome in while_broken), while_broken
        assert all("marker-v3" in outcome.warning_rules for outcome in while_broken), while_broken
        assert server.health()["rules_error"] == report["rules_error"]

        # A valid version with a new rule that refuses FLOORS 999.
        refused_case = {"record": device(0, FLOORS=REJECTED_FLOORS), "rule": NEW_RULE, "field": "FLOORS"}
        final = {
            "0101": {
                "rules": [marker(4), {"id": NEW_RULE, "type": "numeric_range", "field": "FLOORS", "max": 500}],
                "cases": {"invalid": [refused_case]},
            }
        }
        final_at = publish(server, final)
        in_force = wait_until(
            lambda: next(
                (o for o in sender.since(final_at) if o.rejected_value and o.code == "E_VALIDATION"),
                None,
            ),
            "the new rule in force",
        )
        wait_until(lambda: sum(o.rejected_value for o in sender.since(in_force.started)) >= 3, "more requests")
    finally:
        sender.stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()

    outcomes = list(sender.outcomes)
    assert len(outcomes) >= 30, "the client did not keep sending"
    failures = [o for o in outcomes if o.failure is not None or o.status != 200]
    assert failures == []
    assert not any(o.code == "E_INTERNAL" for o in outcomes)
    # No request failed for any reason but the new rule, and the new rule only refused FLOORS 999.
    refused = [o for o in outcomes if o.result != "0001"]
    assert all(o.rejected_value and o.code == "E_VALIDATION" for o in refused), refused
    assert all(o.error_rules == (NEW_RULE,) for o in refused), refused
    assert all(o.error_messages == (NEW_RULE_MESSAGE,) for o in refused), refused
    # Before the final write the value was accepted; once the rule took hold, it was refused every time.
    assert all(o.result == "0001" for o in outcomes if o.finished < final_at)
    after = [o.result for o in outcomes if o.rejected_value and o.started >= in_force.started]
    assert len(after) >= 3
    assert set(after) == {"0000"}
    assert any(o.rejected_value and o.result == "0001" for o in outcomes if o.finished < broken_at)
    # Records without the value were never refused, before or after.
    assert all(o.result == "0001" for o in outcomes if not o.rejected_value)

    settled = server.health()
    assert (settled["status"], settled["rules_error"], settled["disabled_interfaces"]) == ("ok", None, {})


# ------------------------------------------------------------------ a sample valid record of every business type


def test_a_sample_record_of_every_business_type_is_accepted_over_http(server: Server) -> None:
    assert sorted(SHIPPED) == sorted(BUSINESS_TYPES)
    with ExchangeClient(server.url, APPID, server.secret) as client:  # verifies every answer's signature
        for code in sorted(SHIPPED):
            sample = dict(SHIPPED[code].valid_cases[0])
            busicode = f"11{code}"
            added = client.send(busicode, "01", [sample])
            assert added.ok, (code, added.datalist)
            assert added.datalist["counts"]["inserted"] == 1, (code, added.datalist)
            key_field = CATALOG[code].primary_key
            found = client.send(busicode, "04", [{key_field: sample[key_field]}])
            assert found.ok, (code, found.datalist)
            assert len(found.records) == 1, code
            if key_field not in CATALOG[code].sensitive_fields:  # an ID number comes back masked (purpose 11)
                assert found.records[0][key_field] == sample[key_field], code
    assert server.health()["status"] == "ok"
