"""``grade_by_figures``: a stated grade agrees with the figures that define the grades.

《特种设备安全监察条例》 (2009) arts. 61–64 grade an accident by deaths, serious injuries and direct
loss: 特别重大 at 30 / 100 / 1 亿元, 重大 at 10 / 50 / 5,000 万元, 较大 at 3 / 10 / 1,000 万元, 一般
below. ``grades`` lists the grades from the highest down, each with the figures that reach it
(``at_least``: field → threshold; any one reached is enough); the last grade has none. The figures
imply the highest grade one of them reaches. A stated grade below that is wrong for certain; a
stated grade above it may rest on a criterion the figures do not hold (a boiler explosion, people
stranded on a ropeway), so that warning says so. Missing figures imply nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, finite_number, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def _grades(params: Mapping[str, Any], context: RuleContext) -> list[tuple[str, dict[str, Decimal]]]:
    grades = params.get("grades")
    problem = ConfigurationError(
        f"rule {params.get('id')!r}: grade_by_figures needs 'grades': a list, highest first, of "
        '{"code": …, "at_least": {field: number}}, the last with no at_least'
    )
    if not isinstance(grades, list) or len(grades) < 2:
        raise problem
    parsed: list[tuple[str, dict[str, Decimal]]] = []
    for position, grade in enumerate(grades):
        if not isinstance(grade, dict) or not isinstance(grade.get("code"), str):
            raise problem
        thresholds = grade.get("at_least", {})
        last = position == len(grades) - 1
        if not isinstance(thresholds, dict) or bool(thresholds) == last:
            raise problem
        figures: dict[str, Decimal] = {}
        for code, threshold in thresholds.items():
            require_field({"field": code, "id": params.get("id")}, "field", context)
            number = finite_number(threshold)
            if number is None:
                raise problem
            figures[code] = number
        parsed.append((grade["code"], figures))
    return parsed


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    grades = _grades(params, context)
    order = {code: position for position, (code, _) in enumerate(grades)}
    figures = tuple(sorted({code for _, thresholds in grades for code in thresholds}))
    spec = context.business.field(field)
    names = dict(spec.codes) if spec is not None else {}
    label = field_label(context, field)
    shown = "、".join(field_label(context, code) for code in figures)

    def implied(record: Mapping[str, Any]) -> int | None:
        if all(finite_number(present(record, code)) is None for code in figures):
            return None  # no figure given: nothing to compare with
        for position, (_code, thresholds) in enumerate(grades):
            for code, threshold in thresholds.items():
                number = finite_number(present(record, code))
                if number is not None and number >= threshold:
                    return position
        return len(grades) - 1

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        stated = present(record, field)
        if not isinstance(stated, str) or stated not in order:
            return []
        position = implied(record)
        if position is None or order[stated] == position:
            return []
        code = grades[position][0]
        named = f"{stated}（{names.get(stated, '')}）"
        wanted = f"{code}（{names.get(code, '')}）"
        if order[stated] > position:
            return [
                (
                    field,
                    f"{label} {named} 低于{shown}按 2009 年条例标准对应的 {wanted} / {field} {stated} is lower than "
                    f"{code}, the grade its {', '.join(figures)} reach under the 2009 thresholds",
                )
            ]
        return [
            (
                field,
                f"{label} {named} 高于{shown}所达到的 {wanted}；若依设备爆炸、倾覆、人员滞留等其他情形定级可忽略 / "
                f"{field} {stated} is higher than {code}, all its {', '.join(figures)} reach under the 2009 "
                "thresholds; ignore this when another criterion (an explosion, a collapse, people stranded) set it",
            )
        ]

    return BuiltRule(check, reads=(field, *figures), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("grade_by_figures", build)
