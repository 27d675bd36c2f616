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

audit_cli = typer.Typer(
    help="The interaction log: the newest entries, queries, exports; its hash chain verified, its head, archives."
)

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


#: Where `tzsb audit archive` writes, and `tzsb audit verify` reads, archive files by default.
ARCHIVE_FOLDER: Final = "audit-archive"


@audit_cli.command("verify")
def audit_verify(
    home: HomeOption,
    kept_head: Annotated[
        str | None, typer.Option("--head", help="A head kept elsewhere (SEQ:DIGEST from `tzsb audit head`) to check.")
    ] = None,
    archives: Annotated[
        Path | None, typer.Option(help="Folder of archive files (default: audit-archive in the node home).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute the log's hash chain through the archives and the live table; exit 1 naming the
    first entry that was edited, deleted or reordered."""
    from tzsb.audit import ChainHead, verify

    kept = None
    if kept_head is not None:
        kept = ChainHead.parse(kept_head)
        if kept is None:
            raise fail(f"--head {kept_head!r}: give SEQ:DIGEST as `tzsb audit head` prints it")
    with node_session(home) as node:
        report = verify(node.store, archives or node.settings.home / ARCHIVE_FOLDER, kept)
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        console.print(
            f"chain intact: {report.entries} live entr{'y' if report.entries == 1 else 'ies'}, "
            f"{report.archived_entries} archived in {report.archive_files} file(s); head {report.head.text()}"
        )
    else:
        assert report.problem is not None
        where = f" ({report.problem.where})" if report.problem.where else ""
        console.print(f"[red]chain broken[/red] at entry {report.problem.seq}{where}: {report.problem.message}")
    if not report.ok:
        raise typer.Exit(code=1)


@audit_cli.command("head")
def audit_head(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The chain's head (last entry's number and digest): keep it elsewhere, check it with verify --head."""
    from tzsb.audit import head

    with node_session(home) as node:
        current = head(node.store)
    if as_json:
        print_json({"seq": current.seq, "digest": current.digest, "algorithm": "SM3", "head": current.text()})
    else:
        sys.stdout.write(current.text() + "\n")


@audit_cli.command("archive")
def audit_archive(
    home: HomeOption,
    before: Annotated[str, typer.Option(help="Archive the entries before this day, YYYY-MM-DD (Beijing time).")],
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Folder of archive files (default: audit-archive in the node home).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move the entries before a day to compressed daily files with their chain heads, and remove them
    from the database; `tzsb audit verify` reads the files and the live table as one chain."""
    from tzsb.audit import ArchiveError, archive, at_bound

    bound = at_bound(before, False)
    if bound is None or len(before) != 10:
        raise fail(f"--before {before!r}: give a day as YYYY-MM-DD")
    with node_session(home) as node:
        target = folder or node.settings.home / ARCHIVE_FOLDER
        try:
            written = archive(node.store, bound, target)
        except ArchiveError as exc:
            raise fail(f"{exc}; nothing was removed (run `tzsb audit verify`)") from None
    if as_json:
        print_json([
            {"file": str(item.path), "first_seq": item.first_seq, "last_seq": item.last_seq, "entries": item.entries}
            for item in written
        ])  # fmt: skip
        return
    if not written:
        console.print(f"no entries before {before} to archive")
    for item in written:
        console.print(f"{item.path}: entries {item.first_seq}–{item.last_seq} ({item.entries})")
