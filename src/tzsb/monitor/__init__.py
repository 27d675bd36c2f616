"""Monitoring of a node (6.3.3): metrics (``/metrics``), readiness (``/readyz``), who is late to
report (5.4), and alerts."""

from tzsb.monitor.alerts import Alert, AlertLoop, AlertWatcher, evaluate
from tzsb.monitor.metrics import NodeMetrics
from tzsb.monitor.readiness import Check, Readiness, ReadinessProbe
from tzsb.monitor.reporting import ReporterStatus, must_report, reporters

__all__ = [
    "Alert",
    "AlertLoop",
    "AlertWatcher",
    "Check",
    "NodeMetrics",
    "Readiness",
    "ReadinessProbe",
    "ReporterStatus",
    "evaluate",
    "must_report",
    "reporters",
]
