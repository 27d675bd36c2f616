"""What a rule is: a check built once from a field's spec, then run on each value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: A compiled check: returns ``None`` when the value passes, else the (zh / en) message.
Check = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def is_blank(value: Any) -> bool:
    """Missing, null, or a string of only whitespace (full-width spaces included)."""
    return value is None or (isinstance(value, str) and not value.strip())
