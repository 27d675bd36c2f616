"""``tzsb record``: what an operator does to stored records outside the interface."""

from __future__ import annotations

from typing import Annotated

import typer

from tzsb.cli.common import HomeOption, console, fail, node_session, print_json
from tzsb.errors import OperatorError

records_cli = typer.Typer(help="Stored records: a record's history; hand a record to its rightful region.")


@records_cli.command("history")
def record_history(
    home: HomeOption,
    business: Annotated[str, typer.Argument(help="Business type (table 7), e.g. 0101.")],
    key: Annotated[str, typer.Argument(help="The record's primary key.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every version of a record, newest first: who changed it, when, how and through which request
    (``random``: `tzsb audit query` finds its log entry)."""
    from tzsb.exchange import record_history as versions_of

    with node_session(home) as node:
        try:
            found = versions_of(node.store, node.catalog, business, key)
        except OperatorError as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json([
            {
                "seq": version.seq, "at": version.changed_at, "action": action, "by": version.changed_by,
                "random": version.random, "region": version.region, "source": version.source_appid,
                "deleted": version.deleted, "data": version.data,
            }
            for version, action in found
        ])  # fmt: skip
        return
    from rich.table import Table

    table = Table("seq", "at", "action", "by", "random", "region", "deleted", title=f"{business} {key}")
    for version, action in found:
        table.add_row(
            str(version.seq), version.changed_at, action, version.changed_by, version.random or "", version.region,
            "yes" if version.deleted else "",
        )  # fmt: skip
    console.print(table)


@records_cli.command("reassign")
def record_reassign(
    home: HomeOption,
    business: Annotated[str, typer.Argument(help="Business type (table 7), e.g. 0103.")],
    key: Annotated[str, typer.Argument(help="The record's primary key.")],
    region: Annotated[str, typer.Option(help="The rightful region (6-digit GB/T 2260 code).")],
    source: Annotated[str | None, typer.Option(help="The app that becomes the record's source (一数一源).")] = None,
    operator: Annotated[str, typer.Option(help="Who does it (written to the interaction log).")] = "operator",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move a record to its rightful region (and source): logged, and carried by the change feed.

    For a key held by a record the rightful region's app cannot reach (see `tzsb app collisions`).
    """
    from tzsb.exchange import reassign_record

    with node_session(home) as node:
        try:
            done = reassign_record(
                node.store, node.catalog, node.clock, business, key, region, source=source, operator=operator
            )
        except OperatorError as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json({
            "business": done.business, "key": done.key, "region": done.region, "source": done.source,
            "region_before": done.region_before, "source_before": done.source_before, "seq": done.seq,
        })  # fmt: skip
        return
    console.print(
        f"{business} {key}: {done.region_before} ({done.source_before}) → {done.region} ({done.source}), "
        f"change {done.seq}"
    )
