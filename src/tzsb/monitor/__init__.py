"""Monitoring of a node (6.3.3): metrics (``/metrics``), readiness (``/readyz``), and who is late to
report (5.4)."""

from tzsb.monitor.metrics import NodeMetrics
from tzsb.monitor.readiness import Check, Readiness, ReadinessProbe
from tzsb.monitor.reporting import ReporterStatus, must_report, reporters

__all__ = ["Check", "NodeMetrics", "Readiness", "ReadinessProbe", "ReporterStatus", "must_report", "reporters"]
