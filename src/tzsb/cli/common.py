"""What every `tzsb` command shares: consoles, the home option, opening a node, failing clearly."""

from __future__ import annotations

import logging
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final

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


logger = logging.getLogger("tzsb.cli")

#: Files of a node home that hold secrets or personal data.
PRIVATE_FILES: Final = ("tzsb.toml", "master.key", "tzsb.db", "tzsb.db-wal", "tzsb.db-shm")


def create_home(home: Path) -> None:
    """Create a node home readable by its owner only (0700): it holds the master key, the database
    password and, on SQLite, every record. An existing folder is tightened to 0700 too."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)


def exposed_paths(home: Path) -> list[Path]:
    """The node's home and private files that other local accounts can read or enter."""
    paths = [home, *(home / name for name in PRIVATE_FILES)]
    return [path for path in paths if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077]


def warn_exposed(home: Path) -> None:
    """Log a warning, with the command that fixes it, for each private path others can read."""
    for path in exposed_paths(home):
        mode = stat.S_IMODE(path.stat().st_mode)
        fix = "700" if path.is_dir() else "600"
        logger.warning(
            "%s is readable by other local accounts (mode %o); it holds secrets or personal data: chmod %s %s",
            path,
            mode,
            fix,
            path,
        )


def redact(text: str, *secrets: str) -> str:
    """``text`` with every non-empty ``secrets`` value, and any URL password (as written and
    percent-decoded, as a driver sees it), replaced by asterisks."""
    from urllib.parse import unquote, urlsplit

    for secret in secrets:
        if not secret:
            continue
        try:
            password = urlsplit(secret).password
        except ValueError:
            password = None
        # The longest first, so a password inside the URL is not left half-masked.
        for value in sorted({secret, password or "", unquote(password or "")}, key=len, reverse=True):
            if value:
                text = text.replace(value, "**********")
    return text


#: Packages whose exceptions mean the database could not be reached or opened (named, not imported:
#: only the store imports the database libraries).
_DATABASE_MODULES: Final = frozenset({"sqlalchemy", "psycopg", "sqlite3"})


def open_node(home: Path) -> Any:
    """The node in ``home``; a missing or broken home fails with what to do (usually `tzsb init`)."""
    from tzsb.app import build_node

    try:
        settings = load_settings(home)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    try:
        return build_node(settings)
    except ConfigurationError as exc:
        raise fail(redact(str(exc), settings.database_url)) from None
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] not in _DATABASE_MODULES:
            raise
        # A database server that is down or refuses the login: a message with what to check rather than
        # a traceback (whose frames hold the URL, password included). A driver's text may quote the URL.
        where = "database_url (tzsb.toml or TZSB_DATABASE_URL)" if settings.database_url else settings.database
        raise fail(
            f"cannot open the node's database ({type(exc).__name__}): {redact(str(exc), settings.database_url)}; "
            f"check {where} and that the database is reachable"
        ) from None


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
