"""The four queues of benchmark 2, each as `fill(folder, n)` plus `drain(folder, who) -> ids`.

`drain` runs in a worker process: claim one item, mark it done, until none is left; it returns
the ids it claimed, so the parent can count double deliveries. Every contestant keeps its own
defaults (pragmas, serialisation) except where noted: that is what a user of it gets.

The bare loop is a benchmark's floor, so it holds the only SQL outside message_queue/: the two
statements a correct claim + mark-sent needs on the product's own schema and file, nothing else.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

CHANNEL = "whatsapp"


# --- the product: message_queue.Queue ---------------------------------------------------


def product_fill(folder: Path, n: int) -> None:
    from message_queue import NewJob, Queue, Recipient

    queue = Queue(folder / "queue.db")
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


def product_open(folder: Path, who: str):
    from message_queue import Queue

    queue = Queue(folder / "queue.db")
    queue.heartbeat(who, CHANNEL, "logged_in")  # as a worker does before its first claim
    return queue


def product_drain(queue, who: str) -> list[int]:
    ids = []
    while True:
        message = queue.claim_next(CHANNEL, who)
        if message is None:
            return ids
        if not queue.mark_sent(message["id"], who):
            raise RuntimeError(f"mark_sent refused message {message['id']}")
        ids.append(message["id"])


# --- the floor: a bare UPDATE ... RETURNING loop on the same schema and file -------------

bare_fill = product_fill

# The seek the product's own claim makes per (job, zone): the partial index messages_ready
# is on (job_id, zone, channel, id), so the floor names its job's zone, or it would sort.
_BARE_CLAIM = (
    "UPDATE messages SET status = 'sending', claimed_by = ?, attempts = attempts + 1"
    " WHERE id = (SELECT id FROM messages WHERE job_id = ? AND zone = ? AND channel = ?"
    " AND status IN ('pending', 'retrying') ORDER BY id LIMIT 1) RETURNING id"
)
_BARE_SENT = "UPDATE messages SET status = 'sent', sent_at = ? WHERE id = ? AND claimed_by = ?"


def bare_open(folder: Path, who: str, job_id: str | None = None, zone: str | None = None):
    """A connection plus the (job, zone) it claims from: the only job and its only zone
    unless named (the fill has one job, all of its numbers in one zone)."""
    conn = sqlite3.connect(folder / "queue.db", timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # the product's durability, for a fair floor
    if job_id is None:
        job_id = conn.execute("SELECT id FROM jobs").fetchone()[0]
    if zone is None:
        zone = conn.execute("SELECT zone FROM job_zones WHERE job_id = ?", (job_id,)).fetchone()[0]
    return conn, job_id, zone


def bare_claim(opened, who: str) -> int | None:
    conn, job_id, zone = opened
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute(_BARE_CLAIM, (who, job_id, zone, CHANNEL)).fetchone()
    conn.execute("COMMIT")
    return None if row is None else row[0]


def bare_mark(opened, message_id: int, who: str) -> None:
    conn = opened[0]
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_BARE_SENT, (time.time(), message_id, who))
    conn.execute("COMMIT")


def bare_drain(opened, who: str) -> list[int]:
    ids = []
    while True:
        message_id = bare_claim(opened, who)
        if message_id is None:
            return ids
        bare_mark(opened, message_id, who)
        ids.append(message_id)


# --- persist-queue's SQLiteAckQueue: get (claim) + ack (mark done) -----------------------


def persist_fill(folder: Path, n: int) -> None:
    from persistqueue import SQLiteAckQueue

    queue = SQLiteAckQueue(str(folder / "pq"), multithreading=True)
    for i in range(n):
        queue.put(i)
    queue.close()


def persist_open(folder: Path, who: str):
    from persistqueue import SQLiteAckQueue

    # auto_resume=False: a process opening late must not hand back rows others hold.
    return SQLiteAckQueue(str(folder / "pq"), multithreading=True, auto_resume=False)


def persist_drain(queue, who: str) -> list[int]:
    from persistqueue import Empty

    ids = []
    while True:
        try:
            item = queue.get(block=False, raw=True)
        except Empty:
            return ids
        queue.ack(id=item["pqid"])
        ids.append(item["data"])


# --- huey's SqliteStorage: dequeue (claim, deletes the row) + put_data (the result) ------


def huey_fill(folder: Path, n: int) -> None:
    from huey.storage import SqliteStorage

    storage = SqliteStorage(name="bench", filename=str(folder / "huey.db"))
    conn = storage.conn  # one transaction for the fill: setup is not what is measured
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO task (queue, data, priority) VALUES ('bench', ?, 0)",
        [(str(i).encode(),) for i in range(n)],
    )
    conn.execute("COMMIT")
    storage.close()


def huey_open(folder: Path, who: str):
    from huey.storage import SqliteStorage

    return SqliteStorage(name="bench", filename=str(folder / "huey.db"))


def huey_drain(storage, who: str) -> list[int]:
    ids = []
    while True:
        data = storage.dequeue()
        if data is None:
            return ids
        storage.put_data(b"result:" + bytes(data), b"sent")  # as the consumer stores a result
        ids.append(int(bytes(data)))


CONTESTANTS = {
    "product": (product_fill, product_open, product_drain),
    "bare": (bare_fill, bare_open, bare_drain),
    "persist-queue": (persist_fill, persist_open, persist_drain),
    "huey": (huey_fill, huey_open, huey_drain),
}
LABELS = {
    "product": "message_queue.Queue (product)",
    "bare": "bare UPDATE ... RETURNING loop (floor)",
    "persist-queue": "persist-queue SQLiteAckQueue",
    "huey": "huey SqliteStorage",
}
