"""Load business types from JSON data files: the shipped ones, then a deployment's overrides."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tzsb.catalog.model import (
    MASKS,
    NATURAL_KEY_SEVERITIES,
    BusinessType,
    Catalog,
    FieldSpec,
    FieldType,
    NaturalKey,
    default_mask,
)
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES

#: What a natural key's field code may be: the store names it inside SQL (an index expression).
_PLAIN_CODE = re.compile(r"[A-Za-z0-9_]+")


def load_catalog(override_dir: Path | None = None) -> Catalog:
    """The shipped catalog, with each ``<override_dir>/<code>.json`` replacing its business type."""
    types: dict[str, BusinessType] = {}
    for entry in resources.files("tzsb.catalog").joinpath("data").iterdir():
        if entry.name.endswith(".json"):
            business = parse_business_type(orjson.loads(entry.read_bytes()), source=entry.name)
            types[business.code] = business
    if override_dir is not None and override_dir.is_dir():
        for path in sorted(override_dir.glob("*.json")):
            try:
                document = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise ConfigurationError(f"{path}: not valid JSON ({exc})") from exc
            business = parse_business_type(document, source=str(path))
            types[business.code] = business
    return Catalog(types)


def parse_business_type(document: Any, source: str) -> BusinessType:
    """Build and check one business type; errors name the file and the field."""
    if not isinstance(document, dict):
        raise ConfigurationError(f"{source}: a business type must be a JSON object")
    if not isinstance(document.get("fields"), list):
        raise ConfigurationError(f"{source}: 'fields' must be a list of field objects")
    try:
        code = str(document["code"])
        fields = tuple(_parse_field(item, source) for item in document["fields"])
        business = BusinessType(
            code=code,
            name=str(document["name"]),
            primary_key=str(document["primary_key"]),
            region_field=str(document["region_field"]),
            timestamp_field=str(document["timestamp_field"]),
            fields=fields,
            natural_keys=_parse_natural_keys(document.get("natural_keys", []), source),
        )
    except KeyError as exc:
        raise ConfigurationError(f"{source}: missing key {exc}") from exc
    if code not in BUSINESS_TYPES:
        raise ConfigurationError(f"{source}: {code} is not a business type of table 7")
    codes = [spec.code for spec in fields]
    if len(set(codes)) != len(codes):
        raise ConfigurationError(f"{source}: duplicate field codes")
    for role in ("primary_key", "region_field", "timestamp_field"):
        name = getattr(business, role)
        spec = business.field(name)
        if spec is None or not spec.required:
            raise ConfigurationError(f"{source}: {role} {name} must be a required field of the type")
    timestamp = business.field(business.timestamp_field)
    if timestamp is None or timestamp.type is not FieldType.DATETIME:
        raise ConfigurationError(f"{source}: timestamp_field must have type datetime")
    for revealing, target in business.derivations:
        spec = business.field(target)
        if spec is None or target == revealing:
            raise ConfigurationError(f"{source}: field {revealing}: reveals {target!r}, not another field of {code}")
        if not spec.sensitive:
            # Only a masked value has a hidden part to give away: a derivation of a field shown in full
            # is a mistake in the declaration (the wrong field, or the target lost its sensitive flag).
            raise ConfigurationError(f"{source}: field {revealing}: reveals {target}, which is not sensitive")
    for natural_key in business.natural_keys:
        _check_natural_key(business, natural_key, source)
    return business


def _parse_natural_keys(declared: Any, source: str) -> tuple[NaturalKey, ...]:
    """``natural_keys``: a list of ``{"fields": [...], "severity": "warning" | "error"}``."""
    if not isinstance(declared, list):
        raise ConfigurationError(f"{source}: natural_keys must be a list of objects with fields")
    keys: list[NaturalKey] = []
    for item in declared:
        if not isinstance(item, dict) or not isinstance(item.get("fields"), list):
            raise ConfigurationError(f"{source}: each natural key must be an object with a list of fields")
        unknown = set(item) - {"fields", "severity"}
        if unknown:
            raise ConfigurationError(f"{source}: natural key: unknown key(s) {', '.join(sorted(unknown))}")
        fields = item["fields"]
        if not fields or not all(isinstance(code, str) and _PLAIN_CODE.fullmatch(code) for code in fields):
            raise ConfigurationError(f"{source}: natural key {fields!r}: fields must be field codes, at least one")
        severity = item.get("severity", "warning")
        if severity not in NATURAL_KEY_SEVERITIES:
            raise ConfigurationError(
                f"{source}: natural key {'+'.join(fields)}: severity must be error or warning, got {severity!r}"
            )
        keys.append(NaturalKey(tuple(fields), severity))
    return tuple(keys)


def _check_natural_key(business: BusinessType, natural_key: NaturalKey, source: str) -> None:
    name = natural_key.name
    if len(set(natural_key.fields)) != len(natural_key.fields):
        raise ConfigurationError(f"{source}: natural key {name}: a field is named twice")
    for code in natural_key.fields:
        spec = business.field(code)
        if spec is None:
            raise ConfigurationError(f"{source}: natural key {name}: {code} is not a field of {business.code}")
        if spec.type in (FieldType.INTEGER, FieldType.DECIMAL):
            # Only texts take part in a match (a number has more than one way to be written).
            raise ConfigurationError(f"{source}: natural key {name}: {code} is a number, not a text field")
    if business.primary_key in natural_key.fields:
        # Records with the same primary key are the same record: such a key could never tell two apart.
        raise ConfigurationError(f"{source}: natural key {name} holds the primary key {business.primary_key}")
    names = [key.name for key in business.natural_keys]
    if names.count(name) > 1:
        raise ConfigurationError(f"{source}: natural key {name} is declared twice")


def _parse_field(item: Any, source: str) -> FieldSpec:
    if not isinstance(item, dict) or "code" not in item:
        raise ConfigurationError(f"{source}: each field must be an object with a code")
    try:
        field_type = FieldType(item.get("type", "string"))
    except ValueError:
        raise ConfigurationError(f"{source}: field {item['code']}: unknown type {item.get('type')!r}") from None
    pattern = item.get("pattern")
    if pattern is not None:
        try:
            # The same flags the pattern rule compiles with, so what loads also validates.
            re.compile(pattern, re.ASCII)
        except (re.error, ValueError, TypeError) as exc:
            raise ConfigurationError(f"{source}: field {item['code']}: bad pattern ({exc})") from exc
    length = item.get("length")
    codes = item.get("codes", {})
    if not isinstance(codes, dict):
        raise ConfigurationError(f"{source}: field {item['code']}: codes must be an object of code: label")
    codes_source = item.get("codes_source", "")
    if codes and (not isinstance(codes_source, str) or not codes_source.strip()):
        raise ConfigurationError(
            f"{source}: field {item['code']}: a code list needs its codes_source (a document and article, or "
            "'project-defined' / 'provincial practice')"
        )
    legacy = item.get("legacy_codes", {})
    if not isinstance(legacy, dict) or not all(isinstance(note, str) and note for note in legacy.values()):
        raise ConfigurationError(
            f"{source}: field {item['code']}: legacy_codes must be an object of code: what the code means now"
        )
    if legacy and not codes:
        raise ConfigurationError(f"{source}: field {item['code']}: legacy_codes need a code list")
    if set(map(str, legacy)) & set(map(str, codes)):
        raise ConfigurationError(f"{source}: field {item['code']}: a legacy code is also a current code")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise ConfigurationError(f"{source}: field {item['code']}: length must be a positive whole number")
    mask = item.get("mask")
    if mask is not None and mask not in MASKS:
        raise ConfigurationError(f"{source}: field {item['code']}: mask must be one of {', '.join(MASKS)}")
    sensitive = bool(item.get("sensitive", False))
    reveals = item.get("reveals", [])
    if not isinstance(reveals, list) or not all(isinstance(target, str) for target in reveals):
        raise ConfigurationError(f"{source}: field {item['code']}: reveals must be a list of field codes")
    if reveals:
        # A field that gives away a masked value's hidden part is masked with it, and fully: a partial
        # mask still narrows the hidden part (a birth year leaves ~365 dates for an ID number's eight
        # hidden digits, which its visible check digit cuts to ~33).
        if item.get("sensitive") is False:
            raise ConfigurationError(
                f"{source}: field {item['code']}: reveals sensitive fields, so it cannot be sensitive: false"
            )
        if mask not in (None, "all"):
            raise ConfigurationError(
                f"{source}: field {item['code']}: reveals sensitive fields, so its mask must be 'all'"
            )
        sensitive, mask = True, "all"
    return FieldSpec(
        mask=mask if mask is not None else (default_mask(str(item["code"])) if sensitive else None),
        code=str(item["code"]),
        name=str(item.get("name", item["code"])),
        type=field_type,
        length=length,
        required=bool(item.get("required", False)),
        pattern=pattern,
        codes={str(k): str(v) for k, v in codes.items()},
        codes_source=str(codes_source).strip() if codes else "",
        legacy_codes={str(k): str(v) for k, v in legacy.items()},
        sensitive=sensitive,
        description=str(item.get("description", "")),
        reveals=tuple(reveals),
    )
