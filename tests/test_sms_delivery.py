"""Delivery reports: an idle SMS worker asks the phone about messages it recorded as `sent`."""

from __future__ import annotations

import threading

from message_queue import NewJob, Queue, Recipient
from tests.fakes import Clock, FakeTransport, ReportingTransport

# The gateway stand-in fixtures of test_sms.py, shared rather than written again.
from tests.test_sms import gw, server, sms_settings, transport_for, wait_until  # noqa: F401
from tests.wa_e2e_support import WorkerThread, holds_for
from worker import deliveries as deliveries_module
from worker.errors import UncertainSendError
from worker.sms import gateway_id
from worker.worker import Worker


def make_job(queue, phones, channel="sms"):
    job, _ = queue.create_job(
        NewJob(channel=channel, template="x"),
        [Recipient(phone=p, text=f"Oi {p}", channel=channel) for p in phones],
    )
    return job["id"]


def statuses(queue, job_id) -> dict[str, str]:
    rows, _ = queue.list_messages(job_id)
    return {r["phone"]: r["status"] for r in rows}


def post_and_mark_sent(queue, transport, job_id, n, with_provider=True):
    """Claim `n` messages, hand each to the phone, record it `sent` as a worker would."""
    ids = []
    for _ in range(n):
        m = queue.claim_next("sms", "sms-1")
        transport.client.send(gateway_id(m), m["phone"], m["text"], 3600)
        queue.mark_sent(m["id"], "sms-1", gateway_id(m) if with_provider else None)
        ids.append(m["id"])
    return ids


def test_queue_lists_recent_sent_rows_with_a_provider_id_in_batches(database):
    clock = Clock()
    queue = Queue(database, clock=clock)
    old = make_job(queue, ["+5511900000001"])
    queue.mark_sent(queue.claim_next("sms", "w")["id"], "w", "old-1")
    clock.advance(3600)
    job = make_job(queue, [f"+55119000001{i:02d}" for i in range(5)])
    make_job(queue, ["+5511900000200"], channel="whatsapp")
    sent = []
    for i in range(4):
        m = queue.claim_next("sms", "w")
        queue.mark_sent(m["id"], "w", None if i == 3 else f"p{i}")  # the 4th has no id
        sent.append(m["id"])
    queue.mark_delivered(sent[2])
    wa = queue.claim_next("whatsapp", "w")
    queue.mark_sent(wa["id"], "w", "wa-1")

    since = clock() - 60
    assert [r["id"] for r in queue.sent_awaiting_delivery("sms", since)] == sent[:2]
    assert [r["id"] for r in queue.sent_awaiting_delivery("sms", since, limit=1)] == sent[:1]
    assert [r["id"] for r in queue.sent_awaiting_delivery("sms", since, after_id=sent[0])] == sent[
        1:2
    ]
    assert len(queue.sent_awaiting_delivery("sms", since - 3600)) == 3  # the old one too
    assert [r["provider_id"] for r in queue.sent_awaiting_delivery("whatsapp", since)] == ["wa-1"]
    assert statuses(queue, old) == {"+5511900000001": "sent"}
    assert statuses(queue, job)["+5511900000104"] == "pending"


def test_poll_deliveries_reports_delivered_ids_and_stops_when_the_phone_is_away(
    queue, sms_settings, gw
):
    job_id = make_job(queue, ["+5511912340001", "+5511912340002", "+5511912340003"])
    gw.stick_in_processed("+5511912340002")
    transport = transport_for(sms_settings)
    post_and_mark_sent(queue, transport, job_id, 3)
    rows = queue.sent_awaiting_delivery("sms", 0)
    assert wait_until(lambda: len(transport.poll_deliveries(rows)) == 2)
    assert transport.poll_deliveries(rows) == [rows[0]["id"], rows[2]["id"]]

    gw.refuse_connections(True)
    try:
        assert transport.poll_deliveries(rows) == []  # no exception, no waiting
    finally:
        gw.refuse_connections(False)
    gw.set_credentials("sms", "changed")
    assert transport.poll_deliveries(rows) == []


def test_idle_worker_marks_delivered_what_the_phone_delivered(queue, sms_settings, gw, monkeypatch):
    monkeypatch.setattr(deliveries_module, "BATCH", 2)  # walk the rows batch by batch
    phones = [f"+55119123411{i:02d}" for i in range(7)]
    job_id = make_job(queue, phones)
    gw.stick_in_processed(phones[5])  # the phone never reports this one
    transport = transport_for(sms_settings)
    post_and_mark_sent(queue, transport, job_id, 6)
    post_and_mark_sent(queue, transport, job_id, 1, with_provider=False)  # not trackable
    with WorkerThread(
        sms_settings, queue, transport, idle_poll=0.02, session_poll=0.05, delivery_poll=0.05
    ):
        expected = dict.fromkeys(phones[:5], "delivered") | {phones[5]: "sent", phones[6]: "sent"}
        assert wait_until(lambda: statuses(queue, job_id) == expected, 10), statuses(queue, job_id)
        holds_for(lambda: statuses(queue, job_id) == expected, 0.3, "the rest stay sent")
        assert queue.get_job(job_id)["counts"]["delivered"] == 5


def test_the_pause_between_two_sends_is_used_to_ask_about_deliveries(queue, settings):
    """A job of hours must not show its rows `sent` until it ends: the phone is asked during
    the pause before each next message, not only once the queue is empty."""
    transport = ReportingTransport()
    asked_after: list[int] = []  # how many had been sent at each question

    def report_all(rows):
        asked_after.append(len(transport.sent))
        return [r["id"] for r in rows]

    transport.delivered = report_all
    job_id = make_job(queue, ["+5511912341201", "+5511912341202", "+5511912341203"])
    paced = settings.replace(sms_min_delay=0.2, sms_max_delay=0.2)
    with WorkerThread(paced, queue, transport, idle_poll=5, delivery_poll=0):
        assert wait_until(lambda: queue.get_job(job_id)["counts"]["delivered"] == 3, 10), (
            queue.get_job(job_id)["counts"]
        )
    assert asked_after[:2] == [1, 2]  # between the sends, before the job ended


def test_a_message_recovered_as_sent_is_still_followed_to_delivered(queue, sms_settings, gw):
    """The phone took a message, then the worker died before writing it down: recovery finds
    it sent, and the phone's delivery report still reaches the row."""
    job_id = make_job(queue, ["+5511912341301"])
    left = queue.claim_next("sms", "sms-1")  # the previous life of this worker
    transport = transport_for(sms_settings)
    transport.client.send(gateway_id(left), left["phone"], left["text"], 3600)
    with WorkerThread(
        sms_settings, queue, transport, idle_poll=0.02, session_poll=0.05, delivery_poll=0.05
    ):
        assert wait_until(lambda: statuses(queue, job_id) == {"+5511912341301": "delivered"}, 10), (
            statuses(queue, job_id)
        )
    assert [m["phone"] for m in gw.accepted()] == ["+5511912341301"]  # recovered, not resent


def test_a_send_confirmed_only_by_asking_keeps_its_id_too(queue, settings):
    """The other way a row is settled by asking the channel: a send whose answer was lost."""
    transport = ReportingTransport()
    transport.script["+5511912341401"] = [UncertainSendError("the phone did not answer")]
    transport.verify = lambda message: "sent"
    job_id = make_job(queue, ["+5511912341401"])
    worker = Worker(settings, queue, transport, threading.Event(), idle_poll=0)
    assert worker.run_once() is True
    (row,), _ = queue.list_messages(job_id)
    assert (row["status"], row["provider_id"]) == ("sent", f"t{row['id']}")
    assert transport.sent == []  # found sent, not sent again


def test_a_failing_poll_never_stops_the_worker(queue, settings, caplog):
    def nonsense(rows):
        raise RuntimeError("phone says nonsense")

    transport = ReportingTransport()
    transport.delivered = nonsense
    job_id = make_job(queue, ["+5511912340011"])
    m = queue.claim_next("sms", "test-worker")
    queue.mark_sent(m["id"], "test-worker", "p1")
    worker = Worker(settings, queue, transport, threading.Event(), idle_poll=0)
    worker.run_once()  # idle: polls, logs, carries on
    assert statuses(queue, job_id) == {"+5511912340011": "sent"}
    assert any("could not poll delivery reports" in r.getMessage() for r in caplog.records)
    make_job(queue, ["+5511912340012"])
    assert worker.run_once() is True and transport.sent == [("+5511912340012", "Oi +5511912340012")]


def test_whatsapp_worker_has_no_delivery_polling(queue, settings):
    transport = FakeTransport(channel="whatsapp")
    worker = Worker(settings, queue, transport, threading.Event(), idle_poll=0)
    worker.deliveries.poll_if_due()  # nothing to ask, nothing read
    assert worker.deliveries.next_poll == 0.0
