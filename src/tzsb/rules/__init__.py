"""Data-quality rules: one rule type per module, compiled into a validator per business type."""

from tzsb.rules.base import Violation
from tzsb.rules.validator import RecordValidator, compile_validator

__all__ = ["RecordValidator", "Violation", "compile_validator"]
