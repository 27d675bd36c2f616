"""Persistence through SQLAlchemy Core: SQLite (embedded default) or PostgreSQL, same code.

The only package that speaks SQL (an import-linter contract keeps it so). Packages above call
functions named for what they mean, in a module per table family:

- ``records_read``: reading ``records`` (by key, by query page, by change feed) and the last change;
- ``records_written``: writing ``records`` (keeping replaced versions and who changed what) and the
  ``change_counter`` that orders writes;
- ``masked_copies``: the masked text of records, kept by the masked pages that read them;
- ``nonces``: ``random`` claims and first answers;
- ``apps``: apps and their sealed secrets;
- ``accounts``: console accounts;
- ``lockouts``: failed signature checks (``auth_failures``);
- ``rate_windows``: requests per app and minute shared by workers;
- ``interaction_log``: one row per request; ``log_chain``: its hash chain's head and digests;
- ``key_collisions``: adds refused for naming a key the caller may not access;
- ``natural_keys``: which live records hold given natural-key values, and the indexes behind it;
- ``refusal_tallies``: refusals of unidentified callers, per address and minute;
- ``services``: providers requests are routed to;
- ``import_jobs``: the console's file imports, their progress and reports;
- ``links``: sync links, their positions and parked records; ``leases``: one process per link.

What differs between SQLite and PostgreSQL is held by one ``Dialect`` object per database
(``dialects``), reachable as ``Store.dialect``.
"""

from sqlalchemy.engine import Connection

from tzsb.store import (
    accounts,
    apps,
    import_jobs,
    interaction_log,
    key_collisions,
    leases,
    links,
    lockouts,
    log_chain,
    masked_copies,
    natural_keys,
    nonces,
    rate_windows,
    records_read,
    records_written,
    refusal_tallies,
    services,
)
from tzsb.store.dialects import Dialect, driver_sql
from tzsb.store.engine import Store, open_store
from tzsb.store.interaction_log import EntryQuery
from tzsb.store.records_read import RecordQuery, StoredRecord
from tzsb.store.records_written import NewRecords

__all__ = [
    "Connection",
    "Dialect",
    "EntryQuery",
    "NewRecords",
    "RecordQuery",
    "Store",
    "StoredRecord",
    "accounts",
    "apps",
    "driver_sql",
    "import_jobs",
    "interaction_log",
    "key_collisions",
    "leases",
    "links",
    "lockouts",
    "log_chain",
    "masked_copies",
    "natural_keys",
    "nonces",
    "open_store",
    "rate_windows",
    "records_read",
    "records_written",
    "refusal_tallies",
    "services",
]
