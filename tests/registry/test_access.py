"""The direction matrix: purposes of table 6 against the parties' levels, flows of tables 1-4."""

from __future__ import annotations

from pathlib import Path

import pytest

from tzsb.errors import ConfigurationError, ErrorCode, ExchangeError
from tzsb.protocol.codes import BUSINESS_TYPES, Action
from tzsb.registry.access import DirectionPolicy, Party, load_directions

PROVINCE = Party("province", "330000")
NATIONAL = Party("national", "100000")
CITY = Party("city", "330100")
COUNTY = Party("county", "330106")
OTHER_CITY = Party("city", "320100")
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
        (PROVINCE, "21", "0101", Action.QUERY, EXTERNAL),
        (PROVINCE, "31", "0211", Action.QUERY, PUBLIC),
        (PROVINCE, "90", "0900", Action.ADD, CITY),
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
        (PROVINCE, "31", "0101", Action.ADD, PUBLIC,
         "用途 31（信息公开公示或查询数据接口）只能查询（action 04） / Purpose 31 (信息公开公示或查询数据接口) is "
         "read-only: only action 04"),
        (PROVINCE, "21", "0101", Action.QUERY, CITY,
         "用途 21（同级外部接口）只用于与外部部门交换数据，本应用级别为 city / Purpose 21 is for external "
         "departments; this app's level is city"),
        (PROVINCE, "14", "0101", Action.ADD, EXTERNAL,
         "用途 14（省级—所辖下级特种设备安全监管部门接口）只用于监管部门之间，本次为 外部部门→省级 / Purpose 14 is "
         "for regulators only; this request is external→province"),
        (NATIONAL, "12", "0208", Action.QUERY, PROVINCE,
         "用途 12（省—国家接口）只允许省级向国家报送数据，本次为 国家→省级 / Purpose 12 only carries data from a "
         "province to the national level; this request is national→province"),
        (PROVINCE, "13", "0206", Action.ADD, NATIONAL,
         "业务 0206（移动式压力容器充装许可）不允许 国家→省级 方向的数据交换（表 1–4），允许：province→national / "
         "Business type 0206 does not flow national→province (spec tables 1-4); allowed: province→national"),
        (CITY, "14", "0203", Action.ADD, COUNTY,
         "业务 0203（特种设备制造许可）不允许 县（区）级→市级 方向的数据交换（表 1–4），允许：national→province, "
         "province→national / Business type 0203 does not flow county→city (spec tables 1-4); allowed: "
         "national→province, province→national"),
    ],
)  # fmt: skip
def test_refused(node: Party, purpose: str, business: str, action: Action, caller: Party, message: str) -> None:
    with pytest.raises(ExchangeError) as refused:
        policy(node).check(purpose, business, action, caller)
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert refused.value.message == message


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
