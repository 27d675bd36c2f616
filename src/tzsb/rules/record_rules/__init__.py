"""Record rule types, one per module, each declaring ``RULE_TYPE`` (a :class:`RecordRuleType`).

The modules of this package are found when it is first imported: a new rule type is a new module
here (and its tests), with nothing to register elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import MappingProxyType
from typing import Final

from tzsb.rules.contract import RecordRuleType


def _discover() -> dict[str, RecordRuleType]:
    found: dict[str, RecordRuleType] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        rule_type = getattr(module, "RULE_TYPE", None)
        # A module that declares no rule type is a mistake, not a helper: fail at import, loudly.
        if not isinstance(rule_type, RecordRuleType):
            raise TypeError(f"{module.__name__} must declare RULE_TYPE = RecordRuleType(...)")
        if rule_type.id in found:
            raise TypeError(f"{module.__name__}: rule type id {rule_type.id!r} is declared twice")
        found[rule_type.id] = rule_type
    return found


#: Every record rule type by its id, as named by ``type`` in rule-set files.
RECORD_RULE_TYPES: Final = MappingProxyType(_discover())
