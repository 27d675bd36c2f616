"""`tzsb monitor …`: who is late to report (5.4)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tzsb.cli.common import HomeOption, console, node_session, print_json

monitor_cli = typer.Typer(help="Monitoring: who must report to this node, and who is overdue (5.4).")


@monitor_cli.command("status")
def monitor_status(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every app that must report here: its last data, when the next is due, on time or overdue.
    Exits 1 when one is overdue."""
    from tzsb.monitor import reporters
    from tzsb.sync import describe_every

    with node_session(home) as node:
        found = reporters(node)
    if as_json:
        print_json([item.as_dict() for item in found])
    else:
        table = Table("app", "level", "region", "every", "last data", "due", "state")
        for item in found:
            state = "[red]overdue[/red]" if item.overdue else "on time"
            table.add_row(
                item.appid, item.level, item.region, describe_every(item.every_seconds), item.last_data or "never",
                item.due_at, state,
            )  # fmt: skip
        console.print(table)
    raise typer.Exit(1 if any(item.overdue for item in found) else 0)
