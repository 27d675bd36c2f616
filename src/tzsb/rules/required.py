"""``required``: the field is present and not blank."""

from __future__ import annotations

RULE_ID = "required"


def message(field: str, name: str) -> str:
    return f"{name}（{field}）为必填项，不能为空 / {field} is required and must not be blank"
