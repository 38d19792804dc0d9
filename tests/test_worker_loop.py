"""The worker loop with a scripted transport: no browser, no threads, no sleeping."""

from __future__ import annotations

import random
import threading

import pytest

from message_queue import NewJob, Queue, Recipient
from worker import transport as t
from worker.errors import (
    NotOnWhatsApp,
    RetryableSendError,
    SessionLostError,
    TransportBroken,
    UncertainSendError,
)
from worker.worker import Worker

from .fakes import Clock, FakeTransport


def make_job(queue, phones, channel="whatsapp"):
    first = "whatsapp" if channel == "whatsapp_then_sms" else channel
    job, _ = queue.create_job(
        NewJob(channel=channel, template="hi"),
        [Recipient(phone=p, text=f"hi {p}", channel=first) for p in phones],
    )
    return job["id"]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(settings, clock):
    """The queue and the worker share one clock, so retry times mean the same to both."""
    q = Queue(settings.database, clock=clock)
    yield q
    q.close()


@pytest.fixture
def make_worker(settings, queue, clock):
    def build(transport=None, **changes):
        transport = transport or FakeTransport()
        s = settings.replace(**changes)
        w = Worker(
            s,
            queue,
            transport,
            threading.Event(),
            clock=clock,
            rng=random.Random(1),
            idle_poll=0,
            session_poll=0,
        )
        return w, transport

    return build


def drain(worker, turns=50):
    for _ in range(turns):
        worker.run_once()


def statuses(queue, job_id):
    rows, _ = queue.list_messages(job_id, limit=1000)
    return {m["phone"]: (m["status"], m["attempts"], m["error"]) for m in rows}


def test_sends_every_message_once_and_completes_the_job(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2", "+3"])
    worker, transport = make_worker()
    drain(worker)
    assert transport.sent == [("+1", "hi +1"), ("+2", "hi +2"), ("+3", "hi +3")]
    assert queue.get_job(job_id)["status"] == "completed"
    assert queue.get_job(job_id)["counts"]["sent"] == 3


def test_not_on_whatsapp_fails_without_retry_and_the_rest_go(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2"])
    worker, transport = make_worker()
    transport.script["+1"] = [NotOnWhatsApp("modal")]
    drain(worker)
    assert statuses(queue, job_id) == {
        "+1": ("failed", 1, "not_on_whatsapp"),
        "+2": ("sent", 1, None),
    }
    assert queue.get_job(job_id)["last_error"] == "not_on_whatsapp"


def test_retryable_errors_back_off_then_fail_after_max_attempts(queue, make_worker, clock):
    job_id = make_job(queue, ["+1"])
    worker, transport = make_worker(max_attempts=3, retry_backoff=10)
    transport.script["+1"] = [RetryableSendError("no chat")] * 3
    worker.run_once()
    assert statuses(queue, job_id)["+1"] == ("retrying", 1, "send_failed")
    worker.run_once()  # not due yet: nothing claimed
    assert statuses(queue, job_id)["+1"][1] == 1
    clock.advance(10)
    worker.run_once()
    assert statuses(queue, job_id)["+1"] == ("retrying", 2, "send_failed")
    clock.advance(19)
    worker.run_once()
    assert statuses(queue, job_id)["+1"][1] == 2  # backoff doubled to 20 s
    clock.advance(1)
    worker.run_once()
    assert statuses(queue, job_id)["+1"] == ("failed", 3, "send_failed")
    assert transport.sent == []


def test_session_lost_burns_no_attempt_and_waits_for_login(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2"])
    worker, transport = make_worker()
    transport.script["+1"] = [SessionLostError("logged out")]
    transport.on_send = lambda m: setattr(
        transport, "session", t.SessionState(t.QR_REQUIRED, qr_png=b"png1")
    )
    worker.run_once()
    assert statuses(queue, job_id)["+1"] == ("pending", 0, "session_lost")
    worker.run_once()
    assert queue.get_job(job_id)["status"] == "waiting_for_login"
    assert queue.latest_qr()[0] == b"png1"
    assert [w["state"] for w in queue.list_workers()] == ["qr_required"]
    transport.on_send = None
    transport.session = t.SessionState(t.LOGGED_IN)
    drain(worker)
    assert queue.get_job(job_id)["status"] == "completed"
    assert sorted(transport.sent) == [("+1", "hi +1"), ("+2", "hi +2")]
    assert queue.latest_qr() is None


def test_jobs_created_while_logged_out_wait_for_login(queue, make_worker):
    worker, transport = make_worker(transport=FakeTransport(state=t.QR_REQUIRED))
    job_id = make_job(queue, ["+1"])
    worker.run_once()
    assert queue.get_job(job_id)["status"] == "waiting_for_login"
    assert transport.sent == []


def test_unconfirmed_send_is_verified_not_resent(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2", "+3"])
    worker, transport = make_worker()
    transport.script["+1"] = [UncertainSendError("no tick")]
    transport.script["+2"] = [UncertainSendError("no tick")]
    transport.script["+3"] = [UncertainSendError("no tick")]
    transport.verdicts = {1: "sent", 2: "unknown", 3: "not_sent"}
    worker.run_once(), worker.run_once(), worker.run_once()
    got = statuses(queue, job_id)
    assert got["+1"][0] == "sent"
    assert got["+2"] == ("unknown", 1, "send_not_confirmed")
    assert got["+3"] == ("retrying", 1, "send_not_confirmed")
    assert transport.sent == []


def test_browser_crash_after_click_is_settled_by_recovery(queue, make_worker):
    job_id = make_job(queue, ["+1"])
    worker, transport = make_worker()
    transport.script["+1"] = [TransportBroken("chrome died", may_have_sent=True)]
    transport.verdicts = {1: "sent"}
    worker.run_once()
    assert statuses(queue, job_id)["+1"][0] == "sending"
    assert transport.closed == 1
    worker.run_once()  # session comes back up: recovery looks in the chat
    assert statuses(queue, job_id)["+1"] == ("sent", 1, None)
    assert transport.sent == []


def test_browser_crash_before_click_releases_the_message(queue, make_worker):
    job_id = make_job(queue, ["+1"])
    worker, transport = make_worker()
    transport.script["+1"] = [TransportBroken("chrome died", may_have_sent=False)]
    worker.run_once()
    assert statuses(queue, job_id)["+1"] == ("pending", 0, "session_lost")
    drain(worker)
    assert transport.sent == [("+1", "hi +1")]


def test_recovery_at_start_verifies_rows_a_crash_left_sending(queue, make_worker, settings):
    job_id = make_job(queue, ["+1", "+2", "+3"])
    for _ in range(3):
        queue.claim_next("whatsapp", settings.worker_id)  # the previous life of this worker
    worker, transport = make_worker()
    transport.verdicts = {1: "sent", 2: "not_sent", 3: "unknown"}
    drain(worker)
    got = statuses(queue, job_id)
    assert got["+1"] == ("sent", 1, None)
    assert got["+2"][0] == "sent" and transport.sent == [("+2", "hi +2")]
    assert got["+3"] == ("unknown", 1, "send_not_confirmed")
    assert queue.get_job(job_id)["status"] == "completed"


def test_fallback_job_reroutes_not_on_whatsapp_to_sms(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2"], channel="whatsapp_then_sms")
    worker, transport = make_worker()
    transport.script["+1"] = [NotOnWhatsApp("modal")]
    drain(worker)
    got = statuses(queue, job_id)
    assert got["+1"] == ("pending", 0, "not_on_whatsapp")
    sms_worker, sms = make_worker(transport=FakeTransport(channel="sms"), worker_id="sms-1")
    drain(sms_worker)
    rows = {m["phone"]: m for m in queue.list_messages(job_id)[0]}
    assert rows["+1"]["channel"] == "sms" and rows["+1"]["status"] == "sent"
    assert sms.sent == [("+1", "hi +1")]
    assert queue.get_job(job_id)["status"] == "completed"


def test_pause_and_stop_take_effect_between_messages(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2", "+3"])
    worker, transport = make_worker()
    worker.run_once()
    queue.pause_job(job_id)
    drain(worker, 5)
    assert len(transport.sent) == 1
    queue.resume_job(job_id)
    worker.run_once()
    queue.stop_job(job_id)
    drain(worker, 5)
    assert len(transport.sent) == 2
    job = queue.get_job(job_id)
    assert job["status"] == "stopped" and job["counts"]["cancelled"] == 1


def test_pacing_waits_between_messages_and_stop_interrupts_it(queue, make_worker, clock):
    make_job(queue, ["+1", "+2"])
    worker, transport = make_worker(min_delay=3600, max_delay=3600)
    worker.run_once()
    worker.stop.set()  # a SIGTERM during the hour-long pause: the wait ends at once
    assert worker.run_once() is False
    assert len(transport.sent) == 1
    worker.stop.clear()
    clock.advance(3600)
    assert worker.run_once() is True
    assert len(transport.sent) == 2


def test_unexpected_exception_never_kills_the_loop(queue, make_worker):
    job_id = make_job(queue, ["+1", "+2"])
    worker, transport = make_worker()
    transport.script["+1"] = [ZeroDivisionError("bug")]
    transport.verdicts = {1: "unknown"}
    drain(worker)
    assert statuses(queue, job_id)["+1"][0] == "unknown"
    assert statuses(queue, job_id)["+2"][0] == "sent"


def test_run_exits_cleanly_and_says_stopped(queue, make_worker):
    worker, transport = make_worker()
    worker.stop.set()
    assert worker.run() == 0
    assert transport.closed == 1
    assert [w["state"] for w in queue.list_workers()] == ["stopped"]


def test_an_idle_worker_deletes_attachments_past_their_retention(
    queue, make_worker, clock, settings, tmp_path
):
    uploads = tmp_path / "uploads"
    uploads.mkdir(exist_ok=True)
    old, recent = uploads / "old.pdf", uploads / "recent.pdf"
    for path in (old, recent):
        path.write_bytes(b"%PDF")
    ids = []
    for path in (old, recent):
        job, _ = queue.create_job(
            NewJob(
                channel="whatsapp",
                template="hi",
                attachment_path=str(path),
                attachment_name=path.name,
            ),
            [Recipient(phone="+1", text="hi", channel="whatsapp")],
        )
        ids.append(job["id"])
        worker, _ = make_worker(upload_dir=str(uploads), attachment_retention_days=30)
        drain(worker, 3)  # sent: the job is finished now
        clock.advance(20 * 86_400)
    # The first job finished 40 days ago, the second 20: only the first file goes.
    worker, _ = make_worker(upload_dir=str(uploads), attachment_retention_days=30)
    worker.run_once()
    assert not old.exists() and recent.exists()
    assert queue.get_job(ids[0])["attachment_path"] is None
    assert queue.get_job(ids[0])["attachment_name"] == "old.pdf"  # still says what it was
