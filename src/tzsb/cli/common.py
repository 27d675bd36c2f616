"""What every `tzsb` command shares: consoles, the home option, opening a node, failing clearly."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from tzsb.errors import ConfigurationError
from tzsb.settings import load_settings

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

HomeOption = Annotated[
    Path, typer.Option("--home", envvar="TZSB_HOME", help="Node home folder (or TZSB_HOME).", show_default=False)
]


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit (code 1) for the caller to raise."""
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def open_node(home: Path) -> Any:
    """The node in ``home``; a missing or broken home fails with what to do (usually `tzsb init`)."""
    from tzsb.app import build_node

    try:
        return build_node(load_settings(home))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None


@contextmanager
def node_session(home: Path) -> Iterator[Any]:
    """The node in ``home`` for one command: configuration errors fail clearly, the store is closed."""
    node = open_node(home)
    try:
        yield node
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    finally:
        node.close()


def print_json(value: Any) -> None:
    """Indented JSON on standard output, non-ASCII kept readable."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")
