"""A record's history: what each version's write did to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from tzsb.store import records_read

#: The action of the write that made a version, as a history names it.
_ACTIONS: Final = {"01": "add", "02": "modify", "03": "delete", "reassign": "reassign"}


def version_actions(found: Sequence[records_read.RecordVersion]) -> list[str]:
    """For versions newest first, what made each one: ``add``, ``modify``, ``delete``, ``revive``,
    ``reassign`` (an operator's), or ``unknown`` (written before history was kept). An add (01) that
    replaced a deleted version brought the record back (``revive``); one that replaced a live
    version changed it (``modify``)."""
    named = []
    for index, version in enumerate(found):
        action = _ACTIONS.get(version.action or "", "unknown")
        older = found[index + 1] if index + 1 < len(found) else None
        if action == "add" and older is not None:
            action = "revive" if older.deleted else "modify"
        named.append(action)
    return named
