"""Persistence through SQLAlchemy Core: SQLite (embedded default) or PostgreSQL, same code."""

from tzsb.store.engine import Store, driver_sql, open_store

__all__ = ["Store", "driver_sql", "open_store"]
