"""The connection to the SQLite file: pragmas, schema, transactions.

This is the only module that imports sqlite3 (message_queue/pg.py is PostgreSQL's). WAL
lets the API read while a worker writes; every write is an explicit `BEGIN IMMEDIATE`
because a deferred transaction that upgrades from read to write does not honour the busy
timeout and fails with "database is locked" at once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import DatabaseUnavailable

BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 6

# The tables, indexes and triggers, as one script every process runs at start (idempotent).
SCHEMA = (Path(__file__).with_name("schema.sql")).read_text(encoding="utf-8")


# Version 5 (careful sending) adds columns, so the indexes on them are made here, after the
# columns exist, and not by the schema script that an older file runs first.
_COLUMNS_5 = {
    "jobs": (
        "send_at REAL",
        "timezone TEXT",
        "daily_cap INTEGER",
        "hourly_cap INTEGER",
        "paused_reason TEXT",
        "judged_from REAL",
    ),
    "messages": ("zone TEXT NOT NULL DEFAULT ''",),
}
# Claiming walks the sendable jobs oldest first and, in each of a job's zones whose window is
# open, takes the first waiting row: one seek per (job, zone), never a sort or a scan.
_INDEXES_5 = (
    "CREATE INDEX IF NOT EXISTS messages_ready ON messages(job_id, zone, channel, id)"
    " WHERE status IN ('pending', 'retrying')",
)


def _add_column(conn, table: str, column: str) -> None:
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if column.split()[0] not in present:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _upgrade_to_5(conn) -> None:
    for table, columns in _COLUMNS_5.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    # The version-4 index had no zone; it is rebuilt under the same name with one.
    old = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_ready'").fetchone()
    if old is not None and "zone" not in old[0]:
        conn.execute("DROP INDEX messages_ready")
    for statement in _INDEXES_5:
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO job_zones SELECT DISTINCT job_id, zone FROM messages")


def open_database(target: str | Path):
    """The queue's database: PostgreSQL for a `postgresql://` URL, else the SQLite file."""
    from . import pg

    if pg.is_url(str(target)):
        return pg.PostgresDatabase(str(target))
    return Database(target)


class Database:
    """One connection per thread to one SQLite file, with the schema in place."""

    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()
        # One script, one transaction: processes starting together all see a whole schema.
        conn = self.connection()
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        self._upgrade(conn)

    @staticmethod
    def _upgrade(conn) -> None:
        """Bring a file made by an older version up to SCHEMA_VERSION, in one transaction."""
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
            if "resent_to" not in columns:  # version 1 -> 2
                conn.execute("ALTER TABLE messages ADD COLUMN resent_to TEXT")
            # Versions 3 and 4 only add tables and indexes, which the schema script above has
            # just created (CREATE ... IF NOT EXISTS): nothing to change in place.
            _upgrade_to_5(conn)
            _add_column(conn, "workers", "instance TEXT")  # version 6
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not Path(self.path).resolve().parent.is_dir():
            raise DatabaseUnavailable(f"folder of DATABASE_PATH {self.path!r} does not exist")
        if self.path != ":memory:":
            create_private(self.path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL keeps every committed transaction across a process crash;
            # only a power cut can lose the last ones.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(f"cannot open database {self.path!r}: {exc}") from exc
        return conn

    @contextmanager
    def write(self, exclusive: bool = True):
        """A write transaction taken up front (BEGIN IMMEDIATE), committed or rolled back.

        SQLite has one writer at a time: `exclusive` (False for claims) matters to PostgreSQL.
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def read(self):
        """A read transaction, so several SELECTs see one snapshot."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def notify(self, conn, channel: str = "") -> None:
        """Workers on this file poll it: nothing to wake (PostgreSQL's NOTIFY does)."""

    def wait_for_work(self, stop: threading.Event, timeout: float) -> None:
        stop.wait(timeout)

    def now(self) -> float:
        return time.time()

    def version(self) -> int:
        return self.connection().execute("PRAGMA user_version").fetchone()[0]

    def check(self) -> str:
        """`ok` when the file answers a query, else the error text."""
        try:
            self.connection().execute("SELECT count(*) FROM jobs").fetchone()
            return "ok"
        except (sqlite3.DatabaseError, DatabaseUnavailable) as exc:
            return str(exc)

    def integrity_check(self) -> str:
        """SQLite's own integrity check: `ok` when the file is sound."""
        return self.connection().execute("PRAGMA integrity_check").fetchone()[0]

    def backup_to(self, target: str | Path) -> None:
        """Copy the live database with SQLite's online backup API (safe while others write)."""
        create_private(str(target))
        dest = sqlite3.connect(str(target))
        try:
            self.connection().backup(dest)
        finally:
            dest.close()

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def create_private(path: str) -> None:
    """Create `path` readable by its owner only, unless it exists already.

    The queue holds every contact list and message: no other local user may read it. SQLite
    gives its -wal and -shm files the mode of the database file, so they are private too.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:  # it exists (keep its mode), or the folder is not ours: sqlite3 says so
        pass
