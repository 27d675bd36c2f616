"""The interaction log (spec 6.1 e): one row per request, accepted or refused."""

from tzsb.audit.log import InteractionLog, LogEntry

__all__ = ["InteractionLog", "LogEntry"]
