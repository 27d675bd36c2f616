"""The console's file imports as they run: progress and the report by row and field, kept in the
database so that every worker process can show a job that another one runs.

Owns the ``import_jobs`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import import_jobs


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One row of ``import_jobs``."""

    id: str
    username: str
    #: The account's region: who else may look at the job.
    region: str
    business: str
    file_name: str
    #: "check" (report only), "clean" (import only if no row has an error), "valid_rows".
    mode: str
    #: "reading", "checking", "importing", "done", "refused" (errors; nothing imported), "failed".
    state: str
    total: int
    checked: int
    imported: int
    error_rows: int
    warning_rows: int
    #: ``[{"row", "field", "severity", "message"}]``, the first items only.
    report: list[dict[str, Any]]
    message: str
    created_at: str
    updated_at: str


#: The states of a job whose thread is at work.
RUNNING: Final = ("reading", "checking", "importing")


def add(connection: Connection, job: ImportJob) -> None:
    connection.execute(sa.insert(import_jobs).values(**asdict(job)))


def update(connection: Connection, job_id: str, **values: Any) -> None:
    connection.execute(sa.update(import_jobs).where(import_jobs.c.id == job_id).values(**values))


def find(connection: Connection, job_id: str) -> ImportJob | None:
    row = connection.execute(sa.select(import_jobs).where(import_jobs.c.id == job_id)).first()
    return None if row is None else ImportJob(**{**row._mapping, "report": list(row.report or [])})


def recent(connection: Connection, region_prefix: str, limit: int = 20, username: str | None = None) -> list[ImportJob]:
    """The latest jobs within ``region_prefix``; only ``username``'s when given."""
    statement = sa.select(import_jobs).order_by(import_jobs.c.created_at.desc()).limit(limit)
    if region_prefix:
        statement = statement.where(import_jobs.c.region.startswith(region_prefix, autoescape=True))
    if username is not None:
        statement = statement.where(import_jobs.c.username == username)
    return [ImportJob(**{**row._mapping, "report": list(row.report or [])}) for row in connection.execute(statement)]


def any_stalled(connection: Connection, updated_before: str) -> bool:
    """Whether a running job's progress last moved before ``updated_before``."""
    statement = sa.select(import_jobs.c.id).where(
        import_jobs.c.state.in_(RUNNING), import_jobs.c.updated_at < updated_before
    )
    return connection.execute(statement.limit(1)).first() is not None


def end_stalled(connection: Connection, updated_before: str, message: str, at: str) -> int:
    """Mark the jobs still running whose progress last moved before ``updated_before`` as failed with
    ``message`` (their thread ended with the process that ran it); how many."""
    result = connection.execute(
        sa.update(import_jobs)
        .where(import_jobs.c.state.in_(RUNNING), import_jobs.c.updated_at < updated_before)
        .values(state="failed", message=message, updated_at=at)
    )
    return int(result.rowcount or 0)
