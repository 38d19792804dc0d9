"""The four PostgreSQL queues of benchmark 10, each as `fill(url, n)`, `open(url, who)` and
`drain(opened, who) -> ids`, in the shape of bench/queue_contestants.py.

`drain` runs in a worker process: claim one item, complete it, until none is left; it returns
the ids it claimed, so the parent can count double deliveries and lost items.

The bare loop is the floor, so it holds PostgreSQL SQL outside message_queue/: a minimal table
and the two autocommit statements a correct claim-and-complete needs (a claim that takes its
row `FOR UPDATE SKIP LOCKED`, and the mark). The second floor runs the same two statements on
the product's own table, to tell what the schema costs from what the code does. procrastinate
runs as its documentation sets it up: its own schema, `batch_defer`, and a worker with
`wait=False`, which returns once it has caught up with the queue.
"""

from __future__ import annotations

import asyncio
import time

CHANNEL = "whatsapp"


# --- the product: message_queue.Queue on a postgresql:// URL -------------------------------


def product_fill(url: str, n: int) -> None:
    from message_queue import NewJob, Queue, Recipient

    queue = Queue(url)
    queue.create_job(
        NewJob(channel=CHANNEL, template="bench"),
        (
            Recipient(
                phone=f"+55119{60_000_000 + i}", text=f"message {i}", channel=CHANNEL, row=i + 2
            )
            for i in range(n)
        ),
    )
    queue.close()


def product_open(url: str, who: str):
    from message_queue import Queue

    queue = Queue(url)
    queue.heartbeat(who, CHANNEL, "logged_in")  # as a worker does before its first claim
    return queue


def product_drain(queue, who: str) -> list[int]:
    ids = []
    try:
        while True:
            message = queue.claim_next(CHANNEL, who)
            if message is None:
                return ids
            if not queue.mark_sent(message["id"], who):
                raise RuntimeError(f"mark_sent refused message {message['id']}")
            ids.append(message["id"])
    finally:
        queue.close()


# --- the floor: a bare FOR UPDATE SKIP LOCKED loop on a minimal table ---------------------

_BARE_TABLE = (
    "CREATE TABLE bare_queue (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " phone TEXT NOT NULL, text TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
    " claimed_by TEXT, claimed_at TIMESTAMPTZ, sent_at TIMESTAMPTZ)"
)
_BARE_INDEX = "CREATE INDEX bare_queue_ready ON bare_queue (id) WHERE status = 'pending'"
_BARE_ROWS = (
    "INSERT INTO bare_queue (phone, text) SELECT '+55119' || (60000000 + i), 'message ' || i"
    " FROM generate_series(0, %s - 1) AS i"
)
BARE_CLAIM = (
    "UPDATE bare_queue SET status = 'sending', claimed_by = %s, claimed_at = now()"
    " WHERE id = (SELECT id FROM bare_queue WHERE status = 'pending' ORDER BY id LIMIT 1"
    " FOR UPDATE SKIP LOCKED) RETURNING id, phone, text"
)
BARE_SENT = (
    "UPDATE bare_queue SET status = 'sent', sent_at = now() WHERE id = %s AND claimed_by = %s"
)


def bare_fill(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_BARE_TABLE)
        conn.execute(_BARE_INDEX)
        conn.execute(_BARE_ROWS, (n,))
        conn.execute("ANALYZE bare_queue")


def bare_open(url: str, who: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def bare_drain(conn, who: str) -> list[int]:
    ids = []
    with conn:
        while True:
            row = conn.execute(BARE_CLAIM, (who,)).fetchone()
            if row is None:
                return ids
            if conn.execute(BARE_SENT, (row[0], who)).rowcount != 1:
                raise RuntimeError(f"the bare mark missed row {row[0]}")
            ids.append(row[0])


# --- the second floor: the same two statements on the product's own table ----------------

# What the product's schema costs by itself: its indexes, and its trigger that keeps the
# per-status counts of each job (job_counts) up to date on every change of status.
_SCHEMA_CLAIM = (
    "UPDATE messages SET status = 'sending', attempts = attempts + 1, claimed_by = %(who)s,"
    " claimed_at = %(now)s, updated_at = %(now)s WHERE id = (SELECT id FROM messages"
    " WHERE job_id = %(job)s AND zone = %(zone)s AND channel = %(channel)s"
    " AND status IN ('pending', 'retrying') ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id"
)
_SCHEMA_SENT = (
    "UPDATE messages SET status = 'sent', sent_at = %(now)s, updated_at = %(now)s"
    " WHERE id = %(id)s AND status = 'sending' AND claimed_by = %(who)s"
)


def schema_open(url: str, who: str):
    """A connection plus the only job and its only zone (the fill has one of each)."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    job, zone = conn.execute("SELECT job_id, zone FROM job_zones").fetchone()
    return conn, {"who": who, "job": job, "zone": zone, "channel": CHANNEL}


def schema_drain(opened, who: str) -> list[int]:
    conn, params = opened
    ids = []
    with conn:
        while True:
            row = conn.execute(_SCHEMA_CLAIM, params | {"now": time.time()}).fetchone()
            if row is None:
                return ids
            done = conn.execute(_SCHEMA_SENT, params | {"now": time.time(), "id": row[0]})
            if done.rowcount != 1:
                raise RuntimeError(f"the mark missed row {row[0]}")
            ids.append(row[0])


# --- procrastinate: batch_defer, then a worker that stops once it has caught up ------------

# A connection for fetching and finishing, one for LISTEN, one spare for its heartbeat:
# procrastinate's default pool (4 each) times 16 workers would pass max_connections = 100.
_PROCRASTINATE_POOL = {"min_size": 1, "max_size": 3}


def _procrastinate(url: str, seen: list):
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=url, **_PROCRASTINATE_POOL)
    )

    @app.task(name="bench_send")
    async def send(i: int) -> None:
        seen.append(i)

    return app, send


def procrastinate_fill(url: str, n: int) -> None:
    app, send = _procrastinate(url, [])
    with app.open():
        app.schema_manager.apply_schema()
        for start in range(0, n, 5_000):
            send.batch_defer(*({"i": i} for i in range(start, min(n, start + 5_000))))


def procrastinate_open(url: str, who: str):
    seen: list[int] = []
    app, _ = _procrastinate(url, seen)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(app.open_async())  # the pool is open before the start line
    return app, loop, seen


def procrastinate_drain(opened, who: str) -> list[int]:
    app, loop, seen = opened
    try:
        loop.run_until_complete(
            app.run_worker_async(wait=False, name=who, install_signal_handlers=False)
        )
        loop.run_until_complete(app.close_async())
    finally:
        loop.close()
    return seen


CONTESTANTS = {
    "product": (product_fill, product_open, product_drain),
    "bare": (bare_fill, bare_open, bare_drain),
    "schema": (product_fill, schema_open, schema_drain),
    "procrastinate": (procrastinate_fill, procrastinate_open, procrastinate_drain),
}
LABELS = {
    "product": "message_queue.Queue on PostgreSQL (product)",
    "bare": "bare FOR UPDATE SKIP LOCKED loop, minimal table (floor)",
    "schema": "the same bare loop on the product's own table (its indexes and trigger)",
    "procrastinate": "procrastinate worker (wait=False)",
}
