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
    q = Queue(settings.database, clock=Clock())
    yield q
    q.close()


def quick_worker(settings, queue, transport) -> Worker:
    """A worker on the queue's clock that never waits between turns."""
    return Worker(
        settings,
        queue,
        transport,
        threading.Event(),
        clock=queue.clock,
        rng=random.Random(1),
        idle_poll=0,
        session_poll=0,
    )


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
    worker = quick_worker(settings, queue, transport)

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


def test_another_workers_half_sent_row_is_left_to_it_then_settled_when_it_is_gone(queue, settings):
    job, _ = queue.create_job(
        NewJob(channel="whatsapp", template="hi"),
        [Recipient(phone=p, text=f"hi {p}", channel="whatsapp") for p in ("+1", "+2")],
    )
    queue.heartbeat("other-account", "whatsapp", "sending")
    theirs = queue.claim_next("whatsapp", "other-account")  # then that account's machine dies
    transport = FakeTransport()
    worker = quick_worker(settings.replace(sender_gone_after=600), queue, transport)
    for _ in range(3):
        worker.run_once()
    assert transport.verified == []  # our chat cannot tell what the other account sent
    assert transport.sent == [("+2", "hi +2")]
    assert queue.list_messages(job["id"], status="sending")[0][0]["id"] == theirs["id"]

    queue.clock.advance(601)  # silent past SENDER_GONE_AFTER: gone
    worker.run_once()
    row = queue.list_messages(job["id"], status="unknown")[0][0]
    assert (row["id"], row["error"]) == (theirs["id"], "sender_gone")
    assert queue.get_job(job["id"])["status"] == "completed"


def test_a_row_left_sending_to_a_number_not_on_whatsapp_falls_back_to_sms(queue, settings):
    from worker.errors import NotOnWhatsApp

    job, _ = queue.create_job(
        NewJob(channel="whatsapp_then_sms", template="hi"),
        [Recipient(phone="+14155550001", text="hi", channel="whatsapp")],
    )
    left = queue.claim_next("whatsapp", settings.worker_id)  # killed right after the claim
    transport = FakeTransport()

    def verify(message):  # opening the chat to look is what tells
        transport.verified.append(message["id"])
        raise NotOnWhatsApp(f"{message['phone']} is not on WhatsApp")

    transport.verify = verify
    worker = quick_worker(settings, queue, transport)
    worker.run_once()
    assert transport.verified == [left["id"]] and transport.sent == []
    (row,), _ = queue.list_messages(job["id"])
    # Nothing can have gone, so it is not `unknown`: it goes by SMS, as a fresh send would.
    assert (row["status"], row["channel"], row["error"]) == ("pending", "sms", "not_on_whatsapp")
    assert queue.claim_next("sms", "phone-1")["id"] == left["id"]
