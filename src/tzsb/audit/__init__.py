"""The interaction log (spec 6.1 e): one row per request of a known caller, accepted or refused;
refusals of unidentified callers added up per address and minute."""

from tzsb.audit.log import InteractionLog, LogEntry, at_bound
from tzsb.audit.tallies import RefusalTally

__all__ = ["InteractionLog", "LogEntry", "RefusalTally", "at_bound"]
