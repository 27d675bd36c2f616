"""Sample records of every business type, consistent with each other: the sandbox's data
(``tzsb demo``) and the repository's ``examples/`` folder.

One fictional county, 杭州市西湖区 (330106): ten units, five people, four devices, and what
regulators, inspectors and the units record about them — licences, registrations, checks,
inspections, tests, accidents. Every code a record gives for another record names a sample:
a device's units and safety manager, an inspection's device, inspector and institute, a
certificate's holder, a post-licence check's licence.

Names, addresses, telephone and ID numbers are invented (示例 / 样例 / 演示 mark them); the
identifiers still carry their real check characters — GB 32100 credit codes with a GB 11714
organisation code inside, GB 11643 ID numbers — and device codes the TSG 08 structure, so the
shipped rules pass them without a warning. Dates are fixed (what happened, in 2025 or before):
the output never changes unless this module does.

Regenerate the repository's folder with ``python -m tzsb.catalog.samples examples/``
(``--check`` only compares).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from tzsb.catalog.loader import load_catalog
from tzsb.protocol import BUSINESS_TYPES

#: The county every sample lies in, and its name.
AREA: Final = "330106"
AREA_NAME: Final = "浙江省杭州市西湖区"
#: Sample business types in the order a node should receive them: units and people before the
#: devices that name them, devices before what is recorded about them.
LOAD_ORDER: Final = ("0102", "0103", "0101", *sorted(set(BUSINESS_TYPES) - {"0101", "0102", "0103"}))

_REGULATOR: Final = "杭州市西湖区市场监督管理局"
_CITY_REGULATOR: Final = "杭州市市场监督管理局"
_PROVINCE_REGULATOR: Final = "浙江省市场监督管理局"
_NATIONAL_REGULATOR: Final = "国家市场监督管理总局"

# GB 32100-2015: 18 characters of this alphabet; the check makes Σ(value × 3^i mod 31) ≡ 0 (mod 31).
_CREDIT_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714-1997: 8 characters and a check, C9 = 11 − Σ(value × weight) mod 11 (10 → X, 11 → 0).
_ORGANISATION_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 11643-1999: weights 2^(17−i) mod 11; Σ mod 11 indexes the check characters.
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECKS: Final = "10X98765432"


def organisation_code(body: str) -> str:
    """A GB 11714 organisation code: the 8 characters of ``body`` and their check character."""
    total = sum(int(char, 36) * weight for char, weight in zip(body, _ORGANISATION_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def credit_code(kind: str, area: str, organisation: str) -> str:
    """A GB 32100 统一社会信用代码: authority and kind (``91`` company, ``12`` public institution),
    the registering area, the organisation code made of the 8 characters ``organisation``, a check."""
    body = kind + area + organisation_code(organisation)
    total = sum(_CREDIT_ALPHABET.index(char) * weight for char, weight in zip(body, _CREDIT_WEIGHTS, strict=True))
    return body + _CREDIT_ALPHABET[(31 - total % 31) % 31]


def id_number(area: str, birth_date: str, order: int) -> str:
    """A GB 11643 公民身份号码: area, birth date (``YYYY-MM-DD``), order (odd: a man) and check."""
    body = f"{area}{birth_date.replace('-', '')}{order:03d}"
    return body + _ID_CHECKS[sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def _address(street: str) -> str:
    return f"{AREA_NAME}{street}"


# Units (0102): the key is how other records name the unit.
_UNIT_ROWS: Final = (
    # key, kind, organisation, name, UNIT_TYPE, economy, industry, street, established, staff
    ("property", "91", "00000001", "杭州示例物业服务有限公司", "5",
     "有限责任公司", "物业管理", "示例路1号", "2012-04-16", 86),
    ("foods", "91", "00000002", "杭州样例食品有限公司", "5",
     "有限责任公司", "食品制造业", "样例街8号", "2009-10-20", 140),
    ("lift_maker", "91", "00000003", "杭州示例电梯制造有限公司", "2",
     "股份有限公司", "通用设备制造业", "演示大道100号", "2006-03-01", 420),
    ("lift_service", "91", "00000004", "杭州示例电梯工程有限公司", "3",
     "有限责任公司", "机械设备修理业", "示例路20号", "2011-08-08", 65),
    ("inspector", "12", "00000005", "杭州市西湖区示例特种设备检验所", "6",
     "事业单位", "专业技术服务业", "样例街2号", "2001-06-18", 48),
    ("tester", "91", "00000006", "杭州样例无损检测有限公司", "7",
     "有限责任公司", "专业技术服务业", "演示大道6号", "2015-05-12", 32),
    ("designer", "91", "00000007", "杭州示例工程设计有限公司", "1",
     "有限责任公司", "专业技术服务业", "示例路66号", "2008-11-11", 75),
    ("vessel_maker", "91", "00000008", "杭州样例压力容器有限公司", "2",
     "有限责任公司", "金属制品业", "演示大道88号", "2004-09-09", 210),
    ("gas", "91", "00000009", "杭州示例燃气有限公司", "4",
     "有限责任公司", "燃气生产和供应业", "样例街99号", "2003-01-15", 180),
    ("pipeline", "91", "00000010", "杭州示例管道工程有限公司", "3",
     "有限责任公司", "建筑安装业", "示例路108号", "2010-07-07", 120),
)  # fmt: skip
UNITS: Final = {row[0]: {"UNIT_CODE": credit_code(row[1], AREA, row[2]), "UNIT_NAME": row[3]} for row in _UNIT_ROWS}
_STREETS: Final = {row[0]: row[7] for row in _UNIT_ROWS}

# People (0103): key, name, sex, birth date, order, person type, unit, education, position, work start.
_PERSON_ROWS: Final = (
    ("manager", "张示例", "1", "1985-03-15", 11, "2", "property", "本科", "安全管理员", "2007-07-01"),
    ("fitter", "李样例", "2", "1990-07-08", 22, "1", "lift_service", "大专", "电梯维修工", "2011-09-01"),
    ("inspector", "王演示", "1", "1984-11-20", 33, "3", "inspector", "硕士研究生", "检验员", "2006-08-01"),
    ("tester", "赵测试", "2", "1988-05-02", 44, "4", "tester", "本科", "检测员", "2010-07-15"),
    ("driver", "钱示范", "1", "1993-09-09", 55, "1", "foods", "高中", "叉车司机", "2013-03-01"),
)
PEOPLE: Final = {
    row[0]: {
        "ID_NO": id_number(AREA, row[3], row[4]),
        "PERSON_NAME": row[1],
        "SEX": row[2],
        "MOBILE": f"1300000{index:04d}",
    }
    for index, row in enumerate(_PERSON_ROWS, start=1)
}
#: Each person's certificate (0210 or 0211), by person.
_CERTIFICATES: Final = {
    "manager": "TSZ330106A2023000011",
    "fitter": "TSZ330106T2022000022",
    "inspector": "TSJ33DT202100000033",
    "tester": "TSJ33UT202200000044",
    "driver": "TSZ330106N12024000055",
}
_CONTACTS: Final = {"property": "manager", "lift_service": "fitter", "inspector": "inspector", "tester": "tester",
                    "foods": "driver"}  # fmt: skip

# Licences (02xx): the licence numbers other records name.
_LICENCES: Final = {
    "lift_maker": "TS2233901-2028",
    "vessel_maker": "TS2233902-2029",
    "lift_service": "TS3333903-2027",
    "pipeline": "TS3333904-2028",
}


def _unit(key: str, code_field: str = "UNIT_CODE", name_field: str = "UNIT_NAME") -> dict[str, Any]:
    unit = UNITS[key]
    return {code_field: unit["UNIT_CODE"], name_field: unit["UNIT_NAME"]}


def _units() -> list[dict[str, Any]]:
    records = []
    for index, (key, _kind, _org, _name, unit_type, economy, industry, street, established, staff) in enumerate(
        _UNIT_ROWS
    ):
        record: dict[str, Any] = {
            **_unit(key),
            "UNIT_TYPE": unit_type,
            "ECON_TYPE": economy,
            "INDUSTRY": industry,
            "UNIT_ADDRESS": _address(street),
            "AREA_CODE": AREA,
            "POST_CODE": "310013",
            "SUPERVISE_ORG_NAME": _REGULATOR,
            "UNIT_STATUS": "1",
            "ESTABLISH_DATE": established,
            "EMPLOYEE_NUM": staff,
            "EMAIL": f"{key.replace('_', '-')}@example.com",
            "UPDATE_TIME": f"2025-03-{index + 3:02d} 09:{index * 5:02d}:00",
        }
        if key in _CONTACTS:
            person = PEOPLE[_CONTACTS[key]]
            record.update(CONTACT_PERSON=person["PERSON_NAME"], CONTACT_PHONE=person["MOBILE"])
        records.append(record)
    return records


def _people() -> list[dict[str, Any]]:
    records = []
    for index, (key, name, sex, birth, _order, person_type, unit, education, position, start) in enumerate(
        _PERSON_ROWS
    ):
        records.append({
            "ID_NO": PEOPLE[key]["ID_NO"], "PERSON_NAME": name, "SEX": sex, "BIRTH_DATE": birth,
            "EDUCATION": education, "PERSON_TYPE": person_type, **_unit(unit), "MOBILE": PEOPLE[key]["MOBILE"],
            "AREA_CODE": AREA, "NATION": "01", "POSITION": position, "QUAL_CERT_NO": _CERTIFICATES[key],
            "WORK_START_DATE": start, "UPDATE_TIME": f"2025-03-{index + 20:02d} 14:{index * 7:02d}:00",
        })  # fmt: skip
    return records


# Devices (0101). 设备代码: 品种 4 + manufacturer 5 (digits 3-7 of its licence number) + year 4 +
# serial 5, or, assigned at registration, 品种 4 + area 6 + year 4 + serial 5.
_DEVICES: Final = {
    "lift": {
        "EQP_CODE": "3110" + _LICENCES["lift_maker"][4:9] + "2021" + "00001",
        "REG_CODE": "3110" + AREA + "202106" + "0001",
        "EQP_TYPE": "3000", "EQP_SORT": "3100", "EQP_VART": "3110", "EQP_NAME": "曳引驱动乘客电梯",
        "EQP_MODEL": "SL-1000/1.75", "FACTORY_NO": "SL21-00001",
        **_unit("lift_maker", "MAKE_UNIT_CODE", "MAKE_UNIT_NAME"),
        "MAKE_LICENSE_NO": _LICENCES["lift_maker"], "MAKE_DATE": "2021-03-18",
        **_unit("property", "USE_UNIT_CODE", "USE_UNIT_NAME"), "USE_ADDRESS": _address("示例路1号示例花园2幢1单元"),
        "USE_PLACE": "11", "USE_CERT_NO": "梯11浙A00001(21)", "REG_DATE": "2021-06-10", "USE_STATUS": "2",
        "REG_STATUS": "1", "LAST_INSP_DATE": "2025-05-20", "NEXT_INSP_DATE": "2026-05-31", "DESIGN_LIFE": 25,
        "INSTALL_FINISH_DATE": "2021-05-28", "USE_DATE": "2021-06-15", "PRODUCT_STANDARD": "GB/T 7588.1-2020",
        **_unit("lift_service", "INSTALL_UNIT_CODE", "INSTALL_UNIT_NAME"),
        **_unit("lift_service", "MAINT_UNIT_CODE", "MAINT_UNIT_NAME"),
        "RATED_SPEED": "1.75", "RATED_LOAD": 1000, "FLOORS": 18, "STOPS": 18, "DOORS": 18,
    },
    "escalator": {
        "EQP_CODE": "3310" + AREA + "2022" + "00002",
        "EQP_TYPE": "3000", "EQP_SORT": "3300", "EQP_VART": "3310", "EQP_NAME": "自动扶梯",
        "EQP_MODEL": "SF-30/1000", "FACTORY_NO": "SF22-00002",
        **_unit("lift_maker", "MAKE_UNIT_CODE", "MAKE_UNIT_NAME"),
        "MAKE_LICENSE_NO": _LICENCES["lift_maker"], "MAKE_DATE": "2022-02-11",
        **_unit("property", "USE_UNIT_CODE", "USE_UNIT_NAME"), "USE_ADDRESS": _address("示例路3号示例商场1层"),
        "USE_PLACE": "06", "USE_CERT_NO": "梯31浙A00002(22)", "REG_DATE": "2022-04-06", "USE_STATUS": "2",
        "REG_STATUS": "1", "LAST_INSP_DATE": "2025-03-26", "NEXT_INSP_DATE": "2026-03-31", "DESIGN_LIFE": 20,
        "INSTALL_FINISH_DATE": "2022-03-30", "USE_DATE": "2022-04-08", "PRODUCT_STANDARD": "GB 16899-2011",
        **_unit("lift_service", "INSTALL_UNIT_CODE", "INSTALL_UNIT_NAME"),
        **_unit("lift_service", "MAINT_UNIT_CODE", "MAINT_UNIT_NAME"),
        "RATED_SPEED": "0.5",
    },
    "vessel": {
        "EQP_CODE": "2150" + _LICENCES["vessel_maker"][4:9] + "2020" + "00003",
        "EQP_TYPE": "2000", "EQP_SORT": "2100", "EQP_VART": "2150", "EQP_NAME": "分汽缸",
        "EQP_MODEL": "FQG-1.6/1.2", "FACTORY_NO": "RQ20-00003",
        **_unit("vessel_maker", "MAKE_UNIT_CODE", "MAKE_UNIT_NAME"),
        "MAKE_LICENSE_NO": _LICENCES["vessel_maker"], "MAKE_DATE": "2020-08-05",
        **_unit("foods", "USE_UNIT_CODE", "USE_UNIT_NAME"), "USE_ADDRESS": _address("样例街8号2号车间"),
        "USE_PLACE": "99", "USE_CERT_NO": "容15浙A00003(20)", "REG_DATE": "2020-11-02", "USE_STATUS": "2",
        "REG_STATUS": "1", "LAST_INSP_DATE": "2025-06-12", "NEXT_INSP_DATE": "2026-06-30", "DESIGN_LIFE": 15,
        "INSTALL_FINISH_DATE": "2020-10-20", "USE_DATE": "2020-11-05", "PRODUCT_STANDARD": "GB/T 150-2011",
        **_unit("pipeline", "INSTALL_UNIT_CODE", "INSTALL_UNIT_NAME"),
        "DESIGN_PRESSURE": "1.6", "VOLUME": "1.2", "MEDIUM": "蒸汽",
    },
    "forklift": {
        "EQP_CODE": "5110" + AREA + "2023" + "00004",
        "EQP_TYPE": "5000", "EQP_SORT": "5100", "EQP_VART": "5110", "EQP_NAME": "内燃平衡重式叉车",
        "EQP_MODEL": "CPCD30", "FACTORY_NO": "CC23-00004", "MAKE_DATE": "2023-01-16",
        **_unit("foods", "USE_UNIT_CODE", "USE_UNIT_NAME"), "USE_ADDRESS": _address("样例街8号成品仓库"),
        "USE_PLACE": "99", "USE_CERT_NO": "车11浙A00004(23)", "REG_DATE": "2023-03-01", "USE_STATUS": "2",
        "REG_STATUS": "1", "LAST_INSP_DATE": "2025-02-20", "NEXT_INSP_DATE": "2026-02-28", "DESIGN_LIFE": 10,
        "USE_DATE": "2023-03-02", "RATED_LIFT_WEIGHT": "3",
    },
}  # fmt: skip
#: Each device's safety manager and usage-registration data.
_DEVICE_MANAGERS: Final = {"lift": "manager", "escalator": "manager", "vessel": "driver", "forklift": "driver"}
_DEVICE_TIMES: Final = {
    "lift": "2025-05-21 10:00:00",
    "escalator": "2025-03-27 10:30:00",
    "vessel": "2025-06-13 11:00:00",
    "forklift": "2025-02-21 11:30:00",
}


def _devices() -> list[dict[str, Any]]:
    records = []
    for key, device in _DEVICES.items():
        manager = PEOPLE[_DEVICE_MANAGERS[key]]
        records.append({
            **device, "AREA_CODE": AREA, "REG_ORG_NAME": _REGULATOR,
            "INSP_ORG_NAME": UNITS["inspector"]["UNIT_NAME"], "SAFETY_MANAGER": manager["PERSON_NAME"],
            "SAFETY_MANAGER_PHONE": manager["MOBILE"], "UPDATE_TIME": _DEVICE_TIMES[key],
        })  # fmt: skip
    return records


def _device(key: str, *fields: str) -> dict[str, Any]:
    return {name: _DEVICES[key][name] for name in fields}


def _registrations() -> list[dict[str, Any]]:
    records = []
    for key, category in (("lift", "1"), ("escalator", "1"), ("vessel", "1"), ("forklift", "1")):
        device = _DEVICES[key]
        manager = PEOPLE[_DEVICE_MANAGERS[key]]
        record = {
            "USE_CERT_NO": device["USE_CERT_NO"],
            **_device(key, "EQP_CODE", "EQP_TYPE", "EQP_VART", "EQP_NAME", "FACTORY_NO"),
            "REG_MODE": "1", "REG_CATEGORY": category,
            **_device(key, "USE_UNIT_CODE", "USE_UNIT_NAME", "USE_ADDRESS"),
            "REG_ORG_NAME": _REGULATOR, "REG_DATE": device["REG_DATE"], "REG_STATUS": "1",
            "SAFETY_MANAGER": manager["PERSON_NAME"], "SAFETY_MANAGER_PHONE": manager["MOBILE"],
            "AREA_CODE": AREA, "UPDATE_TIME": f"{device['REG_DATE']} 16:00:00",
        }  # fmt: skip
        if "REG_CODE" in device:
            record["REG_CODE"] = device["REG_CODE"]
        records.append(record)
    return records


def _licence(
    number: str, unit: str, item: str, subitem: str, issued: str, valid_to: str, issuer: str, **extra: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "LICENSE_NO": number, **_unit(unit), "UNIT_ADDRESS": _address(_STREETS[unit]),
        "LICENSE_ITEM": item, "LICENSE_SUBITEM": subitem, "ISSUE_ORG_NAME": issuer, "ISSUE_DATE": issued,
        "VALID_FROM": issued, "VALID_TO": valid_to, "LICENSE_STATUS": "1", **extra, "AREA_CODE": AREA,
        "UPDATE_TIME": f"{issued} 17:00:00",
    }  # fmt: skip
    if unit in _CONTACTS:
        person = PEOPLE[_CONTACTS[unit]]
        record.update(CONTACT_PERSON=person["PERSON_NAME"], CONTACT_PHONE=person["MOBILE"])
    return record


def _licences() -> dict[str, list[dict[str, Any]]]:
    national, province = _NATIONAL_REGULATOR, _PROVINCE_REGULATOR
    return {
        "0201": [
            _licence("TS1133905-2029", "designer", "压力管道设计", "长输管道", "2025-01-10", "2029-01-09", national,
                     LICENSE_PARAMS="GA1", DESIGN_ADDRESS=_address("示例路66号"), APPROVER_NUM=6),
            _licence("TS1233906-2028", "vessel_maker", "压力容器设计", "固定式压力容器规则设计", "2024-06-20",
                     "2028-06-19", national, LICENSE_PARAMS="A1", APPROVER_NUM=3),
        ],
        "0202": [
            _licence("TS1833907-2028", "designer", "压力管道设计", "工业管道", "2024-09-01", "2028-08-31", province,
                     LICENSE_PARAMS="GC1", DESIGN_ADDRESS=_address("示例路66号"), APPROVER_NUM=4),
            _licence("TS1833908-2027", "pipeline", "压力管道设计", "公用管道", "2023-05-15", "2027-05-14", province,
                     LICENSE_PARAMS="GB1", APPROVER_NUM=2),
        ],
        "0203": [
            _licence(_LICENCES["lift_maker"], "lift_maker", "电梯制造（含安装、修理、改造）", "曳引驱动乘客电梯",
                     "2024-03-05", "2028-03-04", national, MAKE_ADDRESS=_address("演示大道100号"),
                     MAKE_EQP_TYPE="3000", OVERSEAS_FLAG="0", LICENSE_PARAMS="A1"),
            _licence(_LICENCES["vessel_maker"], "vessel_maker", "压力容器制造（含安装、修理、改造）",
                     "固定式压力容器", "2025-02-18", "2029-02-17", province, MAKE_ADDRESS=_address("演示大道88号"),
                     MAKE_EQP_TYPE="2000", OVERSEAS_FLAG="0", LICENSE_PARAMS="中、低压容器"),
        ],
        "0204": [
            _licence("TS3133909-2028", "pipeline", "压力管道安装", "长输管道", "2024-04-08", "2028-04-07", national,
                     PIPELINE_LEVEL="GA1"),
            _licence("TS3133910-2027", "gas", "压力管道安装", "长输管道", "2023-08-21", "2027-08-20", national,
                     PIPELINE_LEVEL="GA2"),
        ],
        "0205": [
            _licence(_LICENCES["lift_service"], "lift_service", "电梯安装（含修理）", "曳引驱动乘客电梯、自动扶梯",
                     "2023-11-06", "2027-11-05", province, INSTALL_EQP_TYPE="3000", WORK_SCOPE="安装、修理",
                     LICENSE_PARAMS="A2"),
            _licence(_LICENCES["pipeline"], "pipeline", "压力管道安装", "工业管道", "2024-07-22", "2028-07-21",
                     province, INSTALL_EQP_TYPE="8000", WORK_SCOPE="安装", LICENSE_PARAMS="GC1"),
        ],
        "0206": [
            _licence("TS4233911-2027", "gas", "移动式压力容器充装", "液化天然气", "2023-06-12", "2027-06-11",
                     province, FILLING_SITE=_address("样例街99号充装站"), CONTAINER_VART="2220",
                     FILLING_MEDIUM="液化天然气", FILLER_NUM=8),
            _licence("TS4233912-2028", "gas", "移动式压力容器充装", "压缩天然气", "2024-10-09", "2028-10-08",
                     province, FILLING_SITE=_address("样例街101号加气母站"), CONTAINER_VART="2230",
                     FILLING_MEDIUM="压缩天然气", FILLER_NUM=6),
        ],
        "0207": [
            _licence("TS4333913-2027", "gas", "气瓶充装", "液化石油气", "2023-09-18", "2027-09-17", province,
                     FILLING_SITE=_address("样例街99号充装站"), CYLINDER_VART="2320", FILLING_MEDIUM="液化石油气",
                     OWN_CYLINDER_NUM=12000, FILLING_CAPACITY="36"),
            _licence("TS4333914-2028", "gas", "气瓶充装", "工业气体", "2024-12-02", "2028-12-01", province,
                     FILLING_SITE=_address("样例街101号"), CYLINDER_VART="2310", FILLING_MEDIUM="氧气、氮气、氩气",
                     OWN_CYLINDER_NUM=3500, FILLING_CAPACITY="8.5"),
        ],
        "0209": [
            _licence("TS7133915-2028", "inspector", "特种设备检验机构", "综合检验机构（电梯、承压类）",
                     "2024-01-15", "2028-01-14", province, ORG_CATEGORY="1", ORG_NATURE="事业单位", STAFF_NUM=36),
            _licence("TS7233916-2027", "tester", "特种设备检测机构", "无损检测机构", "2023-03-20", "2027-03-19",
                     province, ORG_CATEGORY="2", ORG_NATURE="企业", STAFF_NUM=21),
        ],
    }  # fmt: skip


def _qualifications() -> dict[str, list[dict[str, Any]]]:
    def certificate(person: str, unit: str, issued: str, valid_to: str, issuer: str, **extra: Any) -> dict[str, Any]:
        return {
            "CERT_NO": _CERTIFICATES[person], "ID_NO": PEOPLE[person]["ID_NO"],
            "PERSON_NAME": PEOPLE[person]["PERSON_NAME"], "SEX": PEOPLE[person]["SEX"], **_unit(unit), **extra,
            "ISSUE_ORG_NAME": issuer, "ISSUE_DATE": issued, "VALID_TO": valid_to, "CERT_STATUS": "1",
            "MOBILE": PEOPLE[person]["MOBILE"], "AREA_CODE": AREA, "UPDATE_TIME": f"{issued} 15:30:00",
        }  # fmt: skip

    return {
        "0210": [
            certificate("inspector", "inspector", "2021-12-10", "2027-12-09",
                        _NATIONAL_REGULATOR, PERSON_CATEGORY="1", QUAL_ITEM="电梯检验员", QUAL_LEVEL="检验员"),
            certificate("tester", "tester", "2022-08-16", "2027-08-15", _NATIONAL_REGULATOR, PERSON_CATEGORY="2",
                        QUAL_ITEM="超声检测", QUAL_LEVEL="II级"),
        ],
        "0211": [
            certificate("manager", "property", "2023-04-12", "2027-04-11", _CITY_REGULATOR, QUAL_ITEM="A",
                        EXAM_ORG_NAME="杭州市示例特种设备作业人员考试机构"),
            certificate("fitter", "lift_service", "2022-06-28", "2026-06-27", _CITY_REGULATOR, QUAL_ITEM="T",
                        EXAM_ORG_NAME="杭州市示例特种设备作业人员考试机构"),
            certificate("driver", "foods", "2024-05-30", "2028-05-29", _CITY_REGULATOR, QUAL_ITEM="N1",
                        EXAM_ORG_NAME="杭州市示例特种设备作业人员考试机构"),
        ],
    }  # fmt: skip


def _check(number: str, on: str, unit: str, content: str, result: str, **extra: Any) -> dict[str, Any]:
    return {
        "CHECK_NO": number, "CHECK_DATE": on, "CHECK_ORG_NAME": _REGULATOR, **_unit(unit), "CHECK_CONTENT": content,
        "CHECK_RESULT": result, "HAZARD_FOUND": "0", "HAZARD_NUM": 0, "RECTIFY_STATUS": "0", **extra,
        "AREA_CODE": AREA, "UPDATE_TIME": f"{on} 18:00:00",
    }  # fmt: skip


def _at_device(key: str) -> dict[str, Any]:
    """Where a check of the device took place, and the device."""
    return {"CHECK_ADDRESS": _DEVICES[key]["USE_ADDRESS"], **_device(key, "EQP_CODE", "EQP_VART")}


def _hazard(description: str, level: str = "5") -> dict[str, Any]:
    return {"HAZARD_FOUND": "1", "HAZARD_NUM": 1, "HAZARD_LEVEL": level, "HAZARD_DESC": description}


def _checks() -> dict[str, list[dict[str, Any]]]:
    routine = "使用登记、定期检验、维护保养记录、安全管理人员和作业人员配备、应急预案"
    return {
        "0301": [
            _check("330106JC2025001", "2025-04-10", "property", routine, "未发现问题", **_at_device("lift")),
            _check("330106JC2025002", "2025-05-08", "foods", routine, "叉车日常维护保养记录缺失，责令限期整改",
                   **_at_device("forklift"), **_hazard("叉车未按规定进行日常维护保养并记录"), MEASURE="1",
                   ORDER_NO="杭西市监特令〔2025〕示例1号", RECTIFY_TYPE="2", RECTIFY_DEADLINE="2025-05-22",
                   RECTIFY_STATUS="2", RECTIFY_FINISH_DATE="2025-05-19"),
        ],
        "0302": [
            _check("330106ZX2025001", "2025-06-03", "property", "自动扶梯梳齿板、扶手带、紧急停止装置",
                   "未发现问题", **_at_device("escalator"), SPECIAL_TASK_NAME="2025年电梯安全专项检查"),
            _check("330106ZX2025002", "2025-06-17", "foods", "安全附件、压力表、定期检验",
                   "压力表超过检定有效期，已当场更换",
                   **_at_device("vessel"), **_hazard("分汽缸压力表超过检定有效期"),
                   SPECIAL_TASK_NAME="2025年承压类特种设备安全专项检查", MEASURE="9", MEASURE_DESC="责令立即更换压力表",
                   RECTIFY_TYPE="1", RECTIFY_STATUS="2", RECTIFY_FINISH_DATE="2025-06-17"),
        ],
        "0303": [
            _check("330106ZH2025001", "2025-07-09", "lift_maker", "许可条件保持、质量保证体系运转、产品出厂资料",
                   "许可条件保持良好", LICENSE_NO=_LICENCES["lift_maker"],
                   LICENSE_ITEM="电梯制造（含安装、修理、改造）",
                   CHECK_ADDRESS=_address("演示大道100号")),
            _check("330106ZH2025002", "2025-08-14", "lift_service", "许可条件保持、作业人员持证、施工记录",
                   "许可条件保持良好", LICENSE_NO=_LICENCES["lift_service"], LICENSE_ITEM="电梯安装（含修理）",
                   CHECK_ADDRESS=_address("示例路20号")),
        ],
        "0304": [
            _check("330106QT2025001", "2025-09-02", "property", "电梯运行状况、维护保养记录",
                   "电梯运行正常，已要求维护保养单位加强巡查", **_at_device("lift"),
                   CHECK_REASON="投诉举报：电梯运行有异响"),
            _check("330106QT2025002", "2025-10-16", "foods", "叉车安全状况、司机持证、事故整改", "事故整改措施已落实",
                   **_at_device("forklift"), CHECK_REASON="事故后复查"),
        ],
    }  # fmt: skip


def _inspections() -> list[dict[str, Any]]:
    plans = (
        # device, report number, inspection type, conclusion, safety grade
        ("lift", "XHJY-DT2025-00001", "01", "1", None),
        ("escalator", "XHJY-DT2025-00002", "01", "1", None),
        ("vessel", "XHJY-RQ2025-00003", "02", "5", "2"),
        ("forklift", "XHJY-CC2025-00004", "01", "1", None),
    )
    records = []
    for key, number, kind, conclusion, grade in plans:
        device = _DEVICES[key]
        reported = (date.fromisoformat(device["LAST_INSP_DATE"]) + timedelta(days=1)).isoformat()
        record = {
            "REPORT_NO": number, **_device(key, "EQP_CODE", "EQP_VART", "USE_CERT_NO", "USE_UNIT_CODE",
                                           "USE_UNIT_NAME", "USE_ADDRESS"),
            **_unit("inspector", "INSP_ORG_CODE", "INSP_ORG_NAME"), "INSP_TYPE": kind,
            "INSP_DATE": device["LAST_INSP_DATE"], "INSP_CONCLUSION": conclusion,
            "NEXT_INSP_DATE": device["NEXT_INSP_DATE"], "REPORT_DATE": reported,
            "INSPECTOR_NAMES": PEOPLE["inspector"]["PERSON_NAME"], "AREA_CODE": AREA,
            "UPDATE_TIME": f"{reported} 09:30:00",
        }  # fmt: skip
        if "REG_CODE" in device:
            record["REG_CODE"] = device["REG_CODE"]
        if grade is not None:
            record["SAFETY_GRADE"] = grade
        records.append(record)
    return records


def _tests() -> list[dict[str, Any]]:
    def test(number: str, kind: str, method: str, on: str, next_date: str, **extra: Any) -> dict[str, Any]:
        return {
            "REPORT_NO": number, **_device("vessel", "EQP_CODE", "EQP_VART", "USE_UNIT_CODE", "USE_UNIT_NAME"),
            "TEST_TYPE": kind, "TEST_METHOD": method, **_unit("tester", "TEST_ORG_CODE", "TEST_ORG_NAME"),
            "TEST_DATE": on, "TEST_CONCLUSION": "1", **extra, "NEXT_TEST_DATE": next_date,
            "TESTER_NAMES": PEOPLE["tester"]["PERSON_NAME"], "AREA_CODE": AREA, "UPDATE_TIME": f"{on} 16:45:00",
        }  # fmt: skip

    return [
        test("YLJC-AQF2025-00001", "3", "离线校验", "2025-06-10", "2026-06-09", SET_PRESSURE="1.5"),
        test("YLJC-UT2025-00002", "1", "超声测厚", "2025-06-05", "2028-06-04"),
    ]


def _accidents() -> list[dict[str, Any]]:
    def accident(number: str, key: str, at: str, place: str, kind: str, summary: str, **extra: Any) -> dict[str, Any]:
        return {
            "ACCIDENT_NO": number, "ACCIDENT_TIME": at, "ACCIDENT_PLACE": place,
            **_device(key, "EQP_CODE", "EQP_TYPE", "EQP_VART", "USE_UNIT_CODE", "USE_UNIT_NAME"),
            "ACCIDENT_LEVEL": "4", "ACCIDENT_TYPE": kind, "ACCIDENT_SUMMARY": summary, "DEATH_NUM": 0,
            "SERIOUS_INJURY_NUM": 0, "MINOR_INJURY_NUM": 1, **extra, "REPORT_ORG_NAME": _REGULATOR,
            "AREA_CODE": AREA,
        }  # fmt: skip

    return [
        accident("XH-SG-2025-0001", "forklift", "2025-10-08 14:20:00", _DEVICES["forklift"]["USE_ADDRESS"], "碰撞",
                 "叉车倒车时刮碰货架，致一名搬运工轻伤", CASUALTY_DETAILS="搬运工一名，左臂擦伤（轻伤）",
                 DIRECT_LOSS="1.2", CAUSE="司机倒车时未观察后方", HANDLING="责令使用单位整改，对司机进行安全教育",
                 REPORT_TIME="2025-10-08 15:05:00", CLOSE_DATE="2025-10-30", UPDATE_TIME="2025-10-30 17:00:00"),
        accident("XH-SG-2025-0002", "escalator", "2025-08-16 19:40:00", _DEVICES["escalator"]["USE_ADDRESS"],
                 "摔倒", "一名乘客在自动扶梯上行时摔倒，轻伤", CASUALTY_DETAILS="乘客一名，膝部擦伤（轻伤）",
                 DIRECT_LOSS="0.3", CAUSE="乘客未站稳扶好", HANDLING="使用单位增设安全提示并加强引导",
                 REPORT_TIME="2025-08-16 20:30:00", CLOSE_DATE="2025-09-05", UPDATE_TIME="2025-09-05 10:00:00"),
    ]  # fmt: skip


def _others() -> list[dict[str, Any]]:
    return [
        {
            "DATA_ID": "XH-XZCF-2025-0001", "DATA_TYPE": "5",
            "TITLE": f"{UNITS['foods']['UNIT_NAME']}叉车未按规定维护保养案",
            "CONTENT": "当事人未对在用叉车进行经常性维护保养，"
                       "依据《中华人民共和国特种设备安全法》第八十三条作出行政处罚",
            "DATA_DATE": "2025-06-20", "SOURCE_ORG_NAME": _REGULATOR, **_unit("foods"),
            "EQP_CODE": _DEVICES["forklift"]["EQP_CODE"], "AREA_CODE": AREA, "UPDATE_TIME": "2025-06-20 15:00:00",
        },
        {
            "DATA_ID": "XH-YQ-2025-0001", "DATA_TYPE": "1", "TITLE": "网民反映示例商场自动扶梯停运",
            "CONTENT": "网民反映示例商场1层自动扶梯停运；经核实系计划内维护保养，已恢复运行",
            "DATA_DATE": "2025-08-17", "SOURCE_ORG_NAME": _REGULATOR, **_unit("property"),
            "EQP_CODE": _DEVICES["escalator"]["EQP_CODE"], "AREA_CODE": AREA, "UPDATE_TIME": "2025-08-18 09:00:00",
        },
    ]  # fmt: skip


def sample_records() -> dict[str, list[dict[str, Any]]]:
    """Every business type's sample records, in ``LOAD_ORDER``; each record's fields in catalog order."""
    by_type: dict[str, list[dict[str, Any]]] = {
        "0101": _devices(), "0102": _units(), "0103": _people(), **_licences(), "0208": _registrations(),
        **_qualifications(), **_checks(), "0401": _inspections(), "0402": _tests(), "0500": _accidents(),
        "0900": _others(),
    }  # fmt: skip
    catalog = load_catalog()
    ordered: dict[str, list[dict[str, Any]]] = {}
    for code in LOAD_ORDER:
        order = {spec.code: index for index, spec in enumerate(catalog[code].fields)}
        unknown = {name for record in by_type[code] for name in record} - set(order)
        if unknown:
            raise ValueError(f"samples of {code} hold fields the catalog does not know: {', '.join(sorted(unknown))}")
        ordered[code] = [dict(sorted(record.items(), key=lambda item: order[item[0]])) for record in by_type[code]]
    return ordered


README_NAME: Final = "README.md"


def _readme(records: dict[str, list[dict[str, Any]]]) -> str:
    catalog = load_catalog()
    rows = "\n".join(
        f"| [{code}.json]({code}.json) | {code} {catalog[code].name} | {len(records[code])} | "
        f"`{catalog[code].primary_key}` |"
        for code in LOAD_ORDER
    )
    return f"""# Sample records

A few valid records of every business type (table 7), consistent with each other: the units and
people that devices, licences, certificates, checks, inspections and accidents name are among the
samples (0102, 0103), and so are the devices (0101), registrations (0208) and licences they name.
All lie in {AREA} ({AREA_NAME}). The names, addresses, telephone and ID numbers are invented
(示例 / 样例 / 演示 mark them); credit codes, ID numbers and device codes carry valid check
characters and structure, so the shipped rules pass every record without a warning.

Each file is a `busilist` array. Send one with a busicode your app holds, e.g.
`tzsb send … --busicode 140102 --action 01 --file examples/0102.json`; in the order of this table,
every record finds the records it names already stored. `tzsb demo` creates a node with all of
them loaded.

Generated by `python -m tzsb.catalog.samples examples/` from `src/tzsb/catalog/samples.py`: change
that module, not these files (a test fails when they differ).

| file | business type | records | key |
|---|---|---|---|
{rows}
"""


def sample_files() -> dict[str, bytes]:
    """The samples folder: ``<code>.json`` (a busilist) per business type, and a README."""
    records = sample_records()
    files = {f"{code}.json": orjson.dumps(records[code], option=orjson.OPT_INDENT_2) + b"\n" for code in LOAD_ORDER}
    files[README_NAME] = _readme(records).encode("utf-8")
    return files


def write_samples(folder: Path) -> list[Path]:
    """Write (or rewrite) the samples into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in sample_files().items():
        path = folder / name
        path.write_bytes(content)
        written.append(path)
    return written


def differences(folder: Path) -> list[str]:
    """What in ``folder`` differs from the samples this module makes: missing, changed or extra files."""
    wanted = sample_files()
    present = {path.name for path in folder.glob("*") if path.is_file()} if folder.is_dir() else set()
    found = [f"{name} is missing" for name in sorted(set(wanted) - present)]
    found += [
        f"{name} differs" for name in sorted(set(wanted) & present) if (folder / name).read_bytes() != wanted[name]
    ]
    found += [f"{name} is not a sample" for name in sorted(present - set(wanted))]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tzsb.catalog.samples FOLDER [--check]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tzsb.catalog.samples", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the samples go, e.g. examples/")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the folder differs")
    args = parser.parse_args(argv)
    if args.check:
        found = differences(args.folder)
        for line in found:
            print(f"{args.folder}/{line}", file=sys.stderr)
        if found:
            print(f"regenerate with: python -m tzsb.catalog.samples {args.folder}", file=sys.stderr)
        return 1 if found else 0
    written = write_samples(args.folder)
    print(f"wrote {len(written)} files to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
