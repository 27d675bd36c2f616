"""Code tables of the spec: table 6 (purposes), table 7 (business types), table A.1 (actions)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

#: Table 6 — 数据接口用途代码. Only the leaf codes may appear in a ``busicode``; 10/20/30 are headings.
PURPOSES: Final[dict[str, str]] = {
    "11": "本级内部接口",
    "12": "省—国家接口",
    "13": "国家—省接口",
    "14": "省级—所辖下级特种设备安全监管部门接口",
    "21": "同级外部接口",
    "22": "上级外部部门接口",
    "31": "信息公开公示或查询数据接口",
    "90": "其他数据接口",
}

#: Table 7 — 特种设备业务数据类型代码. Headings (0100, 0200, …) are not business types,
#: except 0500 and 0900, which the table defines without sub-codes.
BUSINESS_TYPES: Final[dict[str, str]] = {
    "0101": "特种设备基础数据接口",
    "0102": "单位基础数据接口",
    "0103": "人员基础数据接口",
    "0201": "压力容器、压力管道（限长输管道）设计许可",
    "0202": "压力容器、压力管道（限公用管道、工业管道）设计许可",
    "0203": "特种设备制造许可",
    "0204": "特种设备安装许可（限长输管道）",
    "0205": "特种设备安装改造修理许可（长输管道除外）",
    "0206": "移动式压力容器充装许可",
    "0207": "气瓶充装许可",
    "0208": "特种设备使用登记",
    "0209": "特种设备检验、检测机构核准",
    "0210": "特种设备检验、检测人员资格认定",
    "0211": "特种设备安全管理人员和作业人员资格认定",
    "0301": "常规监督检查数据接口",
    "0302": "专项监督检查数据接口",
    "0303": "证后监督检查数据接口",
    "0304": "其他监督检查数据接口",
    "0401": "检验数据接口",
    "0402": "检测数据接口",
    "0500": "事故调查类数据接口",
    "0900": "其他业务类数据接口",
}


class Action(StrEnum):
    """Table A.1 — 请求动作代码."""

    ADD = "01"
    MODIFY = "02"
    DELETE = "03"
    QUERY = "04"

    @property
    def label(self) -> str:
        return _ACTION_TITLES[self]


_ACTION_TITLES: Final[dict[Action, str]] = {
    Action.ADD: "数据新增",
    Action.MODIFY: "数据修改",
    Action.DELETE: "数据删除",
    Action.QUERY: "数据查询",
}

#: Public information queries (purpose 31) are read-only and always masked.
PUBLIC_PURPOSE: Final = "31"

RESULT_SUCCESS: Final = "0001"
RESULT_FAILURE: Final = "0000"


def split_busicode(busicode: str) -> tuple[str, str]:
    """Split a 6-digit ``busicode`` into its purpose (table 6) and business type (table 7)."""
    return busicode[:2], busicode[2:]
