"""The connection to the SQLite file: pragmas, schema, transactions.

This is the only module that imports sqlite3. WAL lets the API read while a worker writes;
every write is an explicit `BEGIN IMMEDIATE` because a deferred transaction that upgrades from
read to write does not honour the busy timeout and fails with "database is locked" at once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import DatabaseUnavailable

BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    template TEXT NOT NULL,
    attachment_path TEXT,
    attachment_name TEXT,
    total INTEGER NOT NULL,
    sms_parts INTEGER,
    last_error TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created_at);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    row INTEGER,
    phone TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_at REAL,
    sent_at REAL,
    provider_id TEXT,
    resent_to TEXT,  -- the job a person sent this row again in (failed, unknown, cancelled)
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_job ON messages(job_id, status);
-- Claiming walks the active jobs oldest first and takes the first waiting row of each.
CREATE INDEX IF NOT EXISTS messages_ready ON messages(job_id, channel, id)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX IF NOT EXISTS messages_in_flight ON messages(channel, claimed_by)
    WHERE status = 'sending';
-- SMS awaiting a delivery report: polled while the worker is idle, so never a table scan.
CREATE INDEX IF NOT EXISTS messages_awaiting_delivery ON messages(channel, id)
    WHERE status = 'sent' AND provider_id IS NOT NULL;

-- Counts per status, kept by a trigger so /status of a 100,000-row job is one small read.
CREATE TABLE IF NOT EXISTS job_counts (
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, status)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS messages_count AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
    UPDATE job_counts SET n = n + 1 WHERE job_id = NEW.job_id AND status = NEW.status;
END;

CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    current_job_id TEXT,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    qr_png BLOB,
    qr_at REAL
);

-- Signed-in /app pages. The cookie carries a random id; only its sha256 is kept here, so a
-- copy of this file (a backup) signs nobody in. key_mac binds the session to the API key.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    key_mac TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL
) WITHOUT ROWID;
"""


class Database:
    """One connection per thread to one SQLite file, with the schema in place."""

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
            # Version 2 -> 3 only adds the sessions table, which the schema script above has
            # just created (CREATE TABLE IF NOT EXISTS): nothing to change in place.
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
    def write(self):
        """A write transaction taken up front (BEGIN IMMEDIATE), committed or rolled back."""
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
