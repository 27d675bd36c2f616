"""Every purpose of table 6 between every pair of levels: what the node must answer, written out from
the spec independently of ``tzsb.registry.access``.

The parties sit on one chain of jurisdiction — 杭州市西湖区 (330106) in 杭州市 (330100) in 浙江省
(330000) under the national level (100000); the external department and the public service are
the province's — so only the levels decide. Each (purpose, caller level, node level, action) gives
either the refusal the node must answer (``expected``) or None, accepted. Business type 0101 flows
along table 1's chain ``县（区）级<->市级<->省级<->国家``, read as the purposes read it: between
neighbouring levels (4.3.6 逐级上报) and between the province and every level under it (4.2.1 d),
never between a county or a city and the national level.
"""

from __future__ import annotations

from typing import Final

from tzsb import refusals
from tzsb.errors import ExchangeError
from tzsb.protocol import PURPOSES

#: Each level's party: its region.
REGIONS: Final = {
    "county": "330106",
    "city": "330100",
    "province": "330000",
    "national": "100000",
    "external": "330000",
    "public": "330000",
}
LEVELS: Final = tuple(REGIONS)
REGULATORS: Final = ("county", "city", "province", "national")
NAMES: Final = {
    "county": "县（区）级",
    "city": "市级",
    "province": "省级",
    "national": "国家",
    "external": "外部部门",
    "public": "公众服务",
}
ACTIONS: Final = ("01", "04")

#: Where 0101's data may flow between regulator levels (sender, receiver).
CHAIN_FLOWS: Final = frozenset(
    {
        ("county", "city"), ("city", "county"),
        ("city", "province"), ("province", "city"),
        ("province", "national"), ("national", "province"),
        ("county", "province"), ("province", "county"),
    }
)  # fmt: skip
LISTED: Final = (
    "city→county, city→province, county→city, county→province, national→province, province→city, "
    "province→county, province→national"
)


def expected(purpose: str, caller: str, node: str, action: str) -> ExchangeError | None:
    """The refusal of a request for 0101 with ``purpose`` by an app of level ``caller`` at a node of
    level ``node``; None when the node must accept it."""
    # Data flows from the caller to the node for 01, from the node to the caller for 04.
    sender, receiver = (caller, node) if action == "01" else (node, caller)
    flow, flow_zh = f"{sender}→{receiver}", f"{NAMES[sender]}→{NAMES[receiver]}"
    name = PURPOSES[purpose]
    if purpose == "31":  # 4.2.3 信息公开公示或查询: anyone granted it may query, masked; nobody writes
        return None if action == "04" else refusals.public_purpose_read_only(name)
    if purpose in ("21", "22"):  # 4.2.2: an external department calling a regulator
        if caller != "external":
            return refusals.external_purpose(purpose, name, caller)
        if node not in REGULATORS:
            return refusals.external_purpose_at_non_regulator(purpose, name, NAMES[node], node)
        if purpose == "22" and node not in ("province", "national"):  # 4.2.2 b: 国家, 省级 with their superiors
            return refusals.upper_external_below_province(name, NAMES[node], node)
        return None
    # 11–14 (4.2.1) and 90 (4.2.4): between regulators only.
    if caller not in REGULATORS or node not in REGULATORS:
        return refusals.regulators_only(purpose, name, flow_zh, flow)
    if caller == node:  # the same regulator here: every party of a level has the same region
        if purpose in ("11", "90"):
            return None
    elif purpose == "11":
        return refusals.same_regulator_only(flow_zh, flow)
    if purpose == "12" and (sender, receiver) != ("province", "national"):
        return refusals.province_to_national_only(flow_zh, flow)
    if purpose == "13" and (sender, receiver) != ("national", "province"):
        return refusals.national_to_province_only(flow_zh, flow)
    if purpose == "14" and (caller == node or "national" in (caller, node)):
        return refusals.province_and_its_own_only(flow_zh, flow, f"{REGIONS[sender]}→{REGIONS[receiver]}")
    if (sender, receiver) not in CHAIN_FLOWS:
        entry = f"{sender}->{receiver}"
        return refusals.direction_not_allowed("0101", "特种设备基础数据接口", flow_zh, flow, LISTED, entry)
    return None


#: Every (purpose, caller level, node level, action).
COMBINATIONS: Final = [
    (purpose, caller, node, action)
    for purpose in PURPOSES
    for caller in LEVELS
    for node in LEVELS
    for action in ACTIONS
]
