"""Rule sets: the shipped defaults per business type plus the node's ``<home>/rules.json``.

A rule set names record rules, severities and switched-off rules, and carries test cases:
records that must pass and records that must fail with a named rule. An interface whose cases
do not all pass is not enabled (spec 6.1 c). The node file is re-read when it changes (6.3.2),
without a restart; a broken file is reported and the rules in force stay as they were.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tzsb.catalog import Catalog
from tzsb.clock import Clock
from tzsb.errors import ConfigurationError
from tzsb.rules.base import Severity
from tzsb.rules.validator import RecordValidator

logger = logging.getLogger(__name__)

RULES_FILE = "rules.json"
REQUIRE_CASES = True


@dataclass(frozen=True, slots=True)
class RuleSet:
    business: str
    rules: tuple[Mapping[str, Any], ...] = ()
    severities: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    valid_cases: tuple[Mapping[str, Any], ...] = ()
    invalid_cases: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseResult:
    business: str
    kind: str  # "valid" or "invalid"
    index: int
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """One consistent generation of rules: validators and the outcome of their test cases."""

    validators: Mapping[str, RecordValidator]
    results: Mapping[str, tuple[CaseResult, ...]]
    loaded_at: float

    def failures(self, business: str) -> list[CaseResult]:
        return [result for result in self.results.get(business, ()) if not result.passed]

    @property
    def disabled(self) -> dict[str, list[str]]:
        """Business types whose rule tests fail, with the failing cases described."""
        return {
            code: [result.detail for result in failed]
            for code in sorted(self.results)
            if (failed := self.failures(code))
        }


def _as_list(value: Any, what: str, source: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigurationError(f"{source}: {what} must be a list")
    return value


def parse_rule_set(code: str, document: Any, source: str) -> RuleSet:
    if not isinstance(document, dict):
        raise ConfigurationError(f"{source}: the rule set of {code} must be a JSON object")
    unknown = set(document) - {"business", "rules", "severity", "disabled", "cases"}
    if unknown:
        raise ConfigurationError(f"{source}: unknown key(s) {', '.join(sorted(unknown))} in the rule set of {code}")
    rules = _as_list(document.get("rules"), "rules", source)
    if not all(isinstance(rule, dict) for rule in rules):
        raise ConfigurationError(f"{source}: each rule of {code} must be an object")
    ids = [str(rule.get("id")) for rule in rules]
    repeated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if repeated:
        raise ConfigurationError(f"{source}: rule id(s) {', '.join(repeated)} used twice in the rule set of {code}")
    severities = document.get("severity", {})
    if not isinstance(severities, dict) or not all(value in ("error", "warning") for value in severities.values()):
        raise ConfigurationError(f"{source}: severity of {code} maps rule ids to 'error' or 'warning'")
    cases = document.get("cases", {})
    if not isinstance(cases, dict):
        raise ConfigurationError(f"{source}: cases of {code} must be an object with valid and invalid lists")
    valid = _as_list(cases.get("valid"), "cases.valid", source)
    invalid = _as_list(cases.get("invalid"), "cases.invalid", source)
    if not all(isinstance(record, dict) for record in valid):
        raise ConfigurationError(f"{source}: each valid case of {code} must be a record (a JSON object)")
    for case in invalid:
        if not isinstance(case, dict) or not isinstance(case.get("record"), dict) or "rule" not in case:
            raise ConfigurationError(f"{source}: each invalid case of {code} needs a record and the rule it breaks")
    return RuleSet(
        business=code,
        rules=tuple(rules),
        severities={str(k): str(v) for k, v in severities.items()},
        disabled=frozenset(str(item) for item in _as_list(document.get("disabled"), "disabled", source)),
        valid_cases=tuple(valid),
        invalid_cases=tuple(invalid),
    )


def shipped_rule_sets() -> dict[str, RuleSet]:
    sets: dict[str, RuleSet] = {}
    for entry in resources.files("tzsb.rules").joinpath("sets").iterdir():
        if entry.name.endswith(".json"):
            code = entry.name.removesuffix(".json")
            sets[code] = parse_rule_set(code, orjson.loads(entry.read_bytes()), f"rules/sets/{entry.name}")
    return sets


def merge(base: RuleSet, local: RuleSet) -> RuleSet:
    """The node's rule set on top of the shipped one: same rule id replaces, cases add up."""
    by_id = {str(rule.get("id")): rule for rule in base.rules}
    by_id.update({str(rule.get("id")): rule for rule in local.rules})
    return RuleSet(
        business=base.business,
        rules=tuple(by_id.values()),
        severities={**base.severities, **local.severities},
        disabled=base.disabled | local.disabled,
        valid_cases=base.valid_cases + local.valid_cases,
        invalid_cases=base.invalid_cases + local.invalid_cases,
    )


def read_local_rule_sets(path: Path) -> dict[str, RuleSet]:
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f'{path}: must be an object of business codes, e.g. {{"0101": {{...}}}}')
    return {str(code): parse_rule_set(str(code), value, str(path)) for code, value in document.items()}


def run_cases(validator: RecordValidator, rule_set: RuleSet) -> tuple[CaseResult, ...]:
    results: list[CaseResult] = []
    code = rule_set.business
    if not rule_set.valid_cases and REQUIRE_CASES:
        # 6.1 c: an interface runs only once its rules are shown to pass real records.
        results.append(CaseResult(code, "valid", -1, False, f"{code} has no valid test case; add one to its rule set"))
    for index, record in enumerate(rule_set.valid_cases):
        errors = [v for v in validator.violations(record) if v.severity is Severity.ERROR]
        results.append(
            CaseResult(
                code,
                "valid",
                index,
                not errors,
                f"valid case {index} of {code} is rejected: " + "; ".join(f"{v.field} {v.rule}" for v in errors)
                if errors
                else f"valid case {index} of {code} passes",
            )
        )
    switched_off = rule_set.disabled | {str(rule.get("id")) for rule in rule_set.rules if not rule.get("enabled", True)}
    for index, case in enumerate(rule_set.invalid_cases):
        # A case for a rule the node switched off proves nothing about the rules in force.
        if case["rule"] in switched_off or f"{case.get('field')}.{case['rule']}" in switched_off:
            continue
        found = validator.violations(case["record"])
        wanted_field = case.get("field")
        hit = any(v.rule == case["rule"] and (wanted_field is None or v.field == wanted_field) for v in found)
        target = f"{case['rule']}" + (f" on {wanted_field}" if wanted_field else "")
        results.append(
            CaseResult(
                code,
                "invalid",
                index,
                hit,
                f"invalid case {index} of {code} fails with {target}"
                if hit
                else f"invalid case {index} of {code} should fail with {target} but got "
                + (", ".join(f"{v.field} {v.rule}" for v in found) or "no fault"),
            )
        )
    return tuple(results)


def compile_rules(catalog: Catalog, local_path: Path | None, clock: Clock) -> CompiledRules:
    """Compile every business type's rules and run its cases. Raises ConfigurationError on a bad set."""
    shipped = shipped_rule_sets()
    local = read_local_rule_sets(local_path) if local_path is not None else {}
    unknown = sorted(set(local) - set(catalog))
    if unknown:
        raise ConfigurationError(f"{local_path}: no business type {', '.join(unknown)} in the catalog")
    validators: dict[str, RecordValidator] = {}
    results: dict[str, tuple[CaseResult, ...]] = {}
    for code in catalog:
        rule_set = shipped.get(code, RuleSet(code))
        if code in local:
            rule_set = merge(rule_set, local[code])
        try:
            validator = RecordValidator(catalog[code], rule_set.rules, rule_set.severities, rule_set.disabled, clock)
        except ConfigurationError as exc:
            where = str(local_path) if code in local else f"rules/sets/{code}.json"
            raise ConfigurationError(f"{where}: {exc}") from exc
        validators[code] = validator
        results[code] = run_cases(validator, rule_set)
    return CompiledRules(validators, results, time.time())


class RuleBook:
    """The rules in force, re-read when ``<home>/rules.json`` changes.

    Requests take ``current()`` once and use that generation to the end, so a reload never
    changes the rules under a request in flight.
    """

    def __init__(self, catalog: Catalog, local_path: Path | None, clock: Clock, check_every: float = 1.0) -> None:
        self.catalog = catalog
        self.local_path = local_path
        self.clock = clock
        self.check_every = check_every
        self.last_error: str | None = None
        #: Rule sets compiled from a changed rules.json since start (this process).
        self.reloads = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._signature = self._file_signature()
        self._checked = time.monotonic()
        self._compiled = compile_rules(catalog, local_path, clock)

    def _file_signature(self) -> tuple[int, int, int] | None:
        if self.local_path is None:
            return None
        try:
            status = os.stat(self.local_path)
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def current(self) -> CompiledRules:
        if self.local_path is not None and time.monotonic() - self._checked >= self.check_every:
            self._maybe_reload()
        return self._compiled

    def _maybe_reload(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is reloading; keep serving the rules in force
        try:
            self._checked = time.monotonic()
            signature = self._file_signature()
            if signature == self._signature:
                return
            self._signature = signature
            try:
                self._compiled = compile_rules(self.catalog, self.local_path, self.clock)
                self.last_error = None
                self.reloads += 1
                logger.info("rules reloaded from %s", self.local_path)
            except Exception as exc:  # any fault in an operator's file must leave the rules in force
                self.last_error = str(exc) if isinstance(exc, ConfigurationError) else f"{self.local_path}: {exc!r}"
                self.rejected += 1
                logger.error("rules file rejected, previous rules stay in force: %s", self.last_error)
        finally:
            self._lock.release()
