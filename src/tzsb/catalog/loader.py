"""Load business types from JSON data files: the shipped ones, then a deployment's overrides."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tzsb.catalog.model import BusinessType, Catalog, FieldSpec, FieldType
from tzsb.errors import ConfigurationError
from tzsb.protocol.codes import BUSINESS_TYPES


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
    return business


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
            re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError(f"{source}: field {item['code']}: bad pattern ({exc})") from exc
    length = item.get("length")
    return FieldSpec(
        code=str(item["code"]),
        name=str(item.get("name", item["code"])),
        type=field_type,
        length=int(length) if length is not None else None,
        required=bool(item.get("required", False)),
        pattern=pattern,
        codes={str(k): str(v) for k, v in item.get("codes", {}).items()},
        sensitive=bool(item.get("sensitive", False)),
        description=str(item.get("description", "")),
    )
