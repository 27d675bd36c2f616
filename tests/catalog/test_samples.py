"""The sample records (``tzsb.catalog.samples``, ``examples/``): valid under the shipped rules, consistent
with each other, fictional, and the folder on disk is exactly what the generator makes now."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from stdnum.cn import ric, uscc

from tzsb.catalog import division_name, load_catalog
from tzsb.catalog.samples import (
    AREA,
    LOAD_ORDER,
    README_NAME,
    credit_code,
    differences,
    id_number,
    main,
    organisation_code,
    sample_files,
    sample_records,
)
from tzsb.clock import SystemClock
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.rules.ruleset import compile_rules, shipped_rule_sets
from tzsb.rules.validator import RecordValidator

EXAMPLES: Final = Path(__file__).resolve().parents[2] / "examples"
CATALOG: Final = load_catalog()
RECORDS: Final = sample_records()
USCC_PATTERN: Final = "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
ID_PATTERN: Final = "^[0-9]{17}[0-9X]$"
#: Every invented name carries one of these, so no sample can be taken for a real person or company.
FICTIONAL: Final = re.compile("示例|样例|演示|测试|示范")


def fields_with_pattern(pattern: str) -> Iterator[tuple[str, str]]:
    """(business type, field) of every catalog field whose values follow ``pattern``."""
    for code in CATALOG:
        for spec in CATALOG[code].fields:
            if spec.pattern == pattern:
                yield code, spec.code


def values(code: str, field: str) -> list[Any]:
    return [record[field] for record in RECORDS[code] if field in record]


def test_every_business_type_has_a_few_samples_in_load_order() -> None:
    assert set(RECORDS) == set(BUSINESS_TYPES) == set(CATALOG)
    assert list(RECORDS) == list(LOAD_ORDER)
    assert LOAD_ORDER[:3] == ("0102", "0103", "0101")
    for code, records in RECORDS.items():
        assert 2 <= len(records) <= 10, code
        keys = values(code, CATALOG[code].primary_key)
        assert len(set(keys)) == len(records), f"{code}: every record has its own key"


def test_samples_pass_the_shipped_rules_without_errors_or_warnings() -> None:
    compiled = compile_rules(CATALOG, None, SystemClock())
    for code, records in RECORDS.items():
        report = compiled.validators[code].check_batch(records)
        assert [fault.as_dict() for fault in report.errors] == [], code
        assert [fault.as_dict() for fault in report.warnings] == [], code


def test_references_switched_off_by_default_find_their_records() -> None:
    """The shipped ``reference`` rules (off, since a node often receives inspections before their
    devices) pass when switched on, with a store holding the samples."""
    held: dict[str, set[str]] = {code: set(values(code, CATALOG[code].primary_key)) for code in RECORDS}
    asked: list[tuple[str, frozenset[str]]] = []

    def lookup(business: str, keys: Collection[str]) -> set[str]:
        asked.append((business, frozenset(keys)))
        return held[business] & set(keys)

    for code, rule_set in shipped_rule_sets().items():
        rules = [{**rule, "enabled": True} for rule in rule_set.rules]
        validator = RecordValidator(CATALOG[code], rules, rule_set.severities, rule_set.disabled, SystemClock())
        report = validator.check_batch(RECORDS[code], lookup=lookup)
        assert report.errors == [] and report.warnings == [], code
    # Every type that names devices asked for them, and each named one is a sample device.
    assert {business for business, _ in asked} == {"0101"}
    assert len(asked) >= 8
    assert all(keys <= held["0101"] for _, keys in asked)


def test_units_people_devices_licences_and_certificates_named_are_samples() -> None:
    units = {record["UNIT_CODE"]: record["UNIT_NAME"] for record in RECORDS["0102"]}
    people = {record["ID_NO"]: record for record in RECORDS["0103"]}
    names = {record["PERSON_NAME"] for record in RECORDS["0103"]}
    named_units = 0
    for code, field in fields_with_pattern(USCC_PATTERN):
        name_field = field.removesuffix("_CODE") + "_NAME"
        for record in RECORDS[code]:
            if field in record:
                named_units += 1
                assert record[field] in units, f"{code}.{field} {record[field]}"
                assert record[name_field] == units[record[field]], f"{code}.{name_field}"
    assert named_units >= 60
    certified = 0
    for code, field in fields_with_pattern(ID_PATTERN):
        for record in RECORDS[code] if code != "0103" else ():
            if field in record:
                certified += 1
                person = people[record[field]]
                assert record["PERSON_NAME"] == person["PERSON_NAME"] and record["SEX"] == person["SEX"], code
                assert record["CERT_NO"] == person["QUAL_CERT_NO"], code
    assert certified == len(people), "each person holds one certificate (0210 or 0211)"
    certificates = {*values("0210", "CERT_NO"), *values("0211", "CERT_NO")}
    assert set(values("0103", "QUAL_CERT_NO")) <= certificates
    for code in ("0101", "0208", "0500"):
        for field in ("SAFETY_MANAGER", "CONTACT_PERSON"):
            assert set(values(code, field)) <= names
    for code, field in (("0102", "CONTACT_PERSON"), ("0401", "INSPECTOR_NAMES"), ("0402", "TESTER_NAMES")):
        assert values(code, field) and set(values(code, field)) <= names, code
    devices = {record["EQP_CODE"]: record for record in RECORDS["0101"]}
    for code in RECORDS:
        for record in RECORDS[code]:
            if code != "0101" and "EQP_CODE" in record:
                device = devices[record["EQP_CODE"]]
                for same in ("EQP_VART", "EQP_TYPE", "USE_UNIT_CODE", "USE_CERT_NO", "REG_CODE"):
                    if same in record:
                        assert record[same] == device[same], f"{code}.{same}"
    registrations = {record["USE_CERT_NO"] for record in RECORDS["0208"]}
    assert {device["USE_CERT_NO"] for device in devices.values()} == registrations
    licences = {number for code in RECORDS if code.startswith("02") for number in values(code, "LICENSE_NO")}
    assert set(values("0101", "MAKE_LICENSE_NO")) | set(values("0303", "LICENSE_NO")) <= licences
    inspected = {(record["EQP_CODE"], record["INSP_DATE"], record["NEXT_INSP_DATE"]) for record in RECORDS["0401"]}
    assert {(k, d["LAST_INSP_DATE"], d["NEXT_INSP_DATE"]) for k, d in devices.items()} == inspected


def test_identifiers_are_well_formed_and_in_the_sample_county() -> None:
    assert division_name(AREA) == "西湖区"
    for code, records in RECORDS.items():
        for record in records:
            assert record[CATALOG[code].region_field] == AREA
    for code, field in fields_with_pattern(USCC_PATTERN):
        for value in values(code, field):
            assert uscc.is_valid(value), value
            assert value[2:8] == AREA
            body = value[8:16]
            assert value[8:17] == organisation_code(body), f"{value}: GB 11714 check inside"
    for code, field in fields_with_pattern(ID_PATTERN):
        for value in values(code, field):
            assert ric.is_valid(value), value
    for record in RECORDS["0103"]:
        assert record["ID_NO"][6:14] == record["BIRTH_DATE"].replace("-", "")
        assert int(record["ID_NO"][16]) % 2 == (1 if record["SEX"] == "1" else 0), "odd order: a man"
    for device in RECORDS["0101"]:
        licence = device.get("MAKE_LICENSE_NO")
        if len(device["EQP_CODE"]) == 18:
            assert licence is not None and device["EQP_CODE"][4:9] == licence[4:9], "manufacturer code"
        else:
            assert device["EQP_CODE"][4:10] == AREA, "registration authority's area"
        assert device["EQP_CODE"][:4] == device["EQP_VART"]


def test_check_characters_match_published_examples() -> None:
    # 91110000600037341L and 11010519491231002X are the standards' commonly cited examples.
    assert organisation_code("60003734") == "600037341"
    assert credit_code("91", "110000", "60003734") == "91110000600037341L"
    assert id_number("110105", "1949-12-31", 2) == "11010519491231002X"


def test_people_and_contacts_are_fictional() -> None:
    named: dict[str, list[str]] = defaultdict(list)
    for code, records in RECORDS.items():
        for record in records:
            for field in ("PERSON_NAME", "UNIT_NAME", "SAFETY_MANAGER", "CONTACT_PERSON", "USE_UNIT_NAME"):
                if field in record:
                    named[field].append(record[field])
            for field in ("MOBILE", "CONTACT_PHONE", "SAFETY_MANAGER_PHONE"):
                if field in record:
                    assert record[field].startswith("1300000"), f"{code}.{field}"
            if "EMAIL" in record:
                assert record["EMAIL"].endswith("@example.com")
    assert named["PERSON_NAME"] and named["UNIT_NAME"]
    for field, found in named.items():
        assert all(FICTIONAL.search(name) for name in found), field


def test_examples_folder_is_what_the_generator_makes() -> None:
    wanted = sample_files()
    on_disk = {path.name: path.read_bytes() for path in EXAMPLES.iterdir() if path.is_file()}
    assert sorted(on_disk) == sorted(wanted), "regenerate with: python -m tzsb.catalog.samples examples/"
    for name, content in wanted.items():
        assert on_disk[name] == content, f"examples/{name} is stale: python -m tzsb.catalog.samples examples/"
    assert differences(EXAMPLES) == []


def test_generator_writes_then_checks_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "out"
    assert main([str(folder), "--check"]) == 1
    assert f"{folder}/0101.json is missing" in capsys.readouterr().err
    assert main([str(folder)]) == 0
    assert sorted(path.name for path in folder.iterdir()) == sorted([*(f"{c}.json" for c in LOAD_ORDER), README_NAME])
    assert main([str(folder), "--check"]) == 0
    (folder / "0103.json").write_text("[]\n", encoding="utf-8")
    (folder / "extra.json").write_text("[]\n", encoding="utf-8")
    assert main([str(folder), "--check"]) == 1
    err = capsys.readouterr().err
    assert "0103.json differs" in err and "extra.json is not a sample" in err
    assert "python -m tzsb.catalog.samples" in err
