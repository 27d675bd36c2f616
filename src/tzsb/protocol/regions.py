"""Administrative-division codes (GB/T 2260) as scopes: ``330100`` covers every ``3301xx``."""

from __future__ import annotations

import re
from typing import Final

#: GB/T 2260 gives the nation no code; ``100000`` is the convention for the national level.
NATIONAL: Final = "100000"
_REGION_CODE: Final = re.compile(r"[0-9]{6}")


def is_region_code(code: str) -> bool:
    return bool(_REGION_CODE.fullmatch(code))


def region_prefix(code: str) -> str:
    """The prefix every code inside ``code`` starts with: 330000 → 33, 330100 → 3301, 330106 → 330106."""
    if code == NATIONAL:
        return ""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def covers(scope: str, code: str) -> bool:
    """Whether region ``scope`` contains region ``code`` (a county, city or province code)."""
    return region_prefix(code).startswith(region_prefix(scope))
