"""Persistence through SQLAlchemy Core: SQLite (embedded default) or PostgreSQL, same code."""

from tzsb.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
