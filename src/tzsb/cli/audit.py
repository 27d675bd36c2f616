"""`tzsb audit …`: read the interaction log (6.1 e) — the newest entries, a query, an export."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Final, TextIO

import orjson
import typer
from rich.table import Table

from tzsb.cli.common import HomeOption, console, fail, node_session, print_json

audit_cli = typer.Typer(help="The interaction log: the newest entries, queries, exports (CSV or JSON lines).")

#: The columns of an entry, in the order tables and exports show them.
COLUMNS: Final = (
    "id", "at", "direction", "appid", "busicode", "action", "random", "client_addr", "record_count", "result", "code",
    "duration_ms", "message",
)  # fmt: skip


def _query(appid: str | None, date_from: str | None, date_to: str | None, code: str | None, limit: int) -> Any:
    from tzsb.audit import at_bound
    from tzsb.store import EntryQuery

    bounds = []
    for option, value, end in (("--from", date_from, False), ("--to", date_to, True)):
        bound = None if value is None else at_bound(value, end)
        if value is not None and bound is None:
            raise fail(f"{option} {value!r}: give YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS' (Beijing time)")
        bounds.append(bound)
    return EntryQuery(appid=appid, code=code, at_from=bounds[0], at_to=bounds[1], limit=limit)


def _table(rows: list[dict[str, Any]]) -> None:
    table = Table("at", "dir", "appid", "busicode", "action", "records", "result", "code", "ms", "client")
    for row in rows:
        table.add_row(
            row["at"], row["direction"], row["appid"], row["busicode"], row["action"], str(row["record_count"]),
            row["result"], row["code"], f"{row['duration_ms']:.1f}", row["client_addr"],
        )  # fmt: skip
    console.print(table)


@audit_cli.command("tail")
def audit_tail(
    home: HomeOption,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest entries of the interaction log."""
    with node_session(home) as node:
        from tzsb.audit import InteractionLog

        rows = InteractionLog(node.store).entries(_query(None, None, None, None, limit))
    if as_json:
        print_json(rows)
    else:
        _table(rows)


@audit_cli.command("query")
def audit_query(
    home: HomeOption,
    appid: Annotated[str | None, typer.Option(help="Only this app's entries.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="From YYYY-MM-DD [HH:MM:SS] (Beijing time).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="To YYYY-MM-DD [HH:MM:SS], inclusive.")] = None,
    code: Annotated[str | None, typer.Option(help="Only entries with this result code, e.g. E_SIGN.")] = None,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Entries matching the conditions, newest first."""
    query = _query(appid, date_from, date_to, code, limit)
    with node_session(home) as node:
        from tzsb.audit import InteractionLog

        rows = InteractionLog(node.store).entries(query)
    if as_json:
        print_json(rows)
    else:
        _table(rows)


def _write(rows: Any, output: TextIO, format: str) -> int:
    count = 0
    if format == "csv":
        writer = csv.writer(output)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[name] for name in COLUMNS])
            count += 1
        return count
    for row in rows:
        output.write(orjson.dumps({name: row[name] for name in COLUMNS}).decode("utf-8") + "\n")
        count += 1
    return count


@audit_cli.command("export")
def audit_export(
    home: HomeOption,
    date_from: Annotated[str, typer.Option("--from", help="From YYYY-MM-DD [HH:MM:SS] (Beijing time).")],
    date_to: Annotated[str, typer.Option("--to", help="To YYYY-MM-DD [HH:MM:SS], inclusive.")],
    format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="File to write (default: standard output).")] = None,
    appid: Annotated[str | None, typer.Option(help="Only this app's entries.")] = None,
) -> None:
    """Every entry of a period, oldest first, as CSV or JSON lines (read a page at a time)."""
    if format not in ("csv", "jsonl"):
        raise fail(f"--format {format!r}: csv or jsonl")
    query = _query(appid, date_from, date_to, None, 1000)
    with node_session(home) as node:
        from tzsb.audit import InteractionLog

        rows = InteractionLog(node.store).walk(query)
        if out is None:
            count = _write(rows, sys.stdout, format)
        else:
            # The log names apps, addresses and what they did: the file is its owner's only, like the node's own.
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "w", encoding="utf-8", newline="") as output:
                count = _write(rows, output, format)
    if out is not None:
        console.print(f"{count} entr{'y' if count == 1 else 'ies'} written to {out}")
