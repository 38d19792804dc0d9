"""Many senders claiming and marking one job at once: each row once, the counts right, and
the job completed once its last row is marked, also when the last marks commit side by side
(on PostgreSQL marks of sent rows share the write lock with claims: message_queue/messages.py,
and each job's counts are spread over slots: message_queue/schema_pg_7.sql)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg
import pytest

from message_queue import NewJob, Queue, Recipient
from message_queue import pg as pg_module

SENDERS = 8
# A backend of this database waiting for a lock another transaction holds.
_WAITING = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND a.datname = current_database()"
)


def recipients(n: int) -> list[Recipient]:
    return [Recipient(phone=f"+1555{i:07d}", text=f"hi {i}", channel="sms") for i in range(n)]


def _drain(url: str, who: str, sent: list, errors: list) -> None:
    queue = Queue(url)
    try:
        queue.heartbeat(who, "sms", "logged_in")
        while (message := queue.claim_next("sms", who)) is not None:
            if queue.mark_sent(message["id"], who):
                sent.append(message["id"])
    except Exception as exc:  # a deadlock or a lost row: reported to the test
        errors.append(repr(exc))
    finally:
        queue.close()


@pytest.mark.parametrize("rows", [5, 300])
def test_senders_side_by_side_send_each_row_once_and_complete_the_job(database, rows):
    queue = Queue(database)
    job, _ = queue.create_job(NewJob(channel="sms", template="hi"), recipients(rows))
    sent: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_drain, args=(database, f"s{i}", sent, errors))
        for i in range(SENDERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(sent) == rows and len(set(sent)) == rows
    final = queue.get_job(job["id"])
    assert final["status"] == "completed"
    assert final["counts"]["sent"] == rows
    assert sum(final["counts"].values()) == rows
    assert {k: v for k, v in final["counts"].items() if v} == {"sent": rows}
    queue.close()


@pytest.mark.backends("postgresql")
def test_a_job_completes_when_its_last_two_marks_commit_side_by_side(database):
    """Two marks that share the lock each count the other's row as open: the one that
    cannot tell whether it is the last asks again under the exclusive lock."""
    queue = Queue(database)
    job, _ = queue.create_job(NewJob(channel="sms", template="hi"), recipients(2))
    first, second = queue.claim_next("sms", "a"), queue.claim_next("sms", "b")
    assert first is not None and second is not None
    # The other mark: its row turned `sent` in a transaction holding the lock shared, not yet
    # committed, as a mark that counted this one's row as open and so did not complete the job.
    other = psycopg.connect(database, autocommit=True)
    other.execute("BEGIN")
    other.execute("SELECT pg_advisory_xact_lock_shared(%s)", (queue.db._write_lock,))
    other.execute("UPDATE messages SET status = 'sent' WHERE id = %s", (second["id"],))
    marked: list[bool] = []
    mark = threading.Thread(target=lambda: marked.append(queue.mark_sent(first["id"], "a")))
    mark.start()
    try:
        # The mark waits for the other one (its second look takes the lock exclusively, or
        # its counts share a slot): commit the other only once the mark is seen waiting.
        watcher = psycopg.connect(database, autocommit=True)
        deadline = time.monotonic() + 10
        while not watcher.execute(_WAITING).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        watcher.close()
        other.execute("COMMIT")
    finally:
        mark.join(10)
        other.close()
    assert marked == [True]
    final = queue.get_job(job["id"])
    assert final["counts"]["sent"] == 2
    assert final["status"] == "completed"
    queue.close()


@pytest.mark.backends("postgresql")
def test_a_version_6_database_keeps_its_counts_through_the_slots_migration(database, monkeypatch):
    old = tuple(m for m in pg_module.MIGRATIONS if m[0] <= 6)
    monkeypatch.setattr(pg_module, "MIGRATIONS", old)
    monkeypatch.setattr(pg_module, "SCHEMA_VERSION", 6)
    before = Queue(database)
    job, _ = before.create_job(NewJob(channel="sms", template="hi"), recipients(6))
    for _ in range(2):
        message = before.claim_next("sms", "a")
        assert message is not None and before.mark_sent(message["id"], "a")
    claimed = before.claim_next("sms", "a")
    assert claimed is not None
    counts = before.get_job(job["id"])["counts"]
    before.close()
    monkeypatch.undo()

    after = Queue(database)
    assert after.db.version() == 7
    assert after.get_job(job["id"])["counts"] == counts
    assert after.mark_sent(claimed["id"], "a")
    while (message := after.claim_next("sms", "b")) is not None:
        assert after.mark_sent(message["id"], "b")
    final = after.get_job(job["id"])
    assert final["status"] == "completed"
    assert Counter({k: v for k, v in final["counts"].items() if v}) == Counter(sent=6)
    after.close()
