"""A borrowed PostgreSQL connection as the stores use it (sqlite3's `execute`), and which of
psycopg's errors mean the database is away (DatabaseUnavailable) rather than a bug."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg_pool import PoolTimeout

from .errors import DatabaseUnavailable
from .pg_sql import no_nul, row_factory, translate

if TYPE_CHECKING:
    from .pg import PostgresDatabase

# Errors that mean "the database cannot serve us now", by SQLSTATE class or code: connection
# (08), resources (53), shutdown and cancel (57), a deadlock or serialization failure (40),
# a read-only server (25006, a standby after a failover), an idle transaction ended (25P03).
UNAVAILABLE_CLASSES = ("08", "53", "57", "40")
UNAVAILABLE_CODES = ("25006", "25P03")


@contextmanager
def _unavailable():
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailable(f"PostgreSQL: {exc}".strip()) from exc
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        if (
            (not state and isinstance(exc, psycopg.OperationalError))
            or state[:2] in UNAVAILABLE_CLASSES
            or state in UNAVAILABLE_CODES
        ):
            raise DatabaseUnavailable(f"PostgreSQL: {exc}".strip()) from exc
        raise


class Connection:
    """One borrowed connection, with the sqlite3-like `execute` the stores call."""

    def __init__(self, conn: psycopg.Connection):
        self.raw = conn

    def execute(self, sql: str, params=()):
        cursor = self.raw.cursor(row_factory=row_factory)
        with _unavailable():
            cursor.execute(translate(sql), no_nul(params))
        return cursor

    def executemany(self, sql: str, rows):
        cursor = self.raw.cursor(row_factory=row_factory)
        with _unavailable():
            cursor.executemany(translate(sql), (no_nul(r) for r in rows))
        return cursor


class _Autocommit:
    """`db.connection()`: each statement on its own, on any connection of the pool."""

    def __init__(self, db: PostgresDatabase):
        self.db = db

    def execute(self, sql: str, params=()):
        with self.db._borrow() as conn:
            cursor = conn.execute(sql, params)
            # Read now: the connection goes back to the pool when this returns.
            rows = cursor.fetchall() if cursor.description else []
            return _Result(rows, cursor.rowcount)


class _Result:
    def __init__(self, rows: list, rowcount: int):
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list:
        return self._rows

    def __iter__(self):
        return iter(self._rows)
