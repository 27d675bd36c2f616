"""The interaction log (spec 6.1 e): one row per request of a known caller, accepted or refused;
refusals of unidentified callers added up per address and minute; the entries' hash chain verified
and archived."""

from tzsb.audit.chain import (
    ArchiveError,
    ArchiveFile,
    ChainHead,
    ChainProblem,
    ChainReport,
    ChainWatch,
    archive,
    head,
    verify,
)
from tzsb.audit.log import WITHOUT_LOG_VARIABLE, InteractionLog, LogEntry, at_bound
from tzsb.audit.tallies import RefusalTally

__all__ = [
    "WITHOUT_LOG_VARIABLE",
    "ArchiveError",
    "ArchiveFile",
    "ChainHead",
    "ChainProblem",
    "ChainReport",
    "ChainWatch",
    "InteractionLog",
    "LogEntry",
    "RefusalTally",
    "archive",
    "at_bound",
    "head",
    "verify",
]
