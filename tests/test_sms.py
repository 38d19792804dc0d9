"""The SMS transport and worker against the gateway stand-in, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest

from message_queue import NewJob, Recipient
from tests.sms_standin import GatewayServer
from worker import transport as t
from worker.errors import (
    ConfigurationError,
    GatewayDownError,
    PermanentSendError,
    RetryableSendError,
    UncertainSendError,
)
from worker.sms import SmsTransport, gateway_id
from worker.sms.gateway import SmsGateClient
from worker.worker import Worker


@pytest.fixture(scope="module")
def server():
    with GatewayServer(step_delay=0.02) as srv:
        yield srv


@pytest.fixture
def gw(server):
    server.reset()
    return server


@pytest.fixture
def sms_settings(settings, gw):
    return settings.replace(
        sms_gateway_url=gw.url, sms_gateway_password="secret", worker_id="sms-1", send_timeout=3
    )


def transport_for(settings, timeout=(1.0, 1.0)):
    client = SmsGateClient(
        settings.sms_gateway_url,
        settings.sms_gateway_username,
        settings.sms_gateway_password,
        timeout=timeout,
    )
    return SmsTransport(settings, client=client)


def make_job(queue, phones):
    job, _ = queue.create_job(
        NewJob(channel="sms", template="x"),
        [Recipient(phone=p, text=f"Olá {p} ✓", channel="sms") for p in phones],
    )
    return job["id"]


def message(queue, job_id, worker="sms-1"):
    return queue.claim_next("sms", worker)


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def run_worker(settings, queue, stop):
    worker = Worker(
        settings, queue, transport_for(settings), stop, idle_poll=0.05, session_poll=0.05
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_sends_and_follows_to_delivered(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    result = transport_for(sms_settings).send(m)
    assert result.delivered and result.provider_id == gateway_id(m)
    assert [(a["id"], a["phone"], a["text"]) for a in gw.accepted()] == [
        (gateway_id(m), "+5511912345678", "Olá +5511912345678 ✓")
    ]


def test_health_and_credentials_decide_the_session(sms_settings, gw):
    assert transport_for(sms_settings).check_session().state == t.LOGGED_IN
    gw.set_health("fail")  # connection:status failing: a phone without internet still sends SMS
    assert transport_for(sms_settings).check_session().state == t.LOGGED_IN
    gw.set_health("pass")
    gw.set_credentials("sms", "other")
    state = transport_for(sms_settings).check_session()
    assert state.state == t.REFUSED and "SMS_GATEWAY_PASSWORD" in state.detail
    gw.fail_with(503)
    assert transport_for(sms_settings).check_session().state == t.UNAVAILABLE


def test_unreachable_phone_is_a_gateway_problem_not_the_message(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    gw.refuse_connections(True)
    try:
        with pytest.raises(GatewayDownError):
            transport_for(sms_settings).send(m)
        assert transport_for(sms_settings).check_session().state == t.UNAVAILABLE
    finally:
        gw.refuse_connections(False)
    assert gw.accepted() == []


def test_timed_out_post_is_repeated_with_the_same_id_and_sent_once(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    gw.hang(3)  # the phone takes the message but answers too late for a 1 s read timeout
    transport = transport_for(sms_settings)
    threading.Timer(1.5, gw.hang, args=(0,)).start()
    result = transport.send(m)
    assert result.provider_id == gateway_id(m)
    assert len(gw.accepted()) == 1
    assert ("POST", "/messages", 409) in gw.request_log()


def test_wrong_password_and_bad_request(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    gw.set_credentials("sms", "changed")
    with pytest.raises(ConfigurationError):
        transport_for(sms_settings).send(m)
    gw.set_credentials("sms", "secret")
    with pytest.raises(PermanentSendError) as info:
        transport_for(sms_settings).send(dict(m, text=""))  # the gateway answers 400
    assert info.value.code == "gateway_rejected"
    assert "empty" in str(info.value).lower()
    assert gw.accepted() == []


@pytest.mark.parametrize(
    "reason, error",
    [
        ("RESULT_ERROR_NO_SERVICE", RetryableSendError),
        ("RESULT_ERROR_LIMIT_EXCEEDED", RetryableSendError),
        ("RESULT_ERROR_NULL_PDU", PermanentSendError),
    ],
)
def test_failed_reasons_retry_or_fail(queue, sms_settings, gw, reason, error):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    gw.fail_message("+5511912345678", reason)
    with pytest.raises(error) as info:
        transport_for(sms_settings).send(m)
    assert info.value.code == f"gateway_failed:{reason}"


def test_stuck_in_processed_is_never_resent(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    m = message(queue, job_id)
    gw.stick_in_processed("+5511912345678")
    transport = transport_for(sms_settings.replace(send_timeout=0.5))
    with pytest.raises(UncertainSendError):
        transport.send(m)
    assert transport.verify(m) == "unknown"
    assert len(gw.accepted()) == 1


def test_verify_after_a_crash_asks_the_phone(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678", "+5511912345679"])
    sent, never_posted = message(queue, job_id), message(queue, job_id)
    transport = transport_for(sms_settings)
    transport.client.send(gateway_id(sent), sent["phone"], sent["text"], 3600)
    assert wait_until(lambda: transport.client.get(gateway_id(sent))["state"] == "Delivered")
    assert transport.verify(sent) == "sent"
    assert transport.verify(never_posted) == "not_sent"


def test_worker_sends_a_job_once_each_and_records_delivery(queue, sms_settings, gw):
    phones = [f"+55119123456{i:02d}" for i in range(20)]
    job_id = make_job(queue, phones)
    stop = threading.Event()
    thread = run_worker(sms_settings, queue, stop)
    try:
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "completed", 20)
    finally:
        stop.set()
        thread.join(10)
    assert sorted(a["phone"] for a in gw.accepted()) == sorted(phones)
    assert queue.get_job(job_id)["counts"]["delivered"] == 20


def test_gateway_away_mid_job_waits_and_resumes(queue, sms_settings, gw):
    phones = [f"+55119123457{i:02d}" for i in range(10)]
    job_id = make_job(queue, phones)
    stop = threading.Event()
    gw.refuse_connections(True)
    thread = run_worker(sms_settings, queue, stop)
    try:
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "waiting_for_gateway")
        assert [w["state"] for w in queue.list_workers()] == ["gateway_down"]
        gw.refuse_connections(False)
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "completed", 20)
    finally:
        gw.refuse_connections(False)
        stop.set()
        thread.join(10)
    assert sorted(a["phone"] for a in gw.accepted()) == sorted(phones)


def test_wrong_password_stops_sending_without_burning_attempts(queue, sms_settings, gw):
    job_id = make_job(queue, ["+5511912345678"])
    gw.set_credentials("sms", "changed")
    stop = threading.Event()
    thread = run_worker(sms_settings, queue, stop)
    try:
        assert wait_until(lambda: [w["state"] for w in queue.list_workers()] == ["gateway_down"])
        worker = queue.list_workers()[0]
        assert "SMS_GATEWAY_PASSWORD" in worker["detail"]
        assert queue.get_job(job_id)["status"] == "waiting_for_gateway"
        rows, _ = queue.list_messages(job_id)
        assert rows[0]["attempts"] == 0 and gw.accepted() == []
        gw.set_credentials("sms", "secret")
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "completed", 20)
    finally:
        stop.set()
        thread.join(10)


def test_a_phone_gone_mid_send_shows_at_once_and_the_message_is_settled_after(
    queue, sms_settings, gw
):
    """The phone took the message and vanished while it was followed: the outage shows within
    seconds (not after SEND_TIMEOUT), the row stays `sending` until the phone can say what
    became of it, and it is never sent twice."""
    gw.configure(step_delay=1.0)  # Pending -> Processed -> Sent takes a couple of seconds
    job_id = make_job(queue, ["+5511912345801", "+5511912345802"])
    stop = threading.Event()
    thread = run_worker(sms_settings.replace(send_timeout=60), queue, stop)
    try:
        assert wait_until(lambda: len(gw.accepted()) == 1)
        gw.refuse_connections(True)
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "waiting_for_gateway", 5)
        assert [w["state"] for w in queue.list_workers()] == ["gateway_down"]
        rows, _ = queue.list_messages(job_id)
        assert [r["status"] for r in rows] == ["sending", "pending"]
        gw.refuse_connections(False)
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "completed", 20)
    finally:
        gw.refuse_connections(False)
        stop.set()
        thread.join(10)
    assert sorted(a["phone"] for a in gw.accepted()) == ["+5511912345801", "+5511912345802"]
    rows, _ = queue.list_messages(job_id)
    assert {r["status"] for r in rows} <= {"sent", "delivered"}


def test_the_worker_reads_replies_while_it_sends_and_a_stop_cancels_what_is_queued(
    queue, sms_settings, gw
):
    """No webhook configured: the worker reads the phone's inbox between sends. A reply lands
    in its conversation; STOP from a number still queued cancels its row before it is sent."""
    phones = [f"+55119123459{i:02d}" for i in range(6)]
    job_id = make_job(queue, phones)
    stop = threading.Event()
    paced = sms_settings.replace(sms_min_delay=0.4, sms_max_delay=0.4)
    thread = run_worker(paced, queue, stop)
    try:
        assert wait_until(lambda: len(gw.accepted()) >= 1)
        gw.inbox.receive(phones[0], "Thanks, got it")
        gw.inbox.receive(phones[-1], " Stop! ")  # the last one is still queued
        assert wait_until(lambda: queue.get_job(job_id)["status"] == "completed", 30)
    finally:
        stop.set()
        thread.join(10)
    assert phones[-1] not in [a["phone"] for a in gw.accepted()]
    rows = {m["phone"]: m for m in queue.list_messages(job_id, limit=10)[0]}
    assert (rows[phones[-1]]["status"], rows[phones[-1]]["error"]) == ("cancelled", "opted_out")
    thread_rows, _ = queue.conversation_messages(phones[0], 50, 0)
    # The phone stamps a reply in whole seconds, so it may sort beside the send it answers.
    assert ("in", "Thanks, got it") in [(m["direction"], m["text"]) for m in thread_rows]
    assert queue.suppressed([phones[-1]]) == {phones[-1]}
