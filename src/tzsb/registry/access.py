"""Who may exchange what with whom: purposes (table 6) against the parties' levels, and the
allowed direction of each business type between levels (tables 1–4).

Data flows from the caller to the node for 01–03 and from the node to the caller for 04; the
direction rules apply to that flow, whoever starts the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import orjson

from tzsb import refusals
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES, PUBLIC_PURPOSE, PURPOSES, Action, covers

INTERNAL_LEVELS: Final = ("county", "city", "province", "national")
LEVEL_NAMES: Final = {
    "county": "县（区）级",
    "city": "市级",
    "province": "省级",
    "national": "国家",
    "external": "外部部门",
    "public": "公众服务",
}
DIRECTIONS_FILE: Final = "directions.json"


@dataclass(frozen=True, slots=True)
class Party:
    level: str
    region: str


def _expand(entry: str, source: str) -> set[tuple[str, str]]:
    """``a->b``, ``a<->b`` or a chain ``a<->b<->c`` (every pair on the chain, both ways)."""
    if "<->" in entry:
        levels = entry.split("<->")
        pairs = {(a, b) for a in levels for b in levels if a != b}
    elif "->" in entry:
        a, _, b = entry.partition("->")
        levels, pairs = [a, b], {(a, b)}
    else:
        raise ConfigurationError(f"{source}: {entry!r} is not a direction like province->national")
    unknown = [level for level in levels if level not in INTERNAL_LEVELS]
    if unknown:
        raise ConfigurationError(f"{source}: unknown level(s) {', '.join(unknown)} in {entry!r}")
    return pairs


def _read(document: object, source: str) -> dict[str, frozenset[tuple[str, str]]]:
    if not isinstance(document, dict):
        raise ConfigurationError(f"{source}: must be an object of business code → list of directions")
    matrix: dict[str, frozenset[tuple[str, str]]] = {}
    for code, entries in document.items():
        if code.startswith("_"):
            continue
        if code not in BUSINESS_TYPES:
            raise ConfigurationError(f"{source}: {code} is not a business type of table 7")
        if not isinstance(entries, list):
            raise ConfigurationError(f"{source}: the directions of {code} must be a list")
        pairs: set[tuple[str, str]] = set()
        for entry in entries:
            pairs |= _expand(str(entry), source)
        matrix[code] = frozenset(pairs)
    return matrix


def load_directions(override: Path | None = None) -> dict[str, frozenset[tuple[str, str]]]:
    """The shipped matrix, with each business type named in ``override`` replaced."""
    shipped = resources.files("tzsb.registry").joinpath("data", DIRECTIONS_FILE).read_bytes()
    matrix = _read(orjson.loads(shipped), f"registry/data/{DIRECTIONS_FILE}")
    if override is not None and override.exists():
        try:
            document = orjson.loads(override.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"{override}: not valid JSON ({exc})") from exc
        matrix.update(_read(document, str(override)))
    return matrix


class DirectionPolicy:
    """Checks a request's purpose and business type against the levels of caller and node."""

    def __init__(self, node: Party, matrix: Mapping[str, frozenset[tuple[str, str]]]) -> None:
        self.node = node
        self.matrix = matrix

    def check(self, purpose: str, business: str, action: Action, caller: Party) -> None:
        sender, receiver = (caller, self.node) if action is not Action.QUERY else (self.node, caller)
        flow = f"{sender.level}→{receiver.level}"
        flow_zh = f"{LEVEL_NAMES.get(sender.level, sender.level)}→{LEVEL_NAMES.get(receiver.level, receiver.level)}"
        name = PURPOSES[purpose]
        if purpose == PUBLIC_PURPOSE:
            if action is not Action.QUERY:
                raise refusals.public_purpose_read_only(name)
            return
        if purpose in ("21", "22"):
            if caller.level != "external":
                raise refusals.external_purpose(purpose, name, caller.level)
            return
        if purpose == "90":
            return
        # Internal purposes: both parties are regulators.
        if caller.level not in INTERNAL_LEVELS or self.node.level not in INTERNAL_LEVELS:
            raise refusals.regulators_only(purpose, name, flow_zh, flow)
        if purpose == "11":
            if caller.level != self.node.level or caller.region != self.node.region:
                raise refusals.same_regulator_only(flow_zh, flow)
            return
        if purpose == "12" and (sender.level, receiver.level) != ("province", "national"):
            raise refusals.province_to_national_only(flow_zh, flow)
        if purpose == "13" and (sender.level, receiver.level) != ("national", "province"):
            raise refusals.national_to_province_only(flow_zh, flow)
        if purpose == "14":
            upper, lower = sorted((sender, receiver), key=lambda party: INTERNAL_LEVELS.index(party.level))[::-1]
            if (
                upper.level == lower.level
                or "national" in (upper.level, lower.level)
                or not covers(upper.region, lower.region)
            ):
                raise refusals.province_and_its_own_only(flow_zh, flow, f"{sender.region}→{receiver.region}")
        allowed = self.matrix.get(business, frozenset())
        if (sender.level, receiver.level) not in allowed:
            listed = ", ".join(f"{a}→{b}" for a, b in sorted(allowed)) or "none"
            raise refusals.direction_not_allowed(business, BUSINESS_TYPES[business], flow_zh, flow, listed)
