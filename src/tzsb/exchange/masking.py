"""Masking of sensitive fields in answers (spec 5.2.2 c; 个人信息保护法 §28, GB/T 35273-2020).

ID number: first 6 + last 4; mobile: first 3 + last 4; a person's name: the surname; address:
down to the county; bank card: first 6 + last 4. Always for purpose 31 (public), otherwise
unless the app is granted ``unmasked`` for the business type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from tzsb.catalog import BusinessType

_COUNTY: Final = re.compile(r"(?<!自治)[区县旗]")
_CITY: Final = re.compile(r"市(?!场)")
_NAME_SEPARATORS: Final = re.compile(r"[,，、;；\s]+")


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _name(value: str) -> str:
    names = [part for part in _NAME_SEPARATORS.split(value) if part]
    return "、".join(part[:1] + "*" * max(len(part) - 1, 1) for part in names)


def _address(value: str) -> str:
    # Down to the county: up to the first county-level suffix (区/县/旗), else the last 市 of
    # the head (county-level cities), else the first six characters.
    head = value[:20]
    county = _COUNTY.search(head)
    if county is not None:
        end = county.end()
    else:
        cities = [match.end() for match in _CITY.finditer(head)]
        end = cities[-1] if cities else min(6, len(value))
    kept = value[:end]
    return kept + "****" if len(value) > end else kept


MASKERS: Final[dict[str, Callable[[str], str]]] = {
    "id_card": lambda value: _keep(value, 6, 4),
    "mobile": lambda value: _keep(value, 3, 4),
    "phone": lambda value: _keep(value, 3, 4),
    "bank_card": lambda value: _keep(value, 6, 4),
    "name": _name,
    "address": _address,
    "all": lambda value: "******",
}


def masker(business: BusinessType) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that returns a masked copy of a record of ``business``."""
    plan = [(spec.code, MASKERS[spec.mask or "all"]) for spec in business.fields if spec.sensitive]

    def mask(record: dict[str, Any]) -> dict[str, Any]:
        masked = dict(record)
        for code, apply in plan:
            value = masked.get(code)
            if isinstance(value, str) and value:
                masked[code] = apply(value)
            elif value is not None and not isinstance(value, str):
                masked[code] = "******"
        return masked

    return mask
