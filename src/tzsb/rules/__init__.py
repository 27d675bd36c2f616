"""Data-quality rules: one rule type per module, compiled into a validator per business type.

Other packages import from here only; the modules behind these names are private.
"""

from tzsb.rules.base import Severity, Violation
from tzsb.rules.contract import KeyLookup, NaturalKeyHolder, NaturalKeyLookup, RelatedLookup, RelatedRecord
from tzsb.rules.ruleset import RULES_FILE, CompiledRules, RuleBook, compile_rules, shipped_rule_sets
from tzsb.rules.shape import DUPLICATE_KEY, delete_faults, modify_faults
from tzsb.rules.validator import BatchReport, RecordValidator, compile_validator

__all__ = [
    "DUPLICATE_KEY",
    "RULES_FILE",
    "BatchReport",
    "CompiledRules",
    "KeyLookup",
    "NaturalKeyHolder",
    "NaturalKeyLookup",
    "RecordValidator",
    "RelatedLookup",
    "RelatedRecord",
    "RuleBook",
    "Severity",
    "Violation",
    "compile_rules",
    "compile_validator",
    "delete_faults",
    "modify_faults",
    "shipped_rule_sets",
]
