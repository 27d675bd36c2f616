"""The refusal table: every refusal is built there, carries a code and says what to do in both languages."""

from __future__ import annotations

import ast
import inspect
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import tzsb
from tzsb import refusals
from tzsb.clock import BEIJING
from tzsb.errors import ErrorCode, ExchangeError, RecordFault

SOURCE = Path(tzsb.__file__).parent

#: An argument for each parameter name the constructors take.
SAMPLES: dict[str, Any] = {
    "name": "appid",
    "names": ["extra", "other"],
    "appid": "hz-city",
    "client_addr": "127.0.0.1",
    "presented": True,
    "until": datetime(2026, 1, 1, tzinfo=BEIJING),
    "algorithm": "MD5",
    "skew_seconds": 400.0,
    "window_seconds": 300,
    "per_minute": 60,
    "size": 2048,
    "limit": 1024,
    "busicode": "140101",
    "action": "01",
    "action_label": "数据新增",
    "business": "0101",
    "failures": "case x failed",
    "purpose": "14",
    "level": "county",
    "flow_zh": "县级→省级",
    "flow": "county→province",
    "regions": "330106→330000",
    "allowed": "county→city",
    "entry": "county->national",
    "node_level_zh": "市级",
    "node_level": "city",
    "count": 3,
    "known": ["_page_size", "_region"],
    "label": "身份证号",
    "code": "330200",
    "scope": "330100",
    "maximum": 1000,
    "parameter": "_cursor",
    "faults": [RecordFault(0, "K1")],
    "key_field": "EQP_CODE",
    "expected_zh": "6 位数字",
    "expected_en": "6 digits",
    "index": 2,
    "array_allowed": True,
    "service": "province-devices",
    "reason_zh": "超时",
    "reason_en": "timed out",
    "seconds": 30,
}

CONSTRUCTORS = [
    (name, function)
    for name, function in inspect.getmembers(refusals, inspect.isfunction)
    if function.__module__ == refusals.__name__
]


def _chinese(character: str) -> bool:
    return "\u4e00" <= character <= "\u9fff"


def _built(function: Any) -> ExchangeError:
    parameters = inspect.signature(function).parameters
    return function(**{name: SAMPLES[name] for name in parameters})


@pytest.mark.parametrize(("name", "function"), CONSTRUCTORS, ids=[name for name, _ in CONSTRUCTORS])
def test_every_refusal_has_a_code_and_both_languages(name: str, function: Any) -> None:
    refusal = _built(function)
    assert isinstance(refusal, ExchangeError)
    assert refusal.code in ErrorCode
    assert any(_chinese(character) for character in refusal.zh), name
    # The English part may quote a Chinese label (a field name, a level) but is written in English.
    assert refusal.en.split()[0].isascii(), name
    assert not any(_chinese(character) for character in refusal.en.replace(SAMPLES["label"], "")), name
    assert refusal.message == f"{refusal.zh} / {refusal.en}"


def test_the_table_names_every_code_the_node_answers_with() -> None:
    codes = {_built(function).code for _, function in CONSTRUCTORS}
    assert codes == set(ErrorCode)


def test_refusals_are_built_only_in_the_table() -> None:
    """``ExchangeError(...)`` appears nowhere but in the table (and the class itself)."""
    builders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name in ("refusals.py", "errors.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "ExchangeError"
            ):
                builders.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert builders == []


def test_golden_wording() -> None:
    """A handful of refusals pinned word for word, so that the table cannot drift unnoticed."""
    assert refusals.unknown_app("hz-city").message == (
        "应用账号 hz-city 不存在或已停用，请向节点管理员确认 appid / "
        "App hz-city is unknown or disabled; check the appid with the node operator"
    )
    assert refusals.too_many_records(1000, 1001).message == (
        "单次请求最多 1000 条记录，本次 1001 条，请分批发送 / "
        "At most 1000 records per request, got 1001; split the batch"
    )
    assert refusals.body_over_node_limit(1024).message == (
        "请求体超过节点上限 1024 字节，请分批发送 / "
        "Request body exceeds the node's limit of 1024 bytes; split the batch"
    )
    conflict = refusals.records_of_another_source([RecordFault(0, "K1", source="other")], "0101")
    assert conflict.code is ErrorCode.CONFLICT
    assert [fault.as_dict() for fault in conflict.details] == [{"index": 0, "key": "K1", "source": "other"}]
