"""Who is late to report (5.4): county and city regulators report at least daily, a province at
least every two days.

Every app of a regulator level below this node's (its children, who upload to it) must deliver
data at that rate, or at the rate its operator set (``tzsb app create --report-every``). The node
knows when each last delivered data — its newest accepted 01, 02 or 03 in the interaction log —
and so when the next delivery is due and who is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from tzsb.app import Node
from tzsb.registry import App
from tzsb.store import interaction_log

#: 5.4: how often each level reports upward.
LEVEL_EVERY: Final = {"county": 86400, "city": 86400, "province": 2 * 86400}
_BELOW: Final = ("county", "city", "province", "national")


@dataclass(frozen=True, slots=True)
class ReporterStatus:
    appid: str
    level: str
    region: str
    every_seconds: int
    #: When it last delivered data (ISO 8601), or None if never.
    last_data: str | None
    #: When its next delivery is due: the last one plus its interval, or (never delivered) the
    #: app's creation plus its interval.
    due_at: str
    overdue: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "appid": self.appid,
            "level": self.level,
            "region": self.region,
            "every_seconds": self.every_seconds,
            "last_data": self.last_data,
            "due_at": self.due_at,
            "state": "overdue" if self.overdue else "on time",
        }


def must_report(app: App, node_level: str) -> int | None:
    """How often (seconds) ``app`` must deliver data to a node of ``node_level``, or None if it need not:
    enabled, granted a write, and a regulator below the node (or given an interval by its operator)."""
    if not app.enabled or not ({"01", "02", "03"} & app.actions):
        return None
    if app.report_every_seconds is not None:
        return app.report_every_seconds
    if app.level not in LEVEL_EVERY or node_level not in _BELOW:
        return None
    if _BELOW.index(app.level) >= _BELOW.index(node_level):
        return None
    return LEVEL_EVERY[app.level]


def reporters(node: Node) -> list[ReporterStatus]:
    """Every app that must report to this node, with its last data and whether it is overdue now."""
    now = node.clock.now()
    expected = [(app, every) for app in node.registry.list() if (every := must_report(app, node.settings.level))]
    with node.store.read() as connection:
        last = interaction_log.last_data(connection, [app.appid for app, _ in expected])
    found: list[ReporterStatus] = []
    for app, every in sorted(expected, key=lambda item: item[0].appid):
        since = datetime.fromisoformat(last.get(app.appid) or app.created_at)
        due_at = since + timedelta(seconds=every)
        found.append(
            ReporterStatus(
                appid=app.appid,
                level=app.level,
                region=app.region,
                every_seconds=every,
                last_data=last.get(app.appid),
                due_at=due_at.isoformat(timespec="seconds"),
                overdue=now > due_at,
            )
        )
    return found
