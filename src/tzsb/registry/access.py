"""Who may exchange what with whom: purposes (table 6) against the parties' levels, and the
allowed direction of each business type between levels (tables 1–4).

Data flows from the caller to the node for 01–03 and from the node to the caller for 04; the
direction rules apply to that flow, whoever starts the request.

Tables 1–4 write most flows as the chain ``县（区）级<->市级<->省级<->国家``. The purposes of 4.2.1
read it: data moves between neighbouring levels (4.3.6: 逐级上报, reported level by level), and a
province exchanges with the regulators under it directly (4.2.1 d); no purpose joins a county or a
city to the national level. So a chain allows its neighbours and the province with every lower
level on it, and nothing else: a county or city exchanges with the national level only where a
node names that flow in ``<home>/directions.json``. Every flow between two regulators is checked
against this matrix, whatever its purpose, 90 (其他) included: 90 is for needs the other purposes do
not name, not a way around the directions they keep (4.2.4). The external (21, 22) and public (31)
purposes are not flows between regulator levels: tables 1–4 say nothing of them, and 90 does not
stand in for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Final

import orjson

from tzsb import refusals
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES, PUBLIC_PURPOSE, PURPOSES, Action, covers

#: Regulator levels, lowest first.
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
#: 4.2.2: 21 同级外部接口, 22 上级外部部门接口 — a regulator and an external department.
EXTERNAL_PURPOSES: Final = ("21", "22")
#: 4.2.2 b: the 上级外部部门接口 joins the national regulator with 党中央、国务院 and a province's
#: regulator with its provincial government; no lower level has it.
UPPER_EXTERNAL_LEVELS: Final = ("province", "national")
#: 4.2.4 其他数据接口.
OTHER_PURPOSE: Final = "90"


@dataclass(frozen=True, slots=True)
class Party:
    level: str
    region: str


def _expand(entry: str, source: str) -> set[tuple[str, str]]:
    """``a->b``: data may flow from a to b; ``a<->b``: both ways; a chain ``a<->b<->c…``: both ways
    between neighbours on it, and between the province and every lower level on it (4.2.1 d)."""
    if "<->" in entry:
        levels = entry.split("<->")
        links = set(pairwise(levels))
        if "province" in levels:
            below = INTERNAL_LEVELS[: INTERNAL_LEVELS.index("province")]
            links |= {("province", level) for level in levels if level in below}
        pairs = links | {(b, a) for a, b in links}
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


def _level_zh(level: str) -> str:
    return LEVEL_NAMES.get(level, level)


class DirectionPolicy:
    """Checks a request's purpose and business type against the levels of caller and node."""

    def __init__(self, node: Party, matrix: Mapping[str, frozenset[tuple[str, str]]]) -> None:
        self.node = node
        self.matrix = matrix

    def check(self, purpose: str, business: str, action: Action, caller: Party) -> None:
        sender, receiver = (caller, self.node) if action is not Action.QUERY else (self.node, caller)
        flow = f"{sender.level}→{receiver.level}"
        flow_zh = f"{_level_zh(sender.level)}→{_level_zh(receiver.level)}"
        name = PURPOSES[purpose]
        if purpose == PUBLIC_PURPOSE:
            if action is not Action.QUERY:
                raise refusals.public_purpose_read_only(name)
            return
        if purpose in EXTERNAL_PURPOSES:
            self._check_external(purpose, name, caller)
            return
        # The internal purposes and 90: both parties are regulators.
        if caller.level not in INTERNAL_LEVELS or self.node.level not in INTERNAL_LEVELS:
            raise refusals.regulators_only(purpose, name, flow_zh, flow)
        same_regulator = caller.level == self.node.level and caller.region == self.node.region
        if purpose == "11":
            # The regulator's own systems, each perhaps for part of its area (a console account
            # of one city's office at a province node): the node's level, within its region.
            if caller.level != self.node.level or not covers(self.node.region, caller.region):
                raise refusals.same_regulator_only(flow_zh, flow)
            return
        if purpose == OTHER_PURPOSE and same_regulator:
            # One regulator's own systems (what 11 allows): no flow between levels, nothing for
            # the matrix to say.
            return
        if purpose == "12" and (sender.level, receiver.level) != ("province", "national"):
            raise refusals.province_to_national_only(flow_zh, flow)
        if purpose == "13" and (sender.level, receiver.level) != ("national", "province"):
            raise refusals.national_to_province_only(flow_zh, flow)
        upper, lower = sorted((sender, receiver), key=lambda party: INTERNAL_LEVELS.index(party.level))[::-1]
        if purpose == "14" and (
            upper.level == lower.level
            or "national" in (upper.level, lower.level)
            or not covers(upper.region, lower.region)
        ):
            raise refusals.province_and_its_own_only(flow_zh, flow, f"{sender.region}→{receiver.region}")
        allowed = self.matrix.get(business, frozenset())
        if (sender.level, receiver.level) not in allowed:
            listed = ", ".join(f"{a}→{b}" for a, b in sorted(allowed)) or "none"
            entry = f"{sender.level}->{receiver.level}"
            raise refusals.direction_not_allowed(business, BUSINESS_TYPES[business], flow_zh, flow, listed, entry)
        if purpose == OTHER_PURPOSE and upper.level != lower.level and not covers(upper.region, lower.region):
            # Tables 1–4 are the chain of one jurisdiction (所辖, 逐级上报): 90 does not join a
            # regulator to the superior or subordinate of another, which 14 refuses as well.
            raise refusals.other_purpose_off_chain(flow_zh, flow, f"{sender.region}→{receiver.region}")

    def _check_external(self, purpose: str, name: str, caller: Party) -> None:
        """4.2.2: an external department (the caller) and a regulator (this node); for 22 a
        province's or the national regulator."""
        if caller.level != "external":
            raise refusals.external_purpose(purpose, name, caller.level)
        node_level = self.node.level
        if node_level not in INTERNAL_LEVELS:
            raise refusals.external_purpose_at_non_regulator(purpose, name, _level_zh(node_level), node_level)
        if purpose == "22" and node_level not in UPPER_EXTERNAL_LEVELS:
            raise refusals.upper_external_below_province(name, _level_zh(node_level), node_level)
