"""``date_range``: a date or time lies within ``min`` … ``max``, and (``not_future``) not after today."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType

_DATE_OR_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?")


# A pure function of the clock reading, remembered: a batch asks it once per record with one
# answer, and concurrent batches with different readings cannot see each other's.
@lru_cache(maxsize=256)
def _latest_allowed(now: str, ahead: int) -> str:
    """``now`` plus ``ahead`` seconds, as business-timestamp text."""
    moment = datetime.strptime(now, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=ahead)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    low = params.get("min")
    high = params.get("max")
    not_future = bool(params.get("not_future", False))
    # Clocks of source systems run a little ahead of ours; this much is not "the future".
    ahead = params.get("max_ahead_seconds", 0)
    if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 0:
        raise ConfigurationError(f"rule {params.get('id')!r}: max_ahead_seconds must be a whole number ≥ 0")
    for bound in (low, high):
        if bound is not None and not isinstance(bound, str):
            raise ConfigurationError(f"rule {params.get('id')!r}: min and max are dates YYYY-MM-DD")
    if low is None and high is None and not not_future:
        raise ConfigurationError(f"rule {params.get('id')!r}: date_range needs min, max or not_future")
    label = field_label(context, field)

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value = present(record, field)
        if not isinstance(value, str) or not _DATE_OR_TIME.fullmatch(value):
            return []  # not a date or time at all: the type rule reports it
        # Dates and ``YYYY-MM-DD HH:MM:SS`` times compare correctly as text.
        if low is not None and value < low:
            return [(field, f"{label}不能早于 {low} / {field} must not be before {low}")]
        if high is not None and value[: len(high)] > high:
            return [(field, f"{label}不能晚于 {high} / {field} must not be after {high}")]
        if not_future:
            latest = _latest_allowed(now, ahead) if ahead else now
            if value[:19] > latest[: len(value[:19])]:
                return [(field, f"{label}不能晚于当前时间 / {field} must not be in the future")]
        return []

    return BuiltRule(check, reads=(field,), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("date_range", build)
