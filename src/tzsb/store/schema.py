"""Tables of a node. Changes to them go through an Alembic migration in ``migrations/versions``.

Defines every table; reading and writing each is owned by its table-family module (``records_read``,
``records_written``, ``masked_copies``, ``nonces``, ``apps``, ``accounts``, ``lockouts``, ``rate_windows``,
``interaction_log``, ``key_collisions``, ``refusal_tallies``, ``links``, ``leases``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

#: Byte-wise ordering on PostgreSQL, so that keyset pages and region ranges sort as on SQLite.
CodeText = sa.String().with_variant(sa.String(collation="C"), "postgresql")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

records = sa.Table(
    "records",
    metadata,
    sa.Column("business", sa.String(4), primary_key=True),
    sa.Column("record_key", CodeText, primary_key=True),
    sa.Column("region", CodeText, nullable=False),
    # The business timestamp (e.g. UPDATE_TIME), compared to decide whether an add is newer.
    sa.Column("updated_at", sa.String(19), nullable=False),
    sa.Column("data", JsonDocument, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("deleted_at", sa.String(19)),
    sa.Column("deleted_by", sa.String(64)),
    # 一数一源: the app that first supplied the record; others need an override grant.
    sa.Column("source_appid", sa.String(64), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.String(19), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Index("ix_records_region", "business", "region", "record_key"),
    sa.Index("ix_records_seq", "business", "seq"),
)

#: Versions of records that a later change replaced, as they were (the current version is the
#: ``records`` row): a record's history, newest first by ``seq``.
record_versions = sa.Table(
    "record_versions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("business", sa.String(4), nullable=False),
    sa.Column("record_key", CodeText, nullable=False),
    sa.Column("region", CodeText, nullable=False),
    sa.Column("updated_at", sa.String(19), nullable=False),
    sa.Column("data", JsonDocument, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("deleted_at", sa.String(19)),
    sa.Column("deleted_by", sa.String(64)),
    sa.Column("source_appid", sa.String(64), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.String(19), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Index("ix_record_versions_key", "business", "record_key", "seq"),
)

#: The text a masked answer shows of a record, kept by the first masked page that read it
#: (``masked_copies``): served for the version it was made from (``seq``) under the masking it was
#: made with (``plan``) only.
masked_copies = sa.Table(
    "masked_copies",
    metadata,
    sa.Column("business", sa.String(4), primary_key=True),
    sa.Column("record_key", CodeText, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("plan", sa.String(16), nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    # Clustered on its key on SQLite: a page's copies are found in one probe each, not two.
    sqlite_with_rowid=False,
)

#: One row per write (a request's batch, a pulled page, an operator's change): the change sequences
#: it handed out, who made it, through which request (``random``; the interaction log finds the
#: entry by appid and random) and with which action. A version's provenance is the row whose range
#: holds its ``seq``; a batch of 1,000 records costs one row here, not 1,000.
record_changes = sa.Table(
    "record_changes",
    metadata,
    sa.Column("first_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("appid", sa.String(64), nullable=False),
    # The request's action ("01", "02", "03") or "reassign" (an operator's change).
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("random", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

#: One row. Writers take its lock first, so change sequences are handed out in commit order.
change_counter = sa.Table(
    "change_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("secret_enc", sa.LargeBinary, nullable=False),
    sa.Column("previous_secret_enc", sa.LargeBinary),
    sa.Column("previous_valid_until", sa.String(32)),
    sa.Column("sign_algorithm", sa.String(16), nullable=False),
    sa.Column("busicodes", sa.JSON, nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("overrides", sa.JSON, nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("max_records", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("max_bytes", sa.Integer),
    sa.Column("rate_per_minute", sa.Integer, nullable=False),
    sa.Column("ip_allow", sa.JSON, nullable=False),
    sa.Column("unmasked", sa.JSON, nullable=False),
    sa.Column("require_timestamp", sa.Boolean, nullable=False),
    sa.Column("cert_fingerprints", sa.JSON, nullable=False),
    # May read every interaction-log entry within its region through the log interface (6.3.1 d),
    # not only its own.
    sa.Column("log_auditor", sa.Boolean, nullable=False, server_default=sa.false()),
    # How often (seconds) this app must report data (5.4); NULL: as its level says (county and city
    # daily, province every two days), and not at all for other callers.
    sa.Column("report_every_seconds", sa.Integer),
)

#: Failed signature checks per (app, client address): three within the window lock the pair out (7.4).
auth_failures = sa.Table(
    "auth_failures",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("client_addr", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("first_failed_at", sa.String(32), nullable=False),
    sa.Column("last_failed_at", sa.String(32), nullable=False),
    sa.Column("locked_until", sa.String(32)),
)

#: Console accounts (7.1.2): scrypt password hashes, roles, region scope, lock-out.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.String(32)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("password_changed_at", sa.String(32), nullable=False),
    # Raised at each sign-out: a session token validates only under the generation it was issued in.
    sa.Column("session_generation", sa.Integer, nullable=False, server_default="0"),
)

#: Requests per app and minute when several server workers share the limit (one worker counts in memory).
rate_windows = sa.Table(
    "rate_windows",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

#: ``random`` values claimed per app: the idempotency key and the replay guard.
nonces = sa.Table(
    "nonces",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("random", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # The first answer, returned verbatim when the same request comes again; NULL once expired
    # (the claim stays: the random remains spent).
    sa.Column("response", sa.LargeBinary),
    sa.Column("created_at", sa.String(32), nullable=False),
    # The kept answer's size, held under a per-app quota.
    sa.Column("response_bytes", sa.Integer, nullable=False, server_default="0"),
    # Covers the sizes and randoms: an app's kept answers are summed, and its oldest chosen, from the
    # index alone (``nonces.over_quota``; the row holds the answer before its size).
    sa.Index(
        "ix_nonces_kept_answer_sizes",
        "appid",
        "created_at",
        "random",
        "response_bytes",
        sqlite_where=sa.text("response_bytes > 0"),
        postgresql_where=sa.text("response_bytes > 0"),
    ),
)

#: Adds that named a key held by a record the caller may not access (another region, or another
#: source for an app that sees the business type masked): for the operator, and for the lock-out.
key_collisions = sa.Table(
    "key_collisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("appid", sa.String(64), nullable=False),
    sa.Column("client_addr", sa.String(64), nullable=False),
    sa.Column("business", sa.String(4), nullable=False),
    sa.Column("record_key", sa.String(), nullable=False),
    sa.Column("held_region", sa.String(6), nullable=False),
    sa.Column("held_source", sa.String(64), nullable=False),
    # Counts toward the app's lock-out: the key is a sensitive value (an ID number) the app could not
    # otherwise learn. A device code is not: its collisions are kept for the operator only.
    sa.Column("counts", sa.Boolean, nullable=False),
    # Seen by the operator (``tzsb app unlock``): no longer counted.
    sa.Column("acknowledged", sa.Boolean, nullable=False),
    sa.Index("ix_key_collisions_appid_at", "appid", "at"),
)

#: Refusals of callers that never proved who they are, counted per client address and minute
#: instead of a log row each (a stranger must not be able to grow the database).
refusal_tallies = sa.Table(
    "refusal_tallies",
    metadata,
    sa.Column("client_addr", sa.String(64), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("last_code", sa.String(16), nullable=False),
)

interaction_log = sa.Table(
    "interaction_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("appid", sa.String(64), nullable=False),
    sa.Column("busicode", sa.String(6), nullable=False),
    sa.Column("action", sa.String(2), nullable=False),
    sa.Column("random", sa.String(64), nullable=False),
    sa.Column("client_addr", sa.String(64), nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("result", sa.String(4), nullable=False),
    sa.Column("code", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # "in": a request this node answered; "out": a batch this node sent over a sync link.
    sa.Column("direction", sa.String(3), nullable=False, server_default="in"),
    # The region of the app (or link) the entry is about, when known: what an auditor app's scope
    # is judged by.
    sa.Column("region", CodeText, nullable=False, server_default=""),
    # The hash chain (tamper evidence): entries numbered 1, 2, … in the one order they were
    # appended, across every worker and host, each ``digest`` covering the previous entry's digest
    # and this entry's fields (``log_chain.digest_of``).
    sa.Column("chain_seq", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    # The legs of one routed request (the requester's, and the one sent to the provider) share it;
    # "" for an entry that is one leg only.
    sa.Column("correlation", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("chain_seq", name="uq_interaction_log_chain_seq"),
    sa.Index("ix_interaction_log_appid_at", "appid", "at"),
    sa.Index("ix_interaction_log_region_id", "region", "id"),
    sa.Index("ix_interaction_log_at", "at"),
    sa.Index("ix_interaction_log_correlation", "correlation"),
)

#: One row: the interaction log's chain head (the last entry appended) and, once entries were
#: archived, the last archived entry (the live table's chain starts after it). Appending takes its
#: lock, so entries of several workers and hosts are chained in one order.
log_chain = sa.Table(
    "log_chain",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("head_seq", sa.BigInteger, nullable=False),
    sa.Column("head_digest", sa.String(64), nullable=False),
    sa.Column("archived_seq", sa.BigInteger, nullable=False),
    sa.Column("archived_digest", sa.String(64), nullable=False),
)

#: A record's move out of a region (its region field changed): a change feed scoped to the region
#: it left delivers the move as a tombstone, which the record's own row (now elsewhere) cannot.
region_departures = sa.Table(
    "region_departures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("business", sa.String(4), nullable=False),
    sa.Column("record_key", CodeText, nullable=False),
    sa.Column("old_region", CodeText, nullable=False),
    sa.Column("new_region", CodeText, nullable=False),
    # The change sequence of the move (the record's ``seq`` when it moved).
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("at", sa.String(19), nullable=False),
    sa.Index("ix_region_departures_seq", "business", "seq"),
)

#: Sync links to the parent node (spec 5.4, 6.1 f, 7.3, 7.4): where to send or pull, as whom, what.
links = sa.Table(
    "links",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("appid", sa.String(64), nullable=False),
    sa.Column("secret_enc", sa.LargeBinary, nullable=False),
    sa.Column("sign_algorithm", sa.String(16), nullable=False),
    # "up": this node's changes are sent to the parent; "down": the parent's are pulled here.
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("businesses", sa.JSON, nullable=False),
    sa.Column("purpose", sa.String(2), nullable=False),
    sa.Column("every_seconds", sa.Integer, nullable=False),
    sa.Column("max_records", sa.Integer, nullable=False),
    sa.Column("max_bytes", sa.Integer),
    sa.Column("timeout_seconds", sa.Float, nullable=False),
    # TLS towards the parent: a CA bundle to trust instead of the system's, and this node's client
    # certificate and key (PEM paths) for a parent that binds its app to a certificate (7.1.1, 7.2).
    sa.Column("ca_file", sa.Text),
    sa.Column("client_cert", sa.Text),
    sa.Column("client_key", sa.Text),
    # Send the optional signed ``timestamp`` (a parent app may demand it).
    sa.Column("send_timestamp", sa.Boolean, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # Random per link (and per full upload): part of every batch's derived ``random``, so that a
    # re-created link or a new full upload never collides with a claim the parent already holds.
    sa.Column("uid", sa.String(32), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    # "idle" (never run), "ok", "retrying", "failed" (7.4: waits until ``wait_until``).
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("wait_until", sa.String(32)),
    sa.Column("last_attempt_at", sa.String(32)),
    sa.Column("last_success_at", sa.String(32)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: Per link and business type: the change sequence the parent acknowledged (up), or the parent's
#: ``next_since`` token applied here (down).
link_positions = sa.Table(
    "link_positions",
    metadata,
    sa.Column("link", sa.String(64), primary_key=True),
    sa.Column("business", sa.String(4), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("since_token", sa.Text),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: Records the other side refused on a link, with its reason; sent again when they change.
parked_records = sa.Table(
    "parked_records",
    metadata,
    sa.Column("link", sa.String(64), primary_key=True),
    sa.Column("business", sa.String(4), primary_key=True),
    sa.Column("record_key", CodeText, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("code", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("parked_at", sa.String(32), nullable=False),
)

#: Providers this node routes requests to (5.2.2): a business type's actions served by another node,
#: asked as ``appid`` with the sealed secret; the circuit breaker's last state, for ``tzsb service show``.
services = sa.Table(
    "services",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("businesses", sa.JSON, nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("appid", sa.String(64), nullable=False),
    sa.Column("secret_enc", sa.LargeBinary, nullable=False),
    sa.Column("sign_algorithm", sa.String(16), nullable=False),
    # The purpose the provider is asked with, in place of the requester's; NULL: the requester's.
    sa.Column("upstream_purpose", sa.String(2)),
    sa.Column("timeout_seconds", sa.Float, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # "closed" (asking), "open" (not asking until it is probed again), "half-open" (one probe).
    sa.Column("breaker_state", sa.String(16), nullable=False),
    sa.Column("breaker_changed_at", sa.String(32)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: The console's file imports: progress and the report by row and field (``import_jobs`` module).
import_jobs = sa.Table(
    "import_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(128), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("business", sa.String(4), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("checked", sa.Integer, nullable=False),
    sa.Column("imported", sa.Integer, nullable=False),
    sa.Column("error_rows", sa.Integer, nullable=False),
    sa.Column("warning_rows", sa.Integer, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("ix_import_jobs_created_at", "created_at"),
)

#: Leases held by one process among several sharing the database (the sync schedule: exactly one
#: process runs a link at a time, and another takes over when the holder dies).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False),
    # Unix seconds: past it, any process may take the lease.
    sa.Column("expires_at", sa.Float, nullable=False),
)
