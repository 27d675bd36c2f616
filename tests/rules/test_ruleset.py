"""Rule sets (issue 3, "Rules"): the shipped sets and their cases, the node's ``<home>/rules.json``,
broken files, the enable gate (6.1 c) through the pipeline, ``/healthz`` and ``tzsb rules test``,
hot reload inside one process, and warnings in the answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from tests.support import body, call, claimed, device, grant, log_rows, snapshot
from tzsb import __version__
from tzsb.app import Node, build_node
from tzsb.catalog import Catalog, load_catalog
from tzsb.cli.main import app as cli
from tzsb.clock import BEIJING, FixedClock
from tzsb.errors import ConfigurationError
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.rules.ruleset import RULES_FILE, CompiledRules, RuleBook, compile_rules, shipped_rule_sets
from tzsb.web.server import create_asgi

with warnings.catch_warnings():
    # Starlette asks for httpx2 for its test client; httpx (what this project installs) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

CATALOG: Final[Catalog] = load_catalog()
SHIPPED: Final = shipped_rule_sets()
VALID_0101: Final = len(SHIPPED["0101"].valid_cases)
INVALID_0101: Final = len(SHIPPED["0101"].invalid_cases)
FLOORS_MAX: Final = {"id": "floors-at-most-200", "type": "numeric_range", "field": "FLOORS", "max": 200}
FLOORS_MESSAGE: Final = "层数（FLOORS）应不大于 200 / FLOORS must be at most 200"
NEGATIVE_FLOORS_MESSAGE: Final = "层数（FLOORS）应不小于 0 / FLOORS must be at least 0"
CHECK_DIGIT_MESSAGE: Final = (
    "使用单位统一社会信用代码（USE_UNIT_CODE）校验位不正确，请核对号码 / "
    "USE_UNIT_CODE has a wrong check character; check the number"
)
runner = CliRunner()


def write(path: Path, document: Any) -> Path:
    path.write_bytes(orjson.dumps(document) if not isinstance(document, str) else document.encode("utf-8"))
    return path


def rules_path(node: Node) -> Path:
    return node.settings.home / RULES_FILE


def faults(compiled: CompiledRules, code: str, record: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((v.field, v.rule, v.severity.value) for v in compiled.validators[code].violations(record))


def disabled_message(code: str, *details: str) -> str:
    listed = "; ".join(details)
    return (
        f"业务类型 {code} 的数据校验规则测试未全部通过，接口暂未启用（规范 6.1 c），"
        f"请节点管理员运行 tzsb rules test 修正：{listed} / "
        f"The interface for {code} is not enabled: its rule tests fail (spec 6.1 c). "
        f"The node operator should run `tzsb rules test`: {listed}"
    )


def health(node: Node) -> dict[str, Any]:
    reply = TestClient(create_asgi(node), client=("127.0.0.1", 50000)).get(
        "/healthz"
    )  # no lifespan: the fixture closes the node
    assert reply.status_code == 200
    answer: dict[str, Any] = reply.json()
    return answer


# ================================================================== shipped rule sets


def test_the_catalog_has_every_business_type_of_table_7_and_each_a_shipped_rule_set() -> None:
    assert sorted(CATALOG) == sorted(BUSINESS_TYPES)
    assert len(CATALOG) == 22
    assert sorted(SHIPPED) == sorted(CATALOG)


@pytest.fixture(scope="module")
def shipped_compiled() -> CompiledRules:
    return compile_rules(CATALOG, None, FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING)))


@pytest.mark.parametrize("code", sorted(BUSINESS_TYPES))
def test_shipped_cases_all_pass(shipped_compiled: CompiledRules, code: str) -> None:
    rule_set = SHIPPED[code]
    assert len(rule_set.valid_cases) >= 1
    assert len(rule_set.invalid_cases) >= 1
    results = shipped_compiled.results[code]
    assert [(r.kind, r.index) for r in results] == [("valid", i) for i in range(len(rule_set.valid_cases))] + [
        ("invalid", i) for i in range(len(rule_set.invalid_cases))
    ]
    assert [r.detail for r in results if not r.passed] == []
    assert shipped_compiled.failures(code) == []
    # Each valid case is free of errors, not merely of the named rule: check it independently.
    for record in rule_set.valid_cases:
        assert [v for v in shipped_compiled.validators[code].violations(record) if v.severity == "error"] == []


def test_nothing_is_disabled_with_the_shipped_rules(shipped_compiled: CompiledRules) -> None:
    assert shipped_compiled.disabled == {}
    assert sorted(shipped_compiled.validators) == sorted(CATALOG)


def test_a_shipped_invalid_case_names_a_rule_it_really_breaks(shipped_compiled: CompiledRules) -> None:
    """The cases can fail: every invalid case's record is refused or warned about by its named rule."""
    for code, rule_set in SHIPPED.items():
        validator = shipped_compiled.validators[code]
        for case in rule_set.invalid_cases:
            rules = {(v.rule, v.field) for v in validator.violations(case["record"])}
            assert any(rule == case["rule"] and field == case.get("field", field) for rule, field in rules), (
                code,
                case,
            )


# ================================================================== the node's rules.json


def test_node_file_adds_a_rule(tmp_path: Path, clock: FixedClock) -> None:
    path = write(tmp_path / RULES_FILE, {"0101": {"rules": [FLOORS_MAX]}})
    compiled = compile_rules(CATALOG, path, clock)
    record = dict(SHIPPED["0101"].valid_cases[0], FLOORS=201)
    assert faults(compiled, "0101", record) == [("FLOORS", "floors-at-most-200", "error")]
    assert faults(compiled, "0101", dict(record, FLOORS=200)) == []
    assert compiled.disabled == {}
    # Other business types are untouched.
    assert all(r.passed for code in CATALOG for r in compiled.results[code])


def test_node_file_replaces_a_shipped_rule_by_id(tmp_path: Path, clock: FixedClock) -> None:
    replacement = {
        "id": "design-life-not-negative",
        "type": "numeric_range",
        "field": "DESIGN_LIFE",
        "min": 5,
        "severity": "warning",
    }
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, {"0101": {"rules": [replacement]}}), clock)
    base = SHIPPED["0101"].valid_cases[0]
    assert faults(compiled, "0101", dict(base, DESIGN_LIFE=4)) == [
        ("DESIGN_LIFE", "design-life-not-negative", "warning")
    ]
    # -1 is no longer an error: the shipped rule is gone, not kept next to the new one.
    assert faults(compiled, "0101", dict(base, DESIGN_LIFE=-1)) == [
        ("DESIGN_LIFE", "design-life-not-negative", "warning")
    ]
    assert compiled.disabled == {}


def test_node_file_changes_severities_of_record_and_field_rules(tmp_path: Path, clock: FixedClock) -> None:
    document = {"0101": {"severity": {"use-unit-code-check-digit": "error", "USE_UNIT_CODE.pattern": "warning"}}}
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    base = SHIPPED["0101"].valid_cases[0]
    assert faults(compiled, "0101", dict(base, USE_UNIT_CODE="91350100M0001TGQXM")) == [
        ("USE_UNIT_CODE", "use-unit-code-check-digit", "error")
    ]
    report = compiled.validators["0101"].check_batch([dict(base, USE_UNIT_CODE="not-a-code")])
    assert [w["rule"] for w in report.warnings[0].as_dict()["warnings"]] == ["pattern"]
    assert [e["rule"] for e in report.errors[0].as_dict()["errors"]] == [
        "use-unit-code-check-digit"
    ]  # malformed: now an error
    assert compiled.disabled == {}


def test_node_file_switches_a_rule_off(tmp_path: Path, clock: FixedClock) -> None:
    document = {"0101": {"disabled": ["design-life-not-negative", "USE_UNIT_CODE.pattern"]}}
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    base = SHIPPED["0101"].valid_cases[0]
    assert faults(compiled, "0101", dict(base, DESIGN_LIFE=-1)) == []
    assert [rule for _, rule, _ in faults(compiled, "0101", dict(base, USE_UNIT_CODE="x"))] == [
        "use-unit-code-check-digit"
    ]  # the pattern is off; the check-digit rule still reports the malformed code


def test_switching_a_shipped_rule_off_keeps_the_interface_enabled(tmp_path: Path, clock: FixedClock) -> None:
    document = {"0101": {"disabled": ["use-unit-code-check-digit"]}}
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    assert compiled.disabled == {}


def test_node_file_adds_cases(tmp_path: Path, clock: FixedClock) -> None:
    base = SHIPPED["0101"].valid_cases[0]
    document = {
        "0101": {
            "rules": [FLOORS_MAX],
            "cases": {
                "valid": [dict(base, FLOORS=200)],
                "invalid": [
                    {"record": dict(base, FLOORS=201), "rule": "floors-at-most-200", "field": "FLOORS"},
                    {"record": dict(base, FLOORS=999), "rule": "floors-at-most-200"},
                ],
            },
        }
    }
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    results = compiled.results["0101"]
    assert len(results) == VALID_0101 + 1 + INVALID_0101 + 2
    assert all(r.passed for r in results)
    assert [r.detail for r in results if r.index >= VALID_0101 and r.kind == "valid"] == [
        f"valid case {VALID_0101} of 0101 passes"
    ]
    assert [r.detail for r in results if r.kind == "invalid" and r.index >= INVALID_0101] == [
        f"invalid case {INVALID_0101} of 0101 fails with floors-at-most-200 on FLOORS",
        f"invalid case {INVALID_0101 + 1} of 0101 fails with floors-at-most-200",
    ]


def test_cases_that_do_not_hold_disable_the_interface_but_are_no_configuration_error(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Issue 3: an interface whose rule tests fail is not enabled — the file itself is not refused."""
    base = SHIPPED["0101"].valid_cases[0]
    document = {
        "0101": {
            "rules": [FLOORS_MAX],
            "cases": {
                "valid": [dict(base, FLOORS=201, USE_STATUS="7")],
                "invalid": [
                    {"record": dict(base, FLOORS=200), "rule": "floors-at-most-200", "field": "FLOORS"},
                    {"record": dict(base, FLOORS=201), "rule": "floors-at-most-200", "field": "STOPS"},
                ],
            },
        }
    }
    compiled = compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    assert compiled.disabled == {
        "0101": [
            f"valid case {VALID_0101} of 0101 is rejected: USE_STATUS code_list; FLOORS floors-at-most-200",
            f"invalid case {INVALID_0101} of 0101 should fail with floors-at-most-200 on FLOORS but got no fault",
            f"invalid case {INVALID_0101 + 1} of 0101 should fail with floors-at-most-200 on STOPS "
            "but got FLOORS floors-at-most-200",
        ]
    }
    assert [code for code in CATALOG if compiled.failures(code)] == ["0101"]


def test_a_business_type_without_valid_cases_is_disabled(clock: FixedClock) -> None:
    """6.1 c: an interface runs only once its rules are shown to pass a real record."""
    from tzsb.rules.ruleset import RuleSet, run_cases
    from tzsb.rules.validator import RecordValidator

    results = run_cases(RecordValidator(CATALOG["0900"], clock=clock), RuleSet("0900"))
    assert [(r.kind, r.index, r.passed, r.detail) for r in results] == [
        ("valid", -1, False, "0900 has no valid test case; add one to its rule set")
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{not json", "{path}: not valid JSON (", id="bad-json"),
        pytest.param("", "{path}: not valid JSON (", id="empty-file"),
        pytest.param('{"0101": {"rules": [', "{path}: not valid JSON (", id="truncated"),
        pytest.param(["0101"], '{path}: must be an object of business codes, e.g. {"0101": {...}}',
                     id="top-level-list"),
        pytest.param({"0199": {}}, "{path}: no business type 0199 in the catalog", id="unknown-business"),
        pytest.param({"0100": {}, "0101": {}}, "{path}: no business type 0100 in the catalog",
                     id="heading-not-business"),
        pytest.param({"0101": []}, "{path}: the rule set of 0101 must be a JSON object", id="set-not-object"),
        pytest.param({"0101": {"rulez": []}}, "{path}: unknown key(s) rulez in the rule set of 0101", id="unknown-key"),
        pytest.param({"0101": {"rules": {"id": "x"}}}, "{path}: rules must be a list", id="rules-not-list"),
        pytest.param({"0101": {"rules": ["x"]}}, "{path}: each rule of 0101 must be an object", id="rule-not-object"),
        pytest.param({"0101": {"rules": [{"id": "x", "type": "bogus", "field": "FLOORS"}]}},
                     "{path}: 0101: rule x has unknown type 'bogus'; known: check_digit, code_by_kind, compare, "
                     "date_range, device_code, equipment_code, grade_by_figures, numeric_range, region_code, "
                     "required_if, reference, related_state",
                     id="unknown-rule-type"),
        pytest.param({"0101": {"rules": [{"type": "numeric_range", "field": "FLOORS", "max": 1}]}},
                     "{path}: 0101: every rule needs an id", id="rule-without-id"),
        pytest.param({"0101": {"severity": {"use-unit-code-check-digit": "fatal"}}},
                     "{path}: severity of 0101 maps rule ids to 'error' or 'warning'", id="bad-severity"),
        pytest.param({"0101": {"severity": ["x"]}},
                     "{path}: severity of 0101 maps rule ids to 'error' or 'warning'", id="severity-not-object"),
        pytest.param({"0101": {"rules": [dict(FLOORS_MAX, severity="fatal")]}},
                     "{path}: 0101: severity of floors-at-most-200 must be error or warning", id="bad-rule-severity"),
        pytest.param({"0101": {"disabled": "design-life-not-negative"}}, "{path}: disabled must be a list",
                     id="disabled-not-list"),
        pytest.param({"0101": {"cases": []}},
                     "{path}: cases of 0101 must be an object with valid and invalid lists", id="cases-not-object"),
        pytest.param({"0101": {"cases": {"valid": {}}}}, "{path}: cases.valid must be a list", id="valid-not-list"),
        pytest.param({"0101": {"cases": {"invalid": [{"record": {}}]}}},
                     "{path}: each invalid case of 0101 needs a record and the rule it breaks", id="case-without-rule"),
        pytest.param({"0101": {"cases": {"invalid": [{"rule": "required"}]}}},
                     "{path}: each invalid case of 0101 needs a record and the rule it breaks",
                     id="case-without-record"),
        pytest.param({"0101": {"cases": {"invalid": ["x"]}}},
                     "{path}: each invalid case of 0101 needs a record and the rule it breaks", id="case-not-object"),
    ],
)  # fmt: skip
def test_broken_node_file_is_a_configuration_error(
    tmp_path: Path, clock: FixedClock, content: Any, message: str
) -> None:
    path = write(tmp_path / RULES_FILE, content)
    with pytest.raises(ConfigurationError) as raised:
        compile_rules(CATALOG, path, clock)
    expected = message.replace("{path}", str(path))
    if expected.endswith("("):
        assert str(raised.value).startswith(expected)
    else:
        assert str(raised.value) == expected


def test_missing_node_file_means_shipped_rules(tmp_path: Path, clock: FixedClock) -> None:
    compiled = compile_rules(CATALOG, tmp_path / RULES_FILE, clock)
    assert compiled.disabled == {}
    assert [(r.kind, r.index) for r in compiled.results["0101"]] == [
        (r.kind, r.index) for r in compile_rules(CATALOG, None, clock).results["0101"]
    ]


def test_duplicate_rule_ids_in_the_node_file_are_refused(tmp_path: Path, clock: FixedClock) -> None:
    document = {"0101": {"rules": [dict(FLOORS_MAX, max=1), FLOORS_MAX]}}
    with pytest.raises(ConfigurationError, match="floors-at-most-200"):
        compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)


def test_a_bad_rule_parameter_names_the_business_type(tmp_path: Path, clock: FixedClock) -> None:
    bad_op = {"id": "x", "type": "compare", "field": "NEXT_INSP_DATE", "op": "=>", "other": "INSP_DATE"}
    document = {"0401": {"rules": [bad_op]}}
    with pytest.raises(ConfigurationError) as raised:
        compile_rules(CATALOG, write(tmp_path / RULES_FILE, document), clock)
    assert "0401" in str(raised.value)


# ================================================================== the enable gate through the pipeline


def test_failing_cases_disable_the_interface(make_node: Callable[..., Node]) -> None:
    node = make_node(rules_check_seconds=0)
    secret = grant(node)
    base = device(50)
    write(
        rules_path(node),
        {
            "0101": {
                "cases": {
                    "valid": [dict(base, USE_STATUS="7")],
                    "invalid": [{"record": base, "rule": "floors-not-negative", "field": "FLOORS"}],
                }
            }
        },
    )
    details = (
        f"valid case {VALID_0101} of 0101 is rejected: USE_STATUS code_list",
        f"invalid case {INVALID_0101} of 0101 should fail with floors-not-negative on FLOORS but got no fault",
    )
    before, logged = snapshot(node), len(log_rows(node))

    answer = call(node, body("hz-city", secret, "140101", "01", [device(1)], random="gate-0001"))
    assert answer["datalist"] == {"result": "0000", "message": disabled_message("0101", *details), "code": "E_DISABLED"}
    assert answer["random"] == "gate-0001"
    assert snapshot(node) == before  # nothing written, the random not claimed (the refusal does not depend on data)
    rows = log_rows(node)
    assert len(rows) == logged + 1
    assert {key: rows[-1][key] for key in ("appid", "busicode", "action", "random", "result", "code", "message")} == {
        "appid": "hz-city",
        "busicode": "140101",
        "action": "01",
        "random": "gate-0001",
        "result": "0000",
        "code": "E_DISABLED",
        "message": disabled_message("0101", *details),
    }
    # Every action on the interface is off, queries included.
    query = call(node, body("hz-city", secret, "140101", "04", [{}]))
    assert query["datalist"]["code"] == "E_DISABLED"

    # The other interfaces keep working.
    unit = dict(SHIPPED["0102"].valid_cases[0])
    assert call(node, body("hz-city", secret, "140102", "01", [unit]))["datalist"]["result"] == "0001"

    report = health(node)
    assert report == {
        "status": "degraded",
        "version": __version__,
        "level": "province",
        "region": "330000",
        "interface": node.settings.service_path,
        "business_types": [code for code in sorted(CATALOG) if code != "0101"],
        "disabled_interfaces": {"0101": list(details)},
        "rules_error": None,
    }

    # Fix the file: the interface comes back without a restart, and the same random now succeeds.
    write(rules_path(node), {"0101": {"cases": {"valid": [base]}}})
    again = call(node, body("hz-city", secret, "140101", "01", [device(1)], random="gate-0001"))
    assert again["datalist"]["result"] == "0001", again
    assert health(node)["status"] == "ok"
    assert health(node)["disabled_interfaces"] == {}


def test_a_node_started_with_failing_cases_serves_that_interface_disabled(
    make_node: Callable[..., Node], clock: FixedClock
) -> None:
    first = make_node()
    secret = grant(first)
    write(rules_path(first), {"0101": {"cases": {"valid": [device(1, USE_STATUS="0")]}}})
    node = build_node(first.settings, clock)  # the same home, started with the file in place
    try:
        detail = f"valid case {VALID_0101} of 0101 is rejected: USE_STATUS code_list"
        answer = call(node, body("hz-city", secret, "140101", "01", [device(2)]))["datalist"]
        assert answer == {"result": "0000", "message": disabled_message("0101", detail), "code": "E_DISABLED"}
        report = health(node)
        assert (report["status"], report["disabled_interfaces"], report["rules_error"]) == (
            "degraded",
            {"0101": [detail]},
            None,
        )
    finally:
        node.close()


# ================================================================== tzsb rules test


def rules_test(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["rules", "test", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_rules_test_passes_with_the_shipped_rules(tmp_path: Path) -> None:
    code, out, _ = rules_test("--home", str(tmp_path))
    assert code == 0, out
    assert "FAIL" not in out
    assert out.count("enabled") == len(CATALOG)


def test_cli_rules_test_names_the_failing_case(tmp_path: Path) -> None:
    base = SHIPPED["0101"].valid_cases[0]
    write(
        tmp_path / RULES_FILE,
        {"0101": {"rules": [FLOORS_MAX], "cases": {"invalid": [{"record": dict(base), "rule": "floors-at-most-200"}]}}},
    )
    code, out, _ = rules_test("--home", str(tmp_path))
    assert code == 1
    failing = f"invalid case {INVALID_0101} of 0101 should fail with floors-at-most-200 but got no fault"
    assert f"FAIL  {failing}" in out
    assert out.count("FAIL") == 1
    assert "disabled" in out
    # Only the other business types: they all pass.
    code, out, _ = rules_test("--home", str(tmp_path), "--busicode", "0102", "--busicode", "140401")
    assert code == 0
    assert "FAIL" not in out
    # By busicode, the failing one is found again.
    code, out, _ = rules_test("--home", str(tmp_path), "--busicode", "110101")
    assert code == 1
    assert failing in out


def test_cli_rules_test_verbose_lists_passing_cases(tmp_path: Path) -> None:
    code, out, _ = rules_test("--home", str(tmp_path), "--busicode", "0101", "-v")
    assert code == 0
    assert "ok    valid case 0 of 0101 passes" in out
    assert f"ok    invalid case {INVALID_0101 - 1} of 0101 fails with " in out


def test_cli_rules_test_reports_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path / RULES_FILE, {"0199": {}})
    code, _, err = rules_test("--home", str(tmp_path))
    assert code == 1
    assert " ".join(err.split()) == f"error: {path}: no business type 0199 in the catalog"


# ================================================================== RuleBook hot reload in one process


def test_rulebook_reloads_a_changed_file(make_node: Callable[..., Node]) -> None:
    node = make_node(rules_check_seconds=0)
    secret = grant(node)
    first = node.rules.current()
    assert node.rules.current() is first  # no file, no change: the same generation
    assert node.rules.last_error is None

    write(rules_path(node), {"0101": {"rules": [FLOORS_MAX]}})
    second = node.rules.current()
    assert second is not first
    assert node.rules.last_error is None
    assert faults(second, "0101", device(1, FLOORS=201)) == [("FLOORS", "floors-at-most-200", "error")]
    assert faults(first, "0101", device(1, FLOORS=201)) == []  # a request in flight keeps its generation
    assert node.rules.current() is second  # unchanged file: no recompilation

    refused = call(node, body("hz-city", secret, "140101", "01", [device(1, FLOORS=201)]))["datalist"]
    assert refused["code"] == "E_VALIDATION"
    assert refused["busilist"] == [
        {
            "index": 0,
            "key": device(1)["EQP_CODE"],
            "errors": [{"field": "FLOORS", "rule": "floors-at-most-200", "message": FLOORS_MESSAGE}],
        }
    ]

    # A broken write: the previous rules stay in force, the error is kept for /healthz.
    path = write(rules_path(node), '{"0101": {"rules": [')
    assert node.rules.current() is second
    assert node.rules.last_error is not None
    assert node.rules.last_error.startswith(f"{path}: not valid JSON (")
    still = call(node, body("hz-city", secret, "140101", "01", [device(2, FLOORS=201)]))["datalist"]
    assert [e["rule"] for e in still["busilist"][0]["errors"]] == ["floors-at-most-200"]
    report = health(node)
    assert (report["status"], report["rules_error"], report["disabled_interfaces"]) == (
        "degraded",
        node.rules.last_error,
        {},
    )
    assert report["business_types"] == sorted(CATALOG)

    # A file that parses but does not compile is refused the same way.
    write(rules_path(node), {"0101": {"rules": [{"id": "x", "type": "bogus"}]}})
    assert node.rules.current() is second
    assert node.rules.last_error is not None
    assert node.rules.last_error.endswith(
        "0101: rule x has unknown type 'bogus'; known: check_digit, code_by_kind, compare, date_range, device_code, "
        "equipment_code, grade_by_figures, numeric_range, region_code, required_if, reference, related_state"
    )

    # A good version again: in force, the error cleared.
    write(rules_path(node), {"0101": {"rules": [dict(FLOORS_MAX, max=300)]}})
    third = node.rules.current()
    assert third is not second
    assert node.rules.last_error is None
    assert health(node)["status"] == "ok"
    answer = call(node, body("hz-city", secret, "140101", "01", [device(3, FLOORS=201)]))["datalist"]
    assert answer["result"] == "0001", answer

    # The file removed: back to the shipped rules.
    rules_path(node).unlink()
    fourth = node.rules.current()
    assert fourth is not third
    assert faults(fourth, "0101", device(4, FLOORS=999)) == []


def test_rulebook_checks_the_file_at_the_configured_interval(make_node: Callable[..., Node]) -> None:
    node = make_node(rules_check_seconds=3600)
    first = node.rules.current()
    write(rules_path(node), {"0101": {"rules": [FLOORS_MAX]}})
    assert node.rules.current() is first  # not yet looked at


def test_a_broken_file_at_start_is_refused(tmp_path: Path, clock: FixedClock) -> None:
    path = write(tmp_path / RULES_FILE, "{")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        RuleBook(CATALOG, path, clock, check_every=0)


# ================================================================== warnings in the answer


def test_warnings_come_back_in_the_answer_and_the_record_is_stored(node: Node) -> None:
    secret = grant(node)
    records = [
        device(1, USE_UNIT_CODE="91350100M0001TGQXM"),
        device(2),
        device(3, LONGITUDE="10.5", LATITUDE=30.27),
    ]
    answer = call(node, body("hz-city", secret, "140101", "01", records))["datalist"]
    assert answer["result"] == "0001", answer
    assert answer["counts"]["inserted"] == 3
    assert answer["warnings"] == [
        {
            "index": 0,
            "key": records[0]["EQP_CODE"],
            "warnings": [
                {"field": "USE_UNIT_CODE", "rule": "use-unit-code-check-digit", "message": CHECK_DIGIT_MESSAGE}
            ],
        },
        {
            "index": 2,
            "key": records[2]["EQP_CODE"],
            "warnings": [
                {
                    "field": "LONGITUDE",
                    "rule": "longitude-in-china",
                    "message": "经度（LONGITUDE）应在 73 … 136 范围内 / LONGITUDE must lie within 73 … 136",
                }
            ],
        },
    ]
    assert answer["message"].endswith("；数据质量警告 2 条 / 2 record(s) with warnings")
    assert log_rows(node)[-1]["message"] == answer["message"]
    assert log_rows(node)[-1]["result"] == "0001"

    stored = call(node, body("hz-city", secret, "140101", "04", [{"EQP_CODE": records[0]["EQP_CODE"]}]))["datalist"]
    assert [(r["EQP_CODE"], r["USE_UNIT_CODE"]) for r in stored["busilist"]] == [
        (records[0]["EQP_CODE"], "91350100M0001TGQXM")
    ]


def test_no_warnings_key_without_warnings(node: Node) -> None:
    secret = grant(node)
    answer = call(node, body("hz-city", secret, "140101", "01", [device(1)]))["datalist"]
    assert answer["result"] == "0001"
    assert "warnings" not in answer
    assert "警告" not in answer["message"]


def test_errors_reject_the_batch_and_warnings_are_not_answered(node: Node) -> None:
    secret = grant(node)
    before = snapshot(node)
    records = [device(1, USE_UNIT_CODE="91350100M0001TGQXM"), device(2, FLOORS=-1)]
    reply = call(node, body("hz-city", secret, "140101", "01", records))
    answer = reply["datalist"]
    assert answer["code"] == "E_VALIDATION"
    assert answer["busilist"] == [
        {
            "index": 1,
            "key": records[1]["EQP_CODE"],
            "errors": [{"field": "FLOORS", "rule": "floors-not-negative", "message": NEGATIVE_FLOORS_MESSAGE}],
        }
    ]
    assert "warnings" not in answer
    assert snapshot(node) == claimed(before, reply)


def test_reference_rule_switched_on_through_the_node_file(make_node: Callable[..., Node]) -> None:
    node = make_node(rules_check_seconds=0)
    secret = grant(node, busicodes=frozenset({"140101", "140401"}))
    shipped = next(rule for rule in SHIPPED["0401"].rules if rule["id"] == "eqp-code-held")
    write(rules_path(node), {"0401": {"rules": [dict(shipped, enabled=True)]}})
    inspection = dict(SHIPPED["0401"].valid_cases[0], EQP_CODE=device(9)["EQP_CODE"], AREA_CODE="330106")
    refused = call(node, body("hz-city", secret, "140401", "01", [inspection]))["datalist"]
    assert refused["code"] == "E_VALIDATION", refused
    assert [(e["field"], e["rule"]) for e in refused["busilist"][0]["errors"]] == [("EQP_CODE", "eqp-code-held")]
    assert call(node, body("hz-city", secret, "140101", "01", [device(9)]))["datalist"]["result"] == "0001"
    accepted = call(node, body("hz-city", secret, "140401", "01", [inspection]))["datalist"]
    assert accepted["result"] == "0001", accepted


def test_a_list_where_a_code_belongs_is_a_validation_error_not_an_internal_error(node: Node) -> None:
    secret = grant(node, busicodes=frozenset({"140301"}))
    check = dict(SHIPPED["0301"].valid_cases[0], RECTIFY_TYPE=["2"])
    answer = call(node, body("hz-city", secret, "140301", "01", [check]))["datalist"]
    assert answer["code"] == "E_VALIDATION", answer
    assert [(e["field"], e["rule"]) for e in answer["busilist"][0]["errors"]] == [("RECTIFY_TYPE", "type")]
