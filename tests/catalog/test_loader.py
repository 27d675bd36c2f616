"""The shipped catalog (0101/0102/0103) and a deployment's override files."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from tzsb.catalog import BusinessType, FieldType, load_catalog
from tzsb.errors import ConfigurationError
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.rules import compile_validator

DEVICE_FIELDS: Final = (
    "EQP_CODE",
    "EQP_TYPE",
    "EQP_SORT",
    "EQP_VART",
    "EQP_NAME",
    "EQP_MODEL",
    "FACTORY_NO",
    "MAKE_UNIT_NAME",
    "MAKE_DATE",
    "USE_UNIT_NAME",
    "USE_UNIT_CODE",
    "USE_ADDRESS",
    "AREA_CODE",
    "USE_CERT_NO",
    "USE_STATUS",
    "NEXT_INSP_DATE",
    "SAFETY_MANAGER",
    "SAFETY_MANAGER_PHONE",
    "UPDATE_TIME",
)
DEVICE_REQUIRED: Final = {
    "EQP_CODE",
    "EQP_VART",
    "USE_UNIT_NAME",
    "USE_UNIT_CODE",
    "USE_ADDRESS",
    "AREA_CODE",
    "USE_STATUS",
    "UPDATE_TIME",
}


def shipped_document(code: str) -> dict[str, Any]:
    """A fresh copy of a shipped business type's JSON document, to edit into an override."""
    document: dict[str, Any] = orjson.loads(
        resources.files("tzsb.catalog").joinpath("data", f"{code}.json").read_bytes()
    )
    return document


# ------------------------------------------------------------------ shipped catalog


def test_shipped_business_types() -> None:
    catalog = load_catalog()
    assert list(catalog) == sorted(BUSINESS_TYPES)
    assert len(catalog) == 22
    assert {code: catalog[code].primary_key for code in ("0101", "0102", "0103")} == {
        "0101": "EQP_CODE",
        "0102": "UNIT_CODE",
        "0103": "ID_NO",
    }
    assert [catalog[code].name for code in ("0101", "0102", "0103")] == [
        "特种设备基础数据",
        "单位基础数据",
        "人员基础数据",
    ]
    for code in catalog:
        assert catalog[code].region_field == "AREA_CODE"
        assert catalog[code].timestamp_field == "UPDATE_TIME"


@pytest.mark.parametrize("code", ["0101", "0102", "0103"])
def test_roles_of_each_type(code: str) -> None:
    business = load_catalog()[code]
    assert business.code == code
    assert business.region_field == "AREA_CODE"
    assert business.timestamp_field == "UPDATE_TIME"
    for role in (business.primary_key, business.region_field, business.timestamp_field):
        spec = business.field(role)
        assert spec is not None
        assert spec.required
    area = business.field("AREA_CODE")
    assert area is not None
    assert (area.type, area.length, area.pattern) == (FieldType.STRING, 6, "^[0-9]{6}$")
    update = business.field("UPDATE_TIME")
    assert update is not None
    assert update.type is FieldType.DATETIME
    assert len({spec.code for spec in business.fields}) == len(business.fields)


def test_0101_fields() -> None:
    business = load_catalog()["0101"]
    codes = [spec.code for spec in business.fields]
    missing = [name for name in DEVICE_FIELDS if name not in codes]
    assert missing == []
    assert {spec.code for spec in business.fields if spec.required} == DEVICE_REQUIRED
    assert "SAFETY_MANAGER_PHONE" in business.sensitive_fields
    assert "SAFETY_MANAGER" in business.sensitive_fields
    assert "EQP_CODE" not in business.sensitive_fields
    make_date = business.field("MAKE_DATE")
    next_insp = business.field("NEXT_INSP_DATE")
    assert make_date is not None
    assert next_insp is not None
    assert make_date.type is next_insp.type is FieldType.DATE
    status = business.field("USE_STATUS")
    assert status is not None
    assert list(status.codes) == ["1", "2", "3", "4", "5", "6", "9"]


def test_sensitive_fields_of_0102_and_0103() -> None:
    catalog = load_catalog()
    assert {"LEGAL_PERSON", "LEGAL_PERSON_ID_NO", "CONTACT_PHONE"} <= set(catalog["0102"].sensitive_fields)
    assert {"ID_NO", "PERSON_NAME", "MOBILE"} <= set(catalog["0103"].sensitive_fields)


def test_birth_date_reveals_the_id_number_and_is_masked_with_it() -> None:
    people = load_catalog()["0103"]
    birth = people.field("BIRTH_DATE")
    assert birth is not None
    assert (birth.reveals, birth.sensitive, birth.mask) == (("ID_NO",), True, "all")
    assert people.derivations == (("BIRTH_DATE", "ID_NO"),)
    assert "BIRTH_DATE" in people.sensitive_fields


def test_every_derivation_of_the_catalog() -> None:
    """The declared derivations, all of them: a new one is a decision to review, not a side effect."""
    catalog = load_catalog()
    assert {code: catalog[code].derivations for code in catalog if catalog[code].derivations} == {
        "0103": (("BIRTH_DATE", "ID_NO"),)
    }


@pytest.mark.parametrize("override_dir", [None, Path("/nonexistent/tzsb-overrides")])
def test_no_override_dir_gives_the_shipped_catalog(override_dir: Path | None) -> None:
    assert dict(load_catalog(override_dir)) == dict(load_catalog())


def test_empty_override_dir_gives_the_shipped_catalog(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not a catalog file")
    assert dict(load_catalog(tmp_path)) == dict(load_catalog())


# ------------------------------------------------------------------ overrides


def write(directory: Path, name: str, document: Any) -> Path:
    path = directory / name
    path.write_bytes(orjson.dumps(document) if not isinstance(document, bytes) else document)
    return path


def test_override_replaces_a_shipped_type(tmp_path: Path) -> None:
    document = shipped_document("0103")
    document["name"] = "人员基础数据（本地）"
    document["fields"].append({"code": "CERT_NO", "name": "证书编号", "type": "string", "length": 30})
    document["fields"] = [field for field in document["fields"] if field["code"] != "EDUCATION"]
    write(tmp_path, "0103.json", document)
    catalog = load_catalog(tmp_path)
    people = catalog["0103"]
    assert people.name == "人员基础数据（本地）"
    assert people.field("CERT_NO") is not None
    assert people.field("EDUCATION") is None
    shipped = load_catalog()
    assert catalog["0101"] == shipped["0101"]
    assert catalog["0102"] == shipped["0102"]
    # The validator follows the override.
    validator = compile_validator(people)
    record = {"ID_NO": "11010519491231002X", "PERSON_NAME": "李四", "AREA_CODE": "330106"}
    record["UPDATE_TIME"] = "2026-11-01 10:00:00"
    assert validator.violations({**record, "CERT_NO": "TS-1"}) == []
    assert [v.rule for v in validator.violations({**record, "EDUCATION": "本科"})] == ["unknown_field"]


def test_override_adds_a_business_type(tmp_path: Path) -> None:
    document = {
        "code": "0208",
        "name": "特种设备使用登记",
        "primary_key": "USE_CERT_NO",
        "region_field": "AREA_CODE",
        "timestamp_field": "UPDATE_TIME",
        "fields": [
            {"code": "USE_CERT_NO", "name": "使用登记证编号", "length": 30, "required": True},
            {"code": "AREA_CODE", "name": "所在行政区划代码", "required": True, "pattern": "^[0-9]{6}$"},
            {"code": "UPDATE_TIME", "name": "更新时间", "type": "datetime", "required": True},
        ],
    }
    write(tmp_path, "0208.json", document)
    catalog = load_catalog(tmp_path)
    assert list(catalog) == sorted(BUSINESS_TYPES)
    registration = catalog["0208"]
    assert isinstance(registration, BusinessType)
    cert = registration.field("USE_CERT_NO")
    assert cert is not None
    assert cert.type is FieldType.STRING  # the default type


Mutation = Callable[[dict[str, Any]], Any]


def _set(key: str, value: Any) -> Mutation:
    return lambda document: document.__setitem__(key, value)


def _field(code: str, **changes: Any) -> Mutation:
    def apply(document: dict[str, Any]) -> None:
        for field in document["fields"]:
            if field["code"] == code:
                field.update(changes)

    return apply


def _drop_field(code: str) -> Mutation:
    return lambda document: document.__setitem__(
        "fields", [field for field in document["fields"] if field["code"] != code]
    )


BROKEN: Final = [
    pytest.param(_set("code", "0100"), "0100 is not a business type of table 7", id="heading-not-a-type"),
    pytest.param(_set("code", "9999"), "9999 is not a business type of table 7", id="unknown-type-code"),
    pytest.param(_field("PERSON_NAME", type="text"), "field PERSON_NAME: unknown type 'text'", id="unknown-field-type"),
    pytest.param(_field("PERSON_NAME", pattern="[0-9"), "field PERSON_NAME: bad pattern", id="bad-pattern"),
    pytest.param(_field("MOBILE", pattern="(?P<x>1)(?P<x>2)"), "field MOBILE: bad pattern", id="bad-pattern-group"),
    pytest.param(_drop_field("ID_NO"), "primary_key ID_NO must be a required field of the type", id="no-pk-field"),
    pytest.param(_set("primary_key", "NOPE"), "primary_key NOPE must be a required field", id="pk-unknown"),
    pytest.param(_field("ID_NO", required=False), "primary_key ID_NO must be a required field", id="pk-optional"),
    pytest.param(_drop_field("AREA_CODE"), "region_field AREA_CODE must be a required field", id="no-region-field"),
    pytest.param(_field("UPDATE_TIME", type="date"), "timestamp_field must have type datetime", id="timestamp-date"),
    pytest.param(_field("UPDATE_TIME", type="string"), "timestamp_field must have type datetime", id="ts-string"),
    pytest.param(
        lambda document: document["fields"].append({"code": "SEX"}), "duplicate field codes", id="duplicate-field"
    ),
    pytest.param(lambda document: document["fields"].append({"name": "无代码"}), "each field must be", id="no-code"),
    pytest.param(lambda document: document.pop("name"), "missing key 'name'", id="missing-name"),
    pytest.param(lambda document: document.pop("timestamp_field"), "missing key", id="missing-timestamp"),
    pytest.param(
        _field("BIRTH_DATE", reveals=["ID_NUMBER"]),
        "field BIRTH_DATE: reveals 'ID_NUMBER', not another field of 0103",
        id="reveals-unknown-field",
    ),
    pytest.param(
        _field("BIRTH_DATE", reveals=["BIRTH_DATE"]),
        "field BIRTH_DATE: reveals 'BIRTH_DATE', not another field of 0103",
        id="reveals-itself",
    ),
    pytest.param(
        _field("BIRTH_DATE", reveals=["SEX"]),
        "field BIRTH_DATE: reveals SEX, which is not sensitive",
        id="reveals-open",
    ),
    pytest.param(
        _field("BIRTH_DATE", reveals="ID_NO"), "field BIRTH_DATE: reveals must be a list", id="reveals-not-a-list"
    ),
    pytest.param(
        _field("BIRTH_DATE", mask="name"), "field BIRTH_DATE: reveals sensitive fields, so its mask", id="reveals-part"
    ),
    pytest.param(
        _field("BIRTH_DATE", sensitive=False),
        "field BIRTH_DATE: reveals sensitive fields, so it cannot be sensitive: false",
        id="reveals-not-sensitive",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN)
def test_broken_override_names_the_file(tmp_path: Path, mutate: Mutation, message: str) -> None:
    document = shipped_document("0103")
    mutate(document)
    path = write(tmp_path, "0103.json", document)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"code": "0103",', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[]", "a business type must be a JSON object"),
        (b'"0103"', "a business type must be a JSON object"),
    ],
)
def test_undecodable_override_names_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, "0103.json", content)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).startswith(f"{path}: ")


def test_one_broken_override_among_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "0101.json", shipped_document("0101"))
    broken = shipped_document("0102")
    broken["code"] = "0000"
    path = write(tmp_path, "0102.json", broken)
    with pytest.raises(ConfigurationError, match=re.escape(f"{path}: 0000 is not a business type of table 7")):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_field("PERSON_NAME", length="fifty"), id="length-text"),
        pytest.param(_field("SEX", codes=["0", "1", "2"]), id="codes-list"),
        pytest.param(_set("fields", None), id="fields-null"),
    ],
)
def test_malformed_field_attributes_name_the_file(tmp_path: Path, mutate: Mutation) -> None:
    document = shipped_document("0103")
    mutate(document)
    path = write(tmp_path, "0103.json", document)
    with pytest.raises(ConfigurationError, match=re.escape(str(path))):
        load_catalog(tmp_path)


def test_a_pattern_the_validator_cannot_compile_is_refused_at_load(tmp_path: Path) -> None:
    # The pattern rule compiles with re.ASCII; an inline (?u) flag conflicts with it.
    document = shipped_document("0103")
    _field("MOBILE", pattern="(?u)^1[3-9][0-9]{9}$")(document)
    path = write(tmp_path, "0103.json", document)
    with pytest.raises(ConfigurationError, match=re.escape(f"{path}: field MOBILE: bad pattern")):
        load_catalog(tmp_path)


# ------------------------------------------------------------------ natural keys


def test_natural_keys_of_the_shipped_catalog() -> None:
    """Every declaration, all of them: a new natural key is a decision to review (it costs an index
    and warns sources), not a side effect."""
    catalog = load_catalog()
    declared = {
        code: [(key.fields, key.severity) for key in catalog[code].natural_keys]
        for code in catalog
        if catalog[code].natural_keys
    }
    assert declared == {
        "0101": [
            (("REG_CODE",), "warning"),
            (("USE_CERT_NO",), "warning"),
            (("FACTORY_NO", "MAKE_UNIT_NAME"), "warning"),
        ],
        "0500": [(("EQP_CODE", "ACCIDENT_TIME"), "warning")],
    }
    assert [(key.name, key.rule_id) for key in catalog["0101"].natural_keys] == [
        ("REG_CODE", "natural-key-REG_CODE"),
        ("USE_CERT_NO", "natural-key-USE_CERT_NO"),
        ("FACTORY_NO+MAKE_UNIT_NAME", "natural-key-FACTORY_NO+MAKE_UNIT_NAME"),
    ]


def test_a_natural_keys_value_is_its_texts_exactly_or_none() -> None:
    single, pair = load_catalog()["0101"].natural_keys[0], load_catalog()["0101"].natural_keys[2]
    assert single.value({"REG_CODE": "31103301062019090123"}) == "31103301062019090123"
    # Exact texts: no trimming, no case folding.
    assert single.value({"REG_CODE": " 3110 "}) == " 3110 "
    assert pair.value({"FACTORY_NO": "E19A0235", "MAKE_UNIT_NAME": "杭州华信电梯股份有限公司"}) == (
        "E19A0235\x1f杭州华信电梯股份有限公司"
    )
    for record in (
        {},
        {"REG_CODE": None},
        {"REG_CODE": ""},
        {"REG_CODE": " \u3000\t"},
        {"REG_CODE": 31103301062019090123},
        {"REG_CODE": ["3110"]},
        {"REG_CODE": "3110\x1f1"},
    ):
        assert single.value(record) is None, record
    for record in (
        {"FACTORY_NO": "E19A0235"},
        {"FACTORY_NO": "E19A0235", "MAKE_UNIT_NAME": " "},
        {"FACTORY_NO": "E19A\x1f0235", "MAKE_UNIT_NAME": "杭州"},
    ):
        assert pair.value(record) is None, record


def test_an_override_declares_its_own_natural_keys(tmp_path: Path) -> None:
    document = shipped_document("0101")
    document["natural_keys"] = [{"fields": ["MAKE_UNIT_CODE", "FACTORY_NO"], "severity": "error"}]
    write(tmp_path, "0101.json", document)
    devices = load_catalog(tmp_path)["0101"]
    assert [(key.fields, key.severity, key.rule_id) for key in devices.natural_keys] == [
        (("MAKE_UNIT_CODE", "FACTORY_NO"), "error", "natural-key-MAKE_UNIT_CODE+FACTORY_NO")
    ]
    # A document without the declaration has none.
    del document["natural_keys"]
    write(tmp_path, "0101.json", document)
    assert load_catalog(tmp_path)["0101"].natural_keys == ()


BROKEN_NATURAL_KEYS: Final = [
    pytest.param({"fields": ["REG_CODE"]}, "natural_keys must be a list of objects with fields", id="not-a-list"),
    pytest.param([["REG_CODE"]], "each natural key must be an object with a list of fields", id="a-list"),
    pytest.param([{"fields": "REG_CODE"}], "each natural key must be an object with a list of fields", id="text"),
    pytest.param([{"fields": []}], "natural key []: fields must be field codes, at least one", id="empty"),
    pytest.param(
        [{"fields": ["REG CODE"]}], "natural key ['REG CODE']: fields must be field codes", id="not-a-plain-code"
    ),
    pytest.param([{"fields": ["REG_CODE", 7]}], "natural key ['REG_CODE', 7]: fields must be", id="not-text"),
    pytest.param([{"fields": ["NOPE"]}], "natural key NOPE: NOPE is not a field of 0101", id="unknown-field"),
    pytest.param(
        [{"fields": ["REG_CODE"], "severity": "fatal"}],
        "natural key REG_CODE: severity must be error or warning, got 'fatal'",
        id="bad-severity",
    ),
    pytest.param([{"fields": ["REG_CODE"], "unique": True}], "natural key: unknown key(s) unique", id="unknown-key"),
    pytest.param(
        [{"fields": ["REG_CODE", "REG_CODE"]}], "natural key REG_CODE+REG_CODE: a field is named twice", id="twice"
    ),
    pytest.param(
        [{"fields": ["FACTORY_NO", "EQP_CODE"]}],
        "natural key FACTORY_NO+EQP_CODE holds the primary key EQP_CODE",
        id="primary-key",
    ),
    pytest.param(
        [{"fields": ["DESIGN_LIFE"]}], "natural key DESIGN_LIFE: DESIGN_LIFE is a number, not a text field", id="number"
    ),
    pytest.param(
        [{"fields": ["REG_CODE"]}, {"fields": ["REG_CODE"], "severity": "error"}],
        "natural key REG_CODE is declared twice",
        id="declared-twice",
    ),
]


@pytest.mark.parametrize(("declared", "message"), BROKEN_NATURAL_KEYS)
def test_a_broken_natural_key_names_the_file(tmp_path: Path, declared: Any, message: str) -> None:
    document = shipped_document("0101")
    document["natural_keys"] = declared
    path = write(tmp_path, "0101.json", document)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).startswith(f"{path}: ")
