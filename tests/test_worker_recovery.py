"""Crash recovery cut short: the channel answers the session check, then goes away again while
the worker checks what a crash left `sending` (a phone dropping off its Wi-Fi for a moment).

Found while building the chaos runs (docs/RELIABILITY.md): the worker used to count itself
logged in anyway and send on, so the unchecked row stayed `sending` and its job `running` for
as long as the channel stayed up.
"""

from __future__ import annotations

import random
import threading

import pytest

from message_queue import NewJob, Queue, Recipient
from worker.errors import SessionLostError
from worker.worker import Worker

from .fakes import Clock, FakeTransport


@pytest.fixture
def queue(settings):
    q = Queue(settings.database_path, clock=Clock())
    yield q
    q.close()


def test_recovery_cut_short_is_finished_before_anything_new_is_sent(queue, settings):
    job, _ = queue.create_job(
        NewJob(channel="sms", template="hi"),
        [Recipient(phone=p, text=f"hi {p}", channel="sms") for p in ("+1", "+2")],
    )
    left = queue.claim_next("sms", settings.worker_id)  # the previous life of this worker
    transport = FakeTransport(channel="sms")
    answers = [SessionLostError("phone unreachable"), "sent"]

    def verify(message):
        transport.verified.append(message["id"])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    transport.verify = verify
    worker = Worker(
        settings,
        queue,
        transport,
        threading.Event(),
        clock=queue.clock,
        rng=random.Random(1),
        idle_poll=0,
        session_poll=0,
    )

    assert worker.run_once() is False  # the session check passed, the recovery did not
    assert queue.list_messages(job["id"], status="sending")[0][0]["id"] == left["id"]
    assert transport.sent == [] and not worker.logged_in

    for _ in range(5):
        worker.run_once()
    assert transport.verified == [left["id"], left["id"]]  # checked again, and settled
    assert transport.sent == [("+2", "hi +2")]  # the row found sent is not sent twice
    assert {m["phone"]: m["status"] for m in queue.list_messages(job["id"])[0]} == {
        "+1": "sent",
        "+2": "sent",
    }
    assert queue.get_job(job["id"])["status"] == "completed"
