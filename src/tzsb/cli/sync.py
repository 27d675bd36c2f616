"""`tzsb link …` and `tzsb sync …`: links to the parent node, and passes over them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tzsb.cli.common import HomeOption, console, fail, node_session, print_json
from tzsb.errors import ConfigurationError
from tzsb.protocol import SignAlgorithm

links_cli = typer.Typer(help="Links to the parent node: where to send this node's changes, or pull from.")
sync_cli = typer.Typer(help="Sync over the links: a pass now, a full re-send, status, retry after failures.")


@links_cli.command("add")
def link_add(
    home: HomeOption,
    name: Annotated[str, typer.Argument(help="The link's name, e.g. up or down.")],
    url: Annotated[str, typer.Option(help="The parent's interface, e.g. https://city.example/tzsb/exchange.")],
    appid: Annotated[str, typer.Option(help="The app the parent issued to this node.")],
    direction: Annotated[str, typer.Option(help="up: send this node's changes; down: pull the parent's.")],
    business: Annotated[list[str], typer.Option(help="Business type that flows (repeat), e.g. 0101.")],
    secret: Annotated[
        str,
        typer.Option(
            envvar="TZSB_LINK_SECRET",
            prompt="The app's secret (input hidden)",
            hide_input=True,
            help="The app's secret (or TZSB_LINK_SECRET; asked for when not given). Sealed, never shown again.",
            show_default=False,
        ),
    ],
    sign: Annotated[SignAlgorithm, typer.Option(help="Sign algorithm the parent set for the app.")] = SignAlgorithm.MD5,
    purpose: Annotated[
        str | None, typer.Option(help="Purpose code (table 6); default from the levels (14, or 12/13 for a province).")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Schedule: 30s, 10m, 6h, 1d, 2d … (default 5.4: 1d; 2d for a province).")
    ] = None,
    max_records: Annotated[int, typer.Option(help="Most records per request (7.3).")] = 1000,
    max_bytes: Annotated[int | None, typer.Option(help="Largest request body in bytes (7.3).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the parent's answer.")] = 60.0,
    ca_file: Annotated[
        Path | None, typer.Option(help="PEM CA bundle to trust for the parent's certificate (https).")
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option(help="This node's client certificate (PEM), for a parent that demands one.")
    ] = None,
    client_key: Annotated[Path | None, typer.Option(help="The client certificate's private key (PEM).")] = None,
    timestamp: Annotated[
        bool, typer.Option("--timestamp", help="Send the signed timestamp parameter (a parent app may demand it).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a link to the parent; the matrix of tables 1–4 must allow each business type that way."""
    from tzsb.sync import LinkSpec, parse_every

    try:
        every_seconds = parse_every(every) if every is not None else None
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    spec = LinkSpec(
        name=name,
        url=url,
        appid=appid,
        secret=secret,
        direction=direction,
        businesses=tuple(business),
        sign_algorithm=sign,
        purpose=purpose,
        every_seconds=every_seconds,
        max_records=max_records,
        max_bytes=max_bytes,
        timeout_seconds=timeout,
        ca_file=None if ca_file is None else str(ca_file),
        client_cert=None if client_cert is None else str(client_cert),
        client_key=None if client_key is None else str(client_key),
        send_timestamp=timestamp,
    )
    with node_session(home) as node:
        link = node.links.add(spec)
    if as_json:
        print_json(link.describe())
        return
    console.print(
        f"link {link.name} added: {link.direction} {', '.join(link.businesses)} to {link.url} as {link.appid} "
        f"(purpose {link.purpose}, every {link.describe()['every']})"
    )


@links_cli.command("list")
def link_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the links of this node."""
    with node_session(home) as node:
        described = [link.describe() for link in node.links.list()]
    if as_json:
        print_json(described)
        return
    table = Table("name", "direction", "business", "url", "appid", "every", "enabled", "state")
    for item in described:
        table.add_row(
            item["name"],
            item["direction"],
            " ".join(item["businesses"]),
            item["url"],
            item["appid"],
            item["every"],
            "yes" if item["enabled"] else "no",
            item["state"],
        )
    console.print(table)


@links_cli.command("show")
def link_show(home: HomeOption, name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one link (never its secret)."""
    with node_session(home) as node:
        described = node.links.require(name).describe()
    if as_json:
        print_json(described)
        return
    for key, value in described.items():
        console.print(f"{key}: {value}")


@links_cli.command("disable")
def link_disable(home: HomeOption, name: str) -> None:
    """Stop scheduling the link (``tzsb sync run --link`` still runs it)."""
    with node_session(home) as node:
        node.links.set_enabled(name, False)
    console.print(f"link {name} disabled")


@links_cli.command("enable")
def link_enable(home: HomeOption, name: str) -> None:
    """Schedule the link again."""
    with node_session(home) as node:
        node.links.set_enabled(name, True)
    console.print(f"link {name} enabled")


@links_cli.command("remove")
def link_remove(home: HomeOption, name: str) -> None:
    """Remove the link, its positions and its parked records."""
    with node_session(home) as node:
        node.links.remove(name)
    console.print(f"link {name} removed")


@contextmanager
def _progress(show: bool) -> Iterator[Any]:
    """A progress callback: rich bars in a terminal, a plain line per page otherwise."""
    if not show:
        yield None
        return
    if not sys.stderr.isatty():

        def plain(link: str, business: str, done: int, total: int | None) -> None:
            of = f"/{total}" if total is not None else ""
            print(f"{link} {business}: {done}{of}", file=sys.stderr, flush=True)

        yield plain
        return
    tasks: dict[tuple[str, str], TaskID] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bars:

        def update(link: str, business: str, done: int, total: int | None) -> None:
            task = tasks.get((link, business))
            if task is None:
                task = tasks[(link, business)] = bars.add_task(f"{link} {business}", total=total)
            bars.update(task, completed=done, total=total)

        yield update


def _print_reports(reports: list[Any], as_json: bool) -> None:
    if as_json:
        print_json([report.as_dict() for report in reports])
        return
    for report in reports:
        line = (
            f"{report.link} ({report.direction}): {report.state}, {report.records} record(s)"
            f"{f' ({report.deleted} deleted)' if report.deleted else ''}, {report.parked} parked, "
            f"{report.batches} request(s)"
        )
        console.print(line + (f" — {report.error}" if report.error else ""), markup=False)


def _exit_code(reports: list[Any]) -> int:
    return 1 if any(report.state in ("failed", "busy") for report in reports) else 0


@sync_cli.command("run")
def sync_run(
    home: HomeOption,
    link: Annotated[str | None, typer.Option(help="Only this link (default: every enabled link).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each link's counts and state as JSON.")] = False,
) -> None:
    """One pass now; exits 1 if a link failed or another process was running it."""
    with node_session(home) as node, _progress(not as_json) as progress:
        reports = node.sync.run(link, progress=progress)
    _print_reports(reports, as_json)
    raise typer.Exit(_exit_code(reports))


@sync_cli.command("full")
def sync_full(
    home: HomeOption,
    link: Annotated[str, typer.Option(help="The link whose business types are all sent (or pulled) again.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send (or pull) everything the link carries again, from the start (全量)."""
    with node_session(home) as node, _progress(not as_json) as progress:
        report = node.sync.full(link, progress=progress)
    _print_reports([report], as_json)
    raise typer.Exit(_exit_code([report]))


@sync_cli.command("status")
def sync_status(
    home: HomeOption,
    parked: Annotated[bool, typer.Option(help="Also list each link's parked records with the reasons.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per link: state, last success, lag (changes and seconds), parked records, last error."""
    with node_session(home) as node:
        statuses = node.sync.status()
        parked_records = {status.link.name: node.sync.parked(status.link.name) for status in statuses} if parked else {}
    if as_json:
        document = []
        for status in statuses:
            item = status.as_dict()
            if parked:
                item["parked_records"] = [
                    {
                        "business": p.business,
                        "key": p.key,
                        "code": p.code,
                        "message": p.message,
                        "parked_at": p.parked_at,
                    }
                    for p in parked_records[status.link.name]
                ]
            document.append(item)
        print_json(document)
        return
    table = Table("link", "dir", "state", "last success", "lag (changes)", "lag (s)", "parked", "last error")
    for status in statuses:
        table.add_row(
            status.link.name,
            status.link.direction,
            status.link.state + ("" if status.link.enabled else " (disabled)"),
            status.link.last_success_at or "never",
            "—" if status.lag_changes is None else str(status.lag_changes),
            "—" if status.lag_seconds is None else f"{status.lag_seconds:.0f}",
            str(status.parked),
            status.link.last_error or "",
        )
    console.print(table)
    for name, items in parked_records.items():
        for item in items:
            console.print(f"{name} parked {item.business} {item.key}: {item.code} {item.message}", markup=False)


@sync_cli.command("retry")
def sync_retry(home: HomeOption, link: Annotated[str, typer.Option(help="The failed link.")]) -> None:
    """End a failed link's wait now: the next pass (or `tzsb sync run`) tries it again."""
    with node_session(home) as node:
        node.sync.retry(link)
    console.print(f"link {link}: wait ended; it runs at the next pass (or now: tzsb sync run --link {link})")
