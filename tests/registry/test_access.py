"""The direction matrix: purposes of table 6 against the parties' levels, flows of tables 1-4."""

from __future__ import annotations

from pathlib import Path

import pytest

from tzsb import refusals
from tzsb.errors import ConfigurationError, ErrorCode, ExchangeError
from tzsb.protocol.codes import BUSINESS_TYPES, Action
from tzsb.registry.access import DirectionPolicy, Party, load_directions

PROVINCE = Party("province", "330000")
NATIONAL = Party("national", "100000")
CITY = Party("city", "330100")
COUNTY = Party("county", "330106")
OTHER_CITY = Party("city", "320100")
OTHER_COUNTY = Party("county", "320106")
EXTERNAL = Party("external", "330000")
PUBLIC = Party("public", "330000")


def policy(node: Party) -> DirectionPolicy:
    return DirectionPolicy(node, load_directions())


@pytest.mark.parametrize(
    ("node", "purpose", "business", "action", "caller"),
    [
        (PROVINCE, "14", "0101", Action.ADD, CITY),  # city reports up to its province
        (PROVINCE, "14", "0101", Action.ADD, COUNTY),
        (CITY, "14", "0101", Action.QUERY, PROVINCE),  # the province pulls from its city
        (CITY, "14", "0101", Action.ADD, COUNTY),
        (NATIONAL, "12", "0101", Action.ADD, PROVINCE),
        (PROVINCE, "12", "0101", Action.QUERY, NATIONAL),  # national pulls: data flows province → national
        (PROVINCE, "13", "0203", Action.ADD, NATIONAL),
        (NATIONAL, "12", "0206", Action.ADD, PROVINCE),
        (PROVINCE, "11", "0101", Action.ADD, PROVINCE),
        # the province's own system for one of its cities' areas (a console account of that office)
        (PROVINCE, "11", "0101", Action.ADD, Party("province", "330100")),
        (PROVINCE, "21", "0101", Action.QUERY, EXTERNAL),
        (PROVINCE, "31", "0211", Action.QUERY, PUBLIC),
        (PROVINCE, "90", "0900", Action.ADD, CITY),
        (PROVINCE, "90", "0101", Action.ADD, COUNTY),  # 4.2.1 d: a province with its counties directly
        (PROVINCE, "90", "0101", Action.QUERY, COUNTY),
        (NATIONAL, "90", "0101", Action.ADD, PROVINCE),
        (NATIONAL, "90", "0101", Action.QUERY, PROVINCE),
        (CITY, "90", "0101", Action.ADD, COUNTY),
        (PROVINCE, "90", "0101", Action.ADD, PROVINCE),  # one regulator's own systems, as 11
        (NATIONAL, "22", "0101", Action.ADD, EXTERNAL),
        (PROVINCE, "22", "0101", Action.QUERY, EXTERNAL),
        (COUNTY, "21", "0101", Action.ADD, EXTERNAL),
        (NATIONAL, "31", "0101", Action.QUERY, COUNTY),
    ],
)
def test_allowed(node: Party, purpose: str, business: str, action: Action, caller: Party) -> None:
    policy(node).check(purpose, business, action, caller)


@pytest.mark.parametrize(
    ("node", "purpose", "business", "action", "caller", "message"),
    [
        (NATIONAL, "12", "0101", Action.ADD, CITY,
         "用途 12（省—国家接口）只允许省级向国家报送数据，本次为 市级→国家 / Purpose 12 only carries data from a "
         "province to the national level; this request is city→national"),
        (PROVINCE, "13", "0101", Action.ADD, PROVINCE,
         "用途 13（国家—省接口）只允许国家向省级下发数据，本次为 省级→省级 / Purpose 13 only carries data from the "
         "national level to a province; this request is province→province"),
        (PROVINCE, "14", "0101", Action.ADD, OTHER_CITY,
         "用途 14（省级—所辖下级接口）只用于省级与所辖市、县之间，本次为 市级→省级（320100→330000） / Purpose 14 is "
         "between a province and its own cities and counties; this request is city→province (320100→330000)"),
        (PROVINCE, "11", "0101", Action.ADD, CITY,
         "用途 11（本级内部接口）只用于同一监管部门内部，本次为 市级→省级 / Purpose 11 is for systems of the same "
         "regulator; this request is city→province"),
        (PROVINCE, "11", "0101", Action.ADD, Party("province", "320100"),
         "用途 11（本级内部接口）只用于同一监管部门内部，本次为 省级→省级 / Purpose 11 is for systems of the same "
         "regulator; this request is province→province"),
        (PROVINCE, "31", "0101", Action.ADD, PUBLIC,
         "用途 31（信息公开公示或查询数据接口）只能查询（action 04） / Purpose 31 (信息公开公示或查询数据接口) is "
         "read-only: only action 04"),
        (PROVINCE, "21", "0101", Action.QUERY, CITY,
         "用途 21（同级外部接口）只用于与外部部门交换数据，本应用级别为 city / Purpose 21 is for external "
         "departments; this app's level is city"),
        (PROVINCE, "14", "0101", Action.ADD, EXTERNAL,
         "用途 14（省级—所辖下级特种设备安全监管部门接口）只用于监管部门之间，本次为 外部部门→省级；外部部门请使用"
         "用途 21 或 22，公众服务请使用用途 31（只能查询） / Purpose 14 is for regulators only; this request is "
         "external→province. External departments use purpose 21 or 22, public services purpose 31 (query only)"),
        (NATIONAL, "12", "0208", Action.QUERY, PROVINCE,
         "用途 12（省—国家接口）只允许省级向国家报送数据，本次为 国家→省级 / Purpose 12 only carries data from a "
         "province to the national level; this request is national→province"),
        (PROVINCE, "13", "0206", Action.ADD, NATIONAL,
         "业务 0206（移动式压力容器充装许可）不允许 国家→省级 方向的数据交换（表 1–4），允许：province→national；"
         '如确需此方向，请节点管理员在 <home>/directions.json 中为 0206 写明 "national->province" / '
         "Business type 0206 does not flow national→province (spec tables 1-4); allowed: province→national. If this "
         'node needs that flow, its operator can name it for 0206 in <home>/directions.json as "national->province"'),
        (CITY, "14", "0203", Action.ADD, COUNTY,
         "业务 0203（特种设备制造许可）不允许 县（区）级→市级 方向的数据交换（表 1–4），允许：national→province, "
         'province→national；如确需此方向，请节点管理员在 <home>/directions.json 中为 0203 写明 "county->city" / '
         "Business type 0203 does not flow county→city (spec tables 1-4); allowed: national→province, "
         "province→national. If this node needs that flow, its operator can name it for 0203 in "
         '<home>/directions.json as "county->city"'),
    ],
)  # fmt: skip
def test_refused(node: Party, purpose: str, business: str, action: Action, caller: Party, message: str) -> None:
    with pytest.raises(ExchangeError) as refused:
        policy(node).check(purpose, business, action, caller)
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert refused.value.message == message


#: What the chain county<->city<->province<->national allows: neighbours, and the province with its lower levels.
CHAIN = frozenset(
    {
        ("county", "city"), ("city", "county"), ("city", "province"), ("province", "city"),
        ("province", "national"), ("national", "province"), ("county", "province"), ("province", "county"),
    }
)  # fmt: skip
LISTED_CHAIN = (
    "city→county, city→province, county→city, county→province, national→province, province→city, "
    "province→county, province→national"
)
DEVICES = BUSINESS_TYPES["0101"]


def not_allowed(business: str, flow_zh: str, flow: str, listed: str = LISTED_CHAIN) -> ExchangeError:
    entry = flow.replace("→", "->")
    return refusals.direction_not_allowed(business, BUSINESS_TYPES[business], flow_zh, flow, listed, entry)


def test_purpose_90_no_longer_carries_a_county_s_devices_to_the_national_level() -> None:
    """Issue 17: 90 returned before any direction check, so a county app's 01 on 0101 reached a national node."""
    with pytest.raises(ExchangeError) as refused:
        policy(NATIONAL).check("90", "0101", Action.ADD, COUNTY)
    assert refused.value.code is ErrorCode.FORBIDDEN
    # golden wording: pins the text a caller reads
    assert refused.value.message == (
        "业务 0101（特种设备基础数据接口）不允许 县（区）级→国家 方向的数据交换（表 1–4），允许：city→county, "
        "city→province, county→city, county→province, national→province, province→city, province→county, "
        'province→national；如确需此方向，请节点管理员在 <home>/directions.json 中为 0101 写明 "county->national" / '
        "Business type 0101 does not flow county→national (spec tables 1-4); allowed: city→county, city→province, "
        "county→city, county→province, national→province, province→city, province→county, province→national. If "
        'this node needs that flow, its operator can name it for 0101 in <home>/directions.json as "county->national"'
    )


@pytest.mark.parametrize(
    ("node", "purpose", "business", "action", "caller", "expected"),
    [
        (NATIONAL, "90", "0101", Action.QUERY, COUNTY, not_allowed("0101", "国家→县（区）级", "national→county")),
        (NATIONAL, "90", "0101", Action.ADD, CITY, not_allowed("0101", "市级→国家", "city→national")),
        (NATIONAL, "90", "0500", Action.QUERY, CITY, not_allowed("0500", "国家→市级", "national→city")),
        (PROVINCE, "90", "0203", Action.ADD, COUNTY,
         not_allowed("0203", "县（区）级→省级", "county→province", "national→province, province→national")),
        (NATIONAL, "90", "0206", Action.QUERY, PROVINCE,
         not_allowed("0206", "国家→省级", "national→province", "province→national")),
        # Same level, another region: no purpose joins two provinces.
        (PROVINCE, "90", "0101", Action.ADD, Party("province", "320000"),
         not_allowed("0101", "省级→省级", "province→province")),
        # Off the chain of one jurisdiction (14 refuses these as well).
        (PROVINCE, "90", "0101", Action.ADD, OTHER_CITY,
         refusals.other_purpose_off_chain("市级→省级", "city→province", "320100→330000")),
        (CITY, "90", "0101", Action.QUERY, OTHER_COUNTY,
         refusals.other_purpose_off_chain("市级→县（区）级", "city→county", "330100→320106")),
        # 90 is no way around the external (21, 22) and public (31) purposes.
        (PROVINCE, "90", "0101", Action.ADD, EXTERNAL,
         refusals.regulators_only("90", "其他数据接口", "外部部门→省级", "external→province")),
        (PROVINCE, "90", "0101", Action.QUERY, PUBLIC,
         refusals.regulators_only("90", "其他数据接口", "省级→公众服务", "province→public")),
        (Party("public", "330000"), "90", "0101", Action.ADD, PROVINCE,
         refusals.regulators_only("90", "其他数据接口", "省级→公众服务", "province→public")),
        # 14 never reaches the national level, nor one regulator's own systems.
        (NATIONAL, "14", "0101", Action.ADD, COUNTY,
         refusals.province_and_its_own_only("县（区）级→国家", "county→national", "330106→100000")),
        (PROVINCE, "14", "0101", Action.ADD, PROVINCE,
         refusals.province_and_its_own_only("省级→省级", "province→province", "330000→330000")),
        (NATIONAL, "12", "0101", Action.ADD, COUNTY,
         refusals.province_to_national_only("县（区）级→国家", "county→national")),
        # 4.2.2: 22 is the national or a provincial regulator's; 21 and 22 need a regulator's node.
        (CITY, "22", "0101", Action.ADD, EXTERNAL,
         refusals.upper_external_below_province("上级外部部门接口", "市级", "city")),
        (Party("external", "330000"), "21", "0101", Action.ADD, EXTERNAL,
         refusals.external_purpose_at_non_regulator("21", "同级外部接口", "外部部门", "external")),
    ],
)  # fmt: skip
def test_refused_by_rule(
    node: Party, purpose: str, business: str, action: Action, caller: Party, expected: ExchangeError
) -> None:
    with pytest.raises(ExchangeError) as refused:
        policy(node).check(purpose, business, action, caller)
    assert (refused.value.code, refused.value.message) == (ErrorCode.FORBIDDEN, expected.message)


def test_a_chain_allows_neighbours_and_the_province_with_its_lower_levels() -> None:
    matrix = load_directions()
    chained = [code for code in BUSINESS_TYPES if not code.startswith("02") or code in ("0208", "0211")]
    assert {code: matrix[code] for code in chained} == dict.fromkeys(chained, CHAIN)
    for pairs in matrix.values():
        assert not pairs & {("county", "national"), ("national", "county"), ("city", "national"), ("national", "city")}


@pytest.mark.parametrize(
    ("entry", "pairs"),
    [
        ("county<->city<->province<->national", CHAIN),
        ("county<->city", {("county", "city"), ("city", "county")}),
        ("county<->city<->province",
         {("county", "city"), ("city", "county"), ("city", "province"), ("province", "city"), ("county", "province"),
          ("province", "county")}),
        ("city<->province<->national",
         {("city", "province"), ("province", "city"), ("province", "national"), ("national", "province")}),
        # No province on the chain: only neighbours.
        ("county<->city<->national",
         {("county", "city"), ("city", "county"), ("city", "national"), ("national", "city")}),
        ("national<->county", {("national", "county"), ("county", "national")}),
        ("province->national", {("province", "national")}),
        ("county->national", {("county", "national")}),
    ],
)  # fmt: skip
def test_how_an_entry_expands(tmp_path: Path, entry: str, pairs: set[tuple[str, str]]) -> None:
    override = tmp_path / "directions.json"
    override.write_text(f'{{"0900": ["{entry}"]}}', encoding="utf-8")
    assert load_directions(override)["0900"] == pairs


def test_a_node_naming_county_to_national_opens_exactly_that_direction(tmp_path: Path) -> None:
    override = tmp_path / "directions.json"
    override.write_text('{"0101": ["county<->city<->province<->national", "county->national"]}', encoding="utf-8")
    shipped, matrix = load_directions(), load_directions(override)
    assert matrix["0101"] == shipped["0101"] | {("county", "national")}
    assert {code: pairs for code, pairs in matrix.items() if code != "0101"} == {
        code: pairs for code, pairs in shipped.items() if code != "0101"
    }
    national = DirectionPolicy(NATIONAL, matrix)
    national.check("90", "0101", Action.ADD, COUNTY)
    listed = LISTED_CHAIN.replace("county→city, ", "county→city, county→national, ")
    for purpose, business, action, caller, expected in [
        ("90", "0101", Action.QUERY, COUNTY, not_allowed("0101", "国家→县（区）级", "national→county", listed)),
        ("90", "0101", Action.ADD, CITY, not_allowed("0101", "市级→国家", "city→national", listed)),
        ("90", "0102", Action.ADD, COUNTY, not_allowed("0102", "县（区）级→国家", "county→national")),
        ("12", "0101", Action.ADD, COUNTY, refusals.province_to_national_only("县（区）级→国家", "county→national")),
    ]:
        with pytest.raises(ExchangeError) as refused:
            national.check(purpose, business, action, caller)
        assert refused.value.message == expected.message


def test_every_business_type_has_directions() -> None:
    assert set(load_directions()) == set(BUSINESS_TYPES)


def test_a_node_can_replace_a_direction(tmp_path: Path) -> None:
    override = tmp_path / "directions.json"
    override.write_text('{"0206": ["national<->province"]}', encoding="utf-8")
    matrix = load_directions(override)
    assert matrix["0206"] == {("national", "province"), ("province", "national")}
    DirectionPolicy(PROVINCE, matrix).check("13", "0206", Action.ADD, NATIONAL)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"0199": ["province->national"]}', "0199 is not a business type"),
        ('{"0101": "province->national"}', "must be a list"),
        ('{"0101": ["province=>national"]}', "is not a direction"),
        ('{"0101": ["town->national"]}', "unknown level"),
    ],
)
def test_a_broken_directions_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    override = tmp_path / "directions.json"
    override.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_directions(override)
