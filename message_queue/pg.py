"""The queue on PostgreSQL: the same statements as on SQLite, through psycopg 3 and a pool.

The stores write one SQL that both engines run; the few words SQLite spells its own way are
rewritten here once per statement (`translate`): `?` and `:name` parameters, `json_each`,
the two-argument `max`/`min`, `CAST(... AS INTEGER)` (PostgreSQL rounds, SQLite truncates),
case-insensitive `LIKE`, and the `INDEXED BY` hint.

Writes keep SQLite's guarantee that a transaction sees every write committed before it: each
takes one transaction-level advisory lock, exclusively, so the stores' read-then-write steps
(a job's moves, a mark and the job's completion) never interleave. Claims are the exception
that makes several machines worth it: they take that lock shared, so they run side by side,
and take their row with `FOR UPDATE SKIP LOCKED` (message_queue/claim.py).

A lost connection or a restarted server raises DatabaseUnavailable (the API answers 503, a
worker waits and retries); the pool replaces broken connections by itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from .errors import DatabaseUnavailable, UnstorableText

log = logging.getLogger("queue")

# pg_advisory_xact_lock's key for the queue's writes ("bulk" in ASCII).
WRITE_LOCK = 0x62756C6B
# Migrations take this one, so processes starting together apply them once.
MIGRATE_LOCK = 0x62756C6D
# LISTEN/NOTIFY channel: a NOTIFY on it means a row may have become sendable.
WORK_CHANNEL = "bulk_sender_work"
POOL_MAX = 8
CONNECT_TIMEOUT = 5
# A pooled connection idle longer than this is asked whether it still works before use: the
# server may have restarted meanwhile. One in steady use is not (it costs a round trip).
CHECK_IDLE_AFTER = 1.0
# The database's clock is read again this often (contract section 9: its clock rules).
CLOCK_REFRESH = 60.0

# Versioned migrations: (version, file). Version 5 is the SQLite schema's version when
# PostgreSQL support came: the same tables, written in PostgreSQL's types.
MIGRATIONS = ((5, "schema_pg.sql"),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def is_url(target: str) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


# -- one SQL for both engines ---------------------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|:(\w+)|\?|%")
_REWRITES = (
    (re.compile(r"json_each\(\?\)"), "json_array_elements_text(CAST(? AS json))"),
    (re.compile(r"\b(max|min)\(([^(),]+),([^(),]+)\)"), None),
    (re.compile(r"CAST\(([^()]*) AS INTEGER\)"), r"CAST(floor(\1) AS BIGINT)"),
    (re.compile(r"\bLIKE\b"), "ILIKE"),
    (re.compile(r"\s+INDEXED BY \w+"), ""),
)


def _scalar(match: re.Match) -> str:
    return f"{'GREATEST' if match[1] == 'max' else 'LEAST'}({match[2]},{match[3]})"


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's spelling of `sql` in PostgreSQL's (psycopg's `%s` / `%(name)s` parameters)."""

    def token(match: re.Match) -> str:
        text = match[0]
        if text.startswith("'"):
            return text.replace("%", "%%")  # psycopg reads % even inside a literal
        if match[1]:
            return f"%({match[1]})s"
        return "%s" if text == "?" else "%%"

    for pattern, replacement in _REWRITES:
        sql = pattern.sub(_scalar if replacement is None else replacement, sql)
    return _TOKENS.sub(token, sql)


class Row:
    """A result row read by position or by column name, like sqlite3.Row."""

    __slots__ = ("_values", "_index")

    def __init__(self, values, index: dict[str, int]):
        self._values, self._index = values, index

    def __getitem__(self, key):
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _rows(cursor):
    names = [c.name for c in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(values, index)


def _check_if_idle(conn: psycopg.Connection) -> None:
    """The pool's check before lending `conn`: a round trip only after it sat idle."""
    if time.monotonic() - getattr(conn, "_queue_used_at", 0.0) > CHECK_IDLE_AFTER:
        ConnectionPool.check_connection(conn)


@contextmanager
def _unavailable():
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"PostgreSQL: {exc}".strip()) from exc
    except psycopg.DataError as exc:
        if "NUL" not in str(exc):
            raise
        # SQLite keeps a NUL in TEXT, PostgreSQL refuses it: the caller's input is at fault.
        raise UnstorableText("a value contains a NUL character (0x00)") from exc


class Connection:
    """One borrowed connection, with the sqlite3-like `execute` the stores call."""

    def __init__(self, conn: psycopg.Connection):
        self.raw = conn

    def execute(self, sql: str, params=()):
        cursor = self.raw.cursor(row_factory=_rows)
        with _unavailable():
            cursor.execute(translate(sql), params)
        return cursor

    def executemany(self, sql: str, rows):
        cursor = self.raw.cursor(row_factory=_rows)
        with _unavailable():
            cursor.executemany(translate(sql), rows)
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
            timeout=CONNECT_TIMEOUT * 2,
            open=False,
            name="queue",
            check=_check_if_idle,
        )
        self._pool.open(wait=False)
        self._migrated = False
        self._lock = threading.Lock()
        self._clock_offset = 0.0
        self._clock_read_at = float("-inf")
        self._listener: psycopg.Connection | None = None
        try:  # now, when the server is up; else at the first use (a worker waits for it)
            self._migrate()
        except DatabaseUnavailable as exc:
            log.warning("database not reachable yet: %s", exc)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _borrow(self):
        self._migrate()
        with _unavailable(), self._pool.connection() as raw:
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
        with self._transaction("BEGIN", f"SELECT {lock}({WRITE_LOCK})") as conn:
            yield conn

    @contextmanager
    def read(self):
        """A read transaction: several SELECTs see one snapshot."""
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") as conn:
            yield conn

    @contextmanager
    def _transaction(self, *opening: str):
        for attempt in range(POOL_MAX + 1):
            with self._borrow() as conn:
                try:
                    for statement in opening:
                        conn.execute(statement)
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
        conn.execute("SELECT pg_notify(?, ?)", (WORK_CHANNEL, channel))

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
            self._listener = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            self._listener.execute(f"LISTEN {WORK_CHANNEL}")
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None

    # -- the clock ------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the epoch by the database server's clock (read once a minute; the
        local clock's steps in between)."""
        local = time.time()
        if local - self._clock_read_at > CLOCK_REFRESH:
            try:
                before = time.time()
                row = self.connection().execute("SELECT extract(epoch FROM clock_timestamp())")
                after = time.time()
                self._clock_offset = float(row.fetchone()[0]) - (before + after) / 2
                self._clock_read_at = after
            except DatabaseUnavailable:
                pass  # the last offset stands; the statement that needs the database says so
            local = time.time()
        return local + self._clock_offset

    # -- the schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply the migrations this database lacks, once, whoever starts first."""
        if self._migrated:
            return
        with self._lock:
            if self._migrated:
                return
            with _unavailable(), self._pool.connection() as raw, raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = raw.execute("SELECT max(version) FROM schema_version").fetchone()
                current = (row[0] if row else None) or 0
                for version, name in MIGRATIONS:
                    if version > current:
                        raw.execute(Path(__file__).with_name(name).read_text(encoding="utf-8"))
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
