"""`tzsb user …`: console accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from tzsb.cli.common import HomeOption, console, fail, node_session, print_json
from tzsb.registry import AccountStore

users_cli = typer.Typer(help="Console accounts: create, list, disable, change passwords.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
def user_create(
    home: HomeOption,
    username: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="admin, operator, data_entry or auditor.")],
    region: Annotated[str, typer.Option(help="Region the account may see and change.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a console account (password hashed with scrypt)."""
    from tzsb.registry import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise fail("--role must be one of admin, operator, data_entry, auditor") from None
    password = _read_password(password_stdin)
    with node_session(home) as node:
        store = AccountStore(node.store, node.clock)
        store.create(username, password, chosen, region)
    console.print(f"account {username} ({chosen.value}, {region}) created")


@users_cli.command("list")
def user_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List console accounts (never their password hashes)."""
    with node_session(home) as node:
        store = AccountStore(node.store, node.clock)
        rows = [
            {"username": a.username, "role": a.role.value, "region": a.region, "enabled": a.enabled}
            for a in store.list()
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("username", "role", "region", "enabled")
    for row in rows:
        table.add_row(str(row["username"]), str(row["role"]), str(row["region"]), "yes" if row["enabled"] else "no")
    console.print(table)


@users_cli.command("disable")
def user_disable(home: HomeOption, username: str) -> None:
    """Refuse every further login of the account."""
    with node_session(home) as node:
        store = AccountStore(node.store, node.clock)
        store.set_enabled(username, False)
    console.print(f"account {username} disabled")


@users_cli.command("passwd")
def user_passwd(
    home: HomeOption,
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a new password."""
    password = _read_password(password_stdin)
    with node_session(home) as node:
        store = AccountStore(node.store, node.clock)
        store.set_password(username, password)
    console.print(f"password of {username} changed")
