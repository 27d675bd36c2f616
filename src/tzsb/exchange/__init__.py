"""The request pipeline: admission, local execution, answers and the log.

``Exchange`` conducts a request through named steps; ``app.py`` builds every collaborator.
"""

from tzsb.exchange.admission import Admission
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.cursors import CursorCodec
from tzsb.exchange.local import LocalExecution
from tzsb.exchange.log_queries import LogQueries
from tzsb.exchange.masking import masker
from tzsb.exchange.operator import Reassigned, reassign_record, record_history
from tzsb.exchange.overlap import DigestPool
from tzsb.exchange.pipeline import Exchange
from tzsb.exchange.pulled import PulledWrites
from tzsb.exchange.query import is_id_or_mobile
from tzsb.exchange.readahead import ReadAhead
from tzsb.exchange.replays import ReplayBounds
from tzsb.exchange.routed import RoutedExecution, UpstreamFailure

__all__ = [
    "Admission",
    "Admitted",
    "Answers",
    "CursorCodec",
    "DigestPool",
    "Exchange",
    "LocalExecution",
    "LogQueries",
    "PulledWrites",
    "ReadAhead",
    "Reassigned",
    "ReplayBounds",
    "RequestContext",
    "RoutedExecution",
    "UpstreamFailure",
    "is_id_or_mobile",
    "masker",
    "reassign_record",
    "record_history",
]
