"""Sync between nodes: links to the parent, the upward push and downward pull, and their schedule.

``LinkRegistry`` keeps the links (``tzsb link …``); ``SyncRunner`` runs passes (``tzsb sync …``);
``SyncScheduler`` runs due links inside ``tzsb serve``.
"""

from tzsb.sync.links import (
    DIRECTIONS,
    IDENTITY_PREFIX,
    Link,
    LinkRegistry,
    LinkSpec,
    default_every_seconds,
    default_purpose,
    describe_every,
    due,
    parent_of,
    parse_every,
)
from tzsb.sync.runner import FAULT_POINTS, FAULT_VARIABLE, LinkReport, LinkStatus, SyncRunner
from tzsb.sync.scheduler import SyncScheduler
from tzsb.sync.transport import Answer, LinkFailure, ParentSession, derived_random

__all__ = [
    "DIRECTIONS",
    "FAULT_POINTS",
    "FAULT_VARIABLE",
    "IDENTITY_PREFIX",
    "Answer",
    "Link",
    "LinkFailure",
    "LinkRegistry",
    "LinkReport",
    "LinkSpec",
    "LinkStatus",
    "ParentSession",
    "SyncRunner",
    "SyncScheduler",
    "default_every_seconds",
    "default_purpose",
    "derived_random",
    "describe_every",
    "due",
    "parent_of",
    "parse_every",
]
