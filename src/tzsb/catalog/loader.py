"""Load business types from JSON data files: the shipped ones, then a deployment's overrides."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tzsb.catalog.model import MASKS, BusinessType, Catalog, FieldSpec, FieldType, default_mask
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES


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
            # The same flags the pattern rule compiles with, so what loads also validates.
            re.compile(pattern, re.ASCII)
        except (re.error, ValueError, TypeError) as exc:
            raise ConfigurationError(f"{source}: field {item['code']}: bad pattern ({exc})") from exc
    length = item.get("length")
    codes = item.get("codes", {})
    if not isinstance(codes, dict):
        raise ConfigurationError(f"{source}: field {item['code']}: codes must be an object of code: label")
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
        sensitive=sensitive,
        description=str(item.get("description", "")),
        reveals=tuple(reveals),
    )
