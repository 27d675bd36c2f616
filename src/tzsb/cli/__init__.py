"""The ``tzsb`` command."""

from tzsb.cli.main import main

__all__ = ["main"]
