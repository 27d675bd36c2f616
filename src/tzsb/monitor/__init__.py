"""Monitoring of a node (6.3.3): readiness (``/readyz``)."""

from tzsb.monitor.readiness import Check, Readiness, ReadinessProbe

__all__ = ["Check", "Readiness", "ReadinessProbe"]
