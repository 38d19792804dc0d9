"""The queue on PostgreSQL: the same statements as on SQLite, through psycopg 3 and a pool.

The stores write one SQL that both engines run; message_queue/pg_sql.py spells it for
PostgreSQL (`translate`), and message_queue/pg_conn.py runs it on a borrowed connection.

Writes keep SQLite's guarantee that a transaction sees every write committed before it: each
takes one transaction-level advisory lock, exclusively, so the stores' read-then-write steps
(a job's moves, a failed row and the job's failure judge) never interleave. Claims and the
marks of sent rows are the exception that makes several machines worth it: they take that
lock shared, so they run side by side. A claim takes its row with `FOR UPDATE SKIP LOCKED`
(message_queue/claim.py); a mark whose job may be finishing asks again under the exclusive
lock (message_queue/outcomes.py); each job's counts are spread over slots so that they do not
make every sender of the job wait for one row (schema_pg_7.sql).

A lost connection or a restarted server raises DatabaseUnavailable (the API answers 503, a
worker waits and retries); the pool replaces broken connections by itself.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg_pool import ConnectionPool

from .errors import DatabaseUnavailable
from .pg_conn import Connection, _Autocommit, _unavailable

log = logging.getLogger("queue")

POOL_MAX = 8
CONNECT_TIMEOUT = 5
# How long a request waits for a pooled connection before the database counts as down.
POOL_TIMEOUT = 5.0
# A pooled connection idle longer than this is asked whether it still works before use: the
# server may have restarted meanwhile. One in steady use is not (it costs a round trip).
CHECK_IDLE_AFTER = 1.0
# The database's clock is read again this often (contract section 9: its clock rules), and
# tried again this soon when it could not be read.
CLOCK_REFRESH = 60.0
CLOCK_RETRY = 5.0
# Versioned migrations: (version, file). Version 5 is the SQLite schema's version when
# PostgreSQL support came: the same tables, written in PostgreSQL's types.
MIGRATIONS = ((5, "schema_pg.sql"), (6, "schema_pg_6.sql"), (7, "schema_pg_7.sql"))
SCHEMA_VERSION = MIGRATIONS[-1][0]


def is_url(target: str) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def _check_if_idle(conn: psycopg.Connection) -> None:
    """The pool's check before lending `conn`: a round trip only after it sat idle."""
    if time.monotonic() - getattr(conn, "_queue_used_at", 0.0) > CHECK_IDLE_AFTER:
        ConnectionPool.check_connection(conn)


def _version(raw: psycopg.Connection) -> int:
    """The schema version of the connection's schema; 0 when it has no queue yet."""
    if raw.execute("SELECT to_regclass('schema_version')").fetchone() == (None,):
        return 0
    row = raw.execute("SELECT max(version) FROM schema_version").fetchone()
    return (row[0] if row else None) or 0


class PostgresDatabase:
    """The queue's tables in one PostgreSQL database, shared by every API and worker."""

    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = POOL_MAX):
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            timeout=POOL_TIMEOUT,
            open=False,
            name="queue",
            check=_check_if_idle,
        )
        self._pool.open(wait=False)
        self._migrated = False
        self._lock = threading.Lock()
        # (server epoch seconds, time.monotonic()) of the last reading of the server's clock.
        self._clock: tuple[float, float] | None = None
        self._clock_due = 0.0  # monotonic time of the next reading
        # Per schema (current_schema()), so two queues in one database never share them.
        self._write_lock = self._migrate_lock = 0
        self._channel = ""
        self._listener: psycopg.Connection | None = None
        try:  # now, when the server is up; else at the first use (a worker waits for it)
            self._migrate()
        except DatabaseUnavailable as exc:
            log.warning("database not reachable yet: %s", exc)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _borrow(self, timeout: float | None = None):
        self._migrate()
        with _unavailable(), self._pool.connection(timeout) as raw:
            try:
                yield Connection(raw)
            finally:
                raw._queue_used_at = time.monotonic()  # type: ignore[attr-defined]

    def connection(self) -> _Autocommit:
        return _Autocommit(self)

    @contextmanager
    def write(self, exclusive: bool = True):
        """A write transaction holding the queue's write lock (shared for claims)."""
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"

        # One round trip opens it: BEGIN, the lock, and the server's clock, which a writing
        # process so never needs a round trip of its own for.
        def opening() -> str:
            return (
                f"BEGIN; SELECT {lock}({self._write_lock}), extract(epoch FROM clock_timestamp())"
            )

        with self._transaction(opening, reads_clock=True) as conn:
            yield conn

    @contextmanager
    def read(self):
        """A read transaction: several SELECTs see one snapshot."""
        with self._transaction(lambda: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") as conn:
            yield conn

    @contextmanager
    def _transaction(self, opening, reads_clock: bool = False):
        for attempt in range(POOL_MAX + 1):
            with self._borrow() as conn:
                try:
                    with _unavailable():
                        before = time.monotonic()
                        cursor = conn.raw.cursor()
                        cursor.execute(opening())  # no parameters: several statements at once
                        if reads_clock and cursor.nextset():
                            row = cursor.fetchone()
                            if row is not None:
                                self._set_clock(float(row[1]), (before + time.monotonic()) / 2)
                except DatabaseUnavailable:
                    # Nothing was done yet: a connection the server dropped is discarded by
                    # the pool, and the transaction starts on another one.
                    if attempt == POOL_MAX or not conn.raw.closed:
                        raise
                    continue
                with self._open(conn) as ready:
                    yield ready
                return

    @staticmethod
    @contextmanager
    def _open(conn: Connection):
        """Commit what the caller did in `conn`, or roll it back when it raised."""
        try:
            yield conn
        except BaseException:
            if not conn.raw.closed and not conn.raw.broken:
                conn.raw.execute("ROLLBACK")
            raise
        with _unavailable():
            conn.raw.execute("COMMIT")

    def notify(self, conn, channel: str = "") -> None:
        """Wake idle workers when this transaction commits (new or resumed work)."""
        conn.execute("SELECT pg_notify(?, ?)", (self._channel, channel))

    def wait_for_work(self, stop: threading.Event, timeout: float) -> None:
        """Sleep up to `timeout`, or until a NOTIFY says there may be work, or until stop."""
        try:
            listener = self._listen()
            deadline = time.monotonic() + timeout
            while not stop.is_set():  # in steps of a second at most, so stop acts soon
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # A NOTIFY that came while we were busy is delivered here at once.
                if list(listener.notifies(timeout=min(left, 1.0), stop_after=1)):
                    return
        except (psycopg.Error, OSError, DatabaseUnavailable) as exc:
            log.debug("LISTEN failed, polling instead: %s", exc)
            self._close_listener()
            stop.wait(timeout)

    def _listen(self) -> psycopg.Connection:
        if self._listener is None or self._listener.closed or self._listener.broken:
            self._close_listener()
            self._migrate()  # names the channel
            self._listener = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            self._listener.execute(f"LISTEN {self._channel}")
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None

    # -- the clock ------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the epoch by the database server's clock: read with every write
        (or once a minute on its own), carried forward between readings by the local
        monotonic clock, which a step of the local wall clock does not move."""
        if time.monotonic() >= self._clock_due:
            self._read_clock()
        clock = self._clock
        if clock is None:  # never read yet (the database is down since we started)
            return time.time()
        server, at = clock
        return server + (time.monotonic() - at)

    def _read_clock(self) -> None:
        self._clock_due = time.monotonic() + CLOCK_RETRY  # a failure is not retried at once
        try:  # briefly: a clock that cannot be read must not hold its caller up
            with self._borrow(timeout=1.0) as conn:
                before = time.monotonic()
                row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
                self._set_clock(float(row[0]), (before + time.monotonic()) / 2)
        except DatabaseUnavailable:
            pass  # the last reading stands; the statement that needs the database says so

    def _set_clock(self, server: float, at: float) -> None:
        self._clock = (server, at)
        self._clock_due = at + CLOCK_REFRESH

    # -- the schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply the migrations this database lacks, once, whoever starts first."""
        if self._migrated:
            return
        with self._lock:
            if self._migrated:
                return
            with _unavailable(), self._pool.connection() as raw, raw.transaction():
                found = raw.execute("SELECT current_schema()").fetchone()
                schema = (found[0] if found else None) or "public"
                key = zlib.crc32(schema.encode())
                self._write_lock, self._migrate_lock = key << 1, (key << 1) + 1
                self._channel = f"bulk_sender_work_{key:08x}"
                # Up to date (the usual start) is found without a write or a lock, so a
                # process can start on a read-only standby and wait there for a primary.
                if _version(raw) < SCHEMA_VERSION:
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._migrate_lock,))
                    raw.execute(
                        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                    )
                    current = _version(raw)  # again: another process may have just done it
                    for version, name in MIGRATIONS:
                        if version > current:
                            sql = Path(__file__).with_name(name).read_text(encoding="utf-8")
                            raw.execute(sql)
                            raw.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            self._migrated = True

    def version(self) -> int:
        return self.connection().execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # -- checks and copies ----------------------------------------------------------------

    def check(self) -> str:
        """`ok` when the database answers a query, else the error text."""
        try:
            self.connection().execute("SELECT count(*) FROM jobs").fetchone()
            return "ok"
        except (psycopg.Error, DatabaseUnavailable) as exc:
            return str(exc)

    def integrity_check(self) -> str:
        """PostgreSQL keeps its own pages whole; `ok` when the tables answer."""
        return self.check()

    def backup_to(self, target) -> None:
        raise DatabaseUnavailable(
            "a PostgreSQL queue is backed up with PostgreSQL's own tools: "
            'pg_dump --format=custom --file=queue.dump "$DATABASE_URL" (see the README)'
        )

    def close(self) -> None:
        """Close the pool and the listener (the process is done with the queue)."""
        self._close_listener()
        self._pool.close()
