"""Replies by SMS: the phone's signed webhook and its inbox, stored once, never lost.

The phone is the gateway stand-in over real HTTP on 127.0.0.1; the API runs as a real server
where the phone must reach it, else through Flask's test client; the database is real SQLite.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from message_queue import NewJob, Recipient
from tests.sms_standin import GatewayServer
from tests.sms_standin.inbox import gson_dumps, sign
from utils.replies import take_inbound
from worker.sms import SmsTransport
from worker.sms.gateway import SmsGateClient
from worker.sms.inbound import PAGE

KEY = "k3yK3yK3"
ANA, BIA = "+5511912345678", "+5511987654321"
AT = "2026-11-22T10:00:00.000-03:00"
AT_EPOCH = 1795352400.0  # AT in seconds since the epoch


def wait_until(condition, seconds=10.0):
    """Poll `condition` until true or the deadline; its last value."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def event(text="Sim, pode ligar", sender=ANA, at=AT, event_id="Ey6ECgOkVVFjz3CL48B8C", **more):
    """An sms:received body as the app writes it (Gson: compact, HTML characters escaped)."""
    payload = {"message": text, "receivedAt": at, "messageId": "9ce3f2a1", "sender": sender}
    payload |= {"simNumber": 1, "phoneNumber": sender}
    body = {"id": event_id, "webhookId": "h1", "event": "sms:received", "deviceId": "dev1"}
    return gson_dumps(body | {"payload": payload} | more)


def post(client, body: bytes, key=KEY, stamp=None, signature=None, path="/hooks/smsgate"):
    stamp = str(int(time.time())) if stamp is None else str(stamp)
    headers = {"Content-Type": "application/json", "X-Timestamp": stamp}
    headers["X-Signature"] = signature if signature is not None else sign(body, key, stamp)
    return client.post(path, data=body, headers=headers)


def rows(queue):
    return queue.db.connection().execute("SELECT * FROM inbound ORDER BY id").fetchall()


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, sms_webhook_signing_key=KEY, default_country="BR")


# --- the webhook ------------------------------------------------------------------------------
def test_a_signed_webhook_is_stored_once_with_its_conversation(client, queue):
    response = post(client, event())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "stored"
    (row,) = rows(queue)
    assert (row["phone"], row["channel"], row["text"]) == (ANA, "sms", "Sim, pode ligar")
    assert row["received_at"] == AT_EPOCH and row["sender"] == "dev1"
    conversation = queue.db.connection().execute("SELECT * FROM conversations").fetchone()
    assert dict(conversation) | {"name": ""} == {
        "phone": ANA,
        "name": "",
        "unread": 1,
        "starred": 0,
        "last_message_at": AT_EPOCH,
        "last_text": "Sim, pode ligar",
        "last_direction": "in",
        "channel": "sms",
    }


def test_a_retry_and_a_resend_with_a_new_event_id_store_nothing_new(client, queue):
    assert post(client, event()).get_json()["status"] == "stored"
    assert post(client, event()).get_json()["status"] == "duplicate"  # retry: same event id
    resend = event(event_id="NewIdForTheSameSms0001", at="2026-11-22T13:00:00.000Z")
    response = post(client, resend)  # same instant written in UTC, new id: the same SMS
    assert (response.status_code, response.get_json()["status"]) == (200, "duplicate")
    assert len(rows(queue)) == 1
    unread = queue.db.connection().execute("SELECT unread FROM conversations").fetchone()[0]
    assert unread == 1


def test_the_same_text_at_another_second_is_another_reply(client, queue):
    post(client, event())
    post(client, event(at="2026-11-22T10:00:01.000-03:00", event_id="x2"))
    assert len(rows(queue)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 64},
        {"key": "another-key"},
        {"skew": -301},
        {"skew": 400},
        {"stamp": "soon"},
        {"signature": ""},
    ],
    ids=["wrong-signature", "wrong-key", "stale", "future", "bad-timestamp", "unsigned"],
)
def test_a_call_that_is_not_the_phone_s_is_refused_and_nothing_stored(client, queue, change):
    # A clock skew is applied now: a stamp taken when the tests were collected would age
    # into the accepted window during a long run.
    if "skew" in change:
        change = {"stamp": int(time.time()) + change["skew"]}
    response = post(client, event(), **change)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert rows(queue) == []


def test_a_body_changed_after_signing_is_refused(client, queue):
    body, stamp = event(), str(int(time.time()))
    tampered = body.replace(b"Sim", b"Nao")
    response = post(client, tampered, stamp=stamp, signature=sign(body, KEY, stamp))
    assert response.status_code == 401 and rows(queue) == []


def test_without_a_signing_key_every_call_is_refused_and_says_why(app, queue):
    settings = dataclasses.replace(app.config["SETTINGS"], sms_webhook_signing_key="")
    app.config["SETTINGS"] = settings
    response = post(app.test_client(), event())
    assert response.status_code == 401
    assert "SMS_WEBHOOK_SIGNING_KEY" in response.get_json()["detail"]
    assert rows(queue) == []


def test_the_webhook_needs_no_api_key_but_other_routes_still_do(client):
    assert post(client, event()).status_code == 200
    assert client.get("/jobs").status_code == 401


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json {", 400),
        (b"[1, 2]", 400),
        (json.dumps({"event": "sms:received", "payload": {"message": 1}}).encode(), 422),
        (event(at="yesterday"), 422),
        (event(at="2026-11-22T10:00:00"), 422),
        (event(sender=""), 422),
    ],
    ids=["not-json", "not-object", "bad-payload", "bad-time", "no-offset", "no-sender"],
)
def test_a_signed_body_that_is_not_an_sms_gets_a_clear_4xx(client, queue, body, status):
    response = post(client, body)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert rows(queue) == []


@pytest.mark.parametrize("name", ["sms:delivered", "sms:sent", "sms:failed", "mms:received", "x:y"])
def test_events_we_do_not_act_on_are_answered_2xx_so_the_phone_stops(client, queue, name):
    body = gson_dumps({"id": "e1", "event": name, "deviceId": "d", "payload": {}})
    response = post(client, body)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert rows(queue) == []


def test_a_one_megabyte_text_is_refused_before_anything_is_read(client, queue):
    response = post(client, event(text="a" * 1_000_000))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert rows(queue) == []


def test_a_reply_is_linked_to_the_job_that_last_reached_the_number(client, queue):
    old = make_sent_job(queue, ANA, "Ana Old")
    new = make_sent_job(queue, ANA, "Ana Souza")
    make_job(queue, ANA, "Queued Later")  # not sent yet: not what she answers
    at = time.time()
    post(client, event(at=iso(at)))
    (row,) = rows(queue)
    assert row["job_id"] == new and row["job_id"] != old


def test_a_new_thread_is_named_from_the_newest_job_that_had_the_number(client, queue):
    make_job(queue, BIA, "Bia Old")
    make_job(queue, BIA, "Bia Lima")  # queued, not sent: names the thread, owns no reply
    post(client, event(sender=BIA))
    assert rows(queue)[0]["job_id"] is None
    name = queue.db.connection().execute("SELECT name FROM conversations").fetchone()[0]
    assert name == "Bia Lima"


def test_an_alphanumeric_sender_keeps_its_own_conversation(client, queue):
    post(client, event(sender="VIVO", text="Seu saldo"))
    assert [r["phone"] for r in rows(queue)] == ["VIVO"]


def test_a_national_sender_number_is_stored_in_e164(client, queue):
    post(client, event(sender="11912345678"))
    assert [r["phone"] for r in rows(queue)] == [ANA]


def test_the_receiving_worker_is_named_from_the_registered_url(client, queue):
    post(client, event(), path="/hooks/smsgate?worker=phone-1-sms")
    assert rows(queue)[0]["sender"] == "phone-1-sms"


def test_stop_by_sms_suppresses_the_number(client, queue):
    if not hasattr(queue, "add_suppressions"):
        pytest.skip("suppressions (utils/optout.py, message_queue/suppressions.py) not in yet")
    post(client, event(text=" Stop! "))
    found = queue.db.connection().execute("SELECT phone, reason FROM suppressions").fetchall()
    assert [tuple(r) for r in found] == [(ANA, "keyword")]
    post(client, event(text="START", at="2026-11-22T10:05:00.000-03:00", event_id="e2"))
    assert queue.db.connection().execute("SELECT count(*) FROM suppressions").fetchone()[0] == 0


# --- the phone, the worker and the API together ------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """The API on a real port in a thread; stop and start it again on the same port."""

    def __init__(self, app, port=None):
        self.app, self.port = app, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self):
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def phone():
    with GatewayServer(webhook_retry_delay=0.02) as gw:
        yield gw


@pytest.fixture
def api(app):
    server = ApiServer(app)
    yield server
    server.stop()


def transport_for(settings, gw, api_url, **changes):
    worker_settings = dataclasses.replace(
        settings,
        sms_gateway_url=gw.url,
        sms_gateway_password="secret",
        sms_gateway_timeout=3.0,
        sms_webhook_url=api_url + "/hooks/smsgate",
        worker_id="phone-1",
        **changes,
    )
    transport = SmsTransport(worker_settings)
    assert transport.check_session().state == "logged_in"
    return transport


def take_all(queue, settings, transport, since=None) -> list[bool]:
    """What the worker loop does with a poll: each Inbound to take_inbound."""
    return [
        take_inbound(
            queue,
            settings,
            phone=item.phone,
            channel="sms",
            sender="phone-1",
            text=item.text,
            received_at=item.received_at,
            kind=item.kind,
            provider_id=item.provider_id,
        )
        for item in transport.poll_inbound(since)
    ]


def test_the_worker_registers_the_webhook_and_a_reply_comes_in_once(settings, queue, phone, api):
    api.start()
    transport = transport_for(settings, phone, api.url)
    assert take_all(queue, settings, transport) == []  # registers, catches up: nothing yet
    assert transport.inbound_problem is None
    (hook,) = phone.inbox.list_hooks()
    assert hook["url"] == api.url + "/hooks/smsgate?worker=phone-1"
    assert phone.inbox.signing_key == KEY
    phone.inbox.receive(BIA, "Quero saber mais", at=time.time())
    assert wait_until(lambda: len(rows(queue)) == 1)
    assert rows(queue)[0]["sender"] == "phone-1"
    transport.inbox.next_sweep = 0  # the inbox sweep finds the same SMS: stored once
    assert take_all(queue, settings, transport) == [False]
    assert len(rows(queue)) == 1


def test_replies_that_came_while_the_api_was_down_come_in_by_the_catch_up(
    settings, queue, phone, app
):
    api = ApiServer(app)  # not started: the phone's webhooks fail and are retried
    phone.inbox.settings["retry_count"] = 3
    first = transport_for(settings, phone, api.url)
    first.poll_inbound()
    now = time.time()
    for n in range(3):
        phone.inbox.receive(ANA, f"resposta {n}", at=now - 60 + n)
    assert wait_until(phone.inbox.idle)  # all three given up on by the phone
    statuses = {a["status"] for a in phone.inbox.attempts}
    assert len(phone.inbox.attempts) == 9 and all(isinstance(s, str) for s in statuses)
    try:
        api.start()
        again = transport_for(settings, phone, api.url)  # the worker (re)connects
        assert take_all(queue, settings, again) == [True, True, True]
        phone.inbox.receive(ANA, "resposta 0", at=now - 60)  # a late copy (the phone re-read)
        assert wait_until(phone.inbox.idle)
        assert sorted(r["text"] for r in rows(queue)) == ["resposta 0", "resposta 1", "resposta 2"]
    finally:
        api.stop()


def test_a_webhook_retry_after_the_catch_up_stores_nothing_new(settings, queue, phone, app):
    api = ApiServer(app)
    transport = transport_for(settings, phone, api.url)
    transport.poll_inbound()
    phone.inbox.receive(ANA, "oi", at=time.time())
    assert wait_until(lambda: phone.inbox.attempts)  # the first attempt failed
    transport.inbox.next_sweep = 0
    assert take_all(queue, settings, transport) == [True]
    try:
        api.start()  # the phone's next retry, same event id, arrives: a duplicate
        assert wait_until(lambda: any(a["status"] == 200 for a in phone.inbox.attempts))
        assert len(rows(queue)) == 1
    finally:
        api.stop()


def test_where_the_phone_refuses_the_url_the_worker_says_so_and_reads_the_inbox(
    settings, queue, phone
):
    transport = transport_for(settings, phone, "http://192.168.1.10:8000")
    assert take_all(queue, settings, transport) == []
    assert "url must start with https:// or http://127.0.0.1" in transport.inbound_problem
    assert phone.inbox.list_hooks() == []
    phone.inbox.receive(ANA, "pelo inbox", at=time.time())
    transport.inbox.next_sweep = 0
    assert take_all(queue, settings, transport) == [True]
    assert take_all(queue, settings, transport) == []  # nothing handed on twice


def test_a_flood_of_webhooks_is_taken_each_once(settings, queue, phone, api):
    api.start()
    transport = transport_for(settings, phone, api.url)
    transport.poll_inbound()
    now = int(time.time())
    for n in range(60):
        phone.inbox.receive(f"+55119{n:08d}", f"flood {n}", at=now - n)
        phone.inbox.receive(f"+55119{n:08d}", f"flood {n}", at=now - n)  # second copy
    assert wait_until(phone.inbox.idle, seconds=30)
    assert len(rows(queue)) == 60
    assert {a["status"] for a in phone.inbox.attempts} == {200}


# --- helpers for jobs ---------------------------------------------------------------------------
def make_job(queue, phone, name):
    job, _ = queue.create_job(
        NewJob(channel="sms", template="x"), [Recipient(phone, "Olá", "sms", name=name)]
    )
    return job["id"]


def make_sent_job(queue, phone, name):
    job_id = make_job(queue, phone, name)
    claimed = queue.claim_next("sms", "w")
    assert claimed is not None and claimed["job_id"] == job_id
    queue.mark_sent(claimed["id"], "w", provider_id="p")
    return job_id


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="milliseconds")


def test_reading_a_phone_that_is_away_gives_nothing_and_never_raises(settings, queue, phone):
    transport = transport_for(settings, phone, "https://example.invalid")
    phone.refuse_connections(True)
    started = time.monotonic()
    assert transport.poll_inbound() == []
    assert time.monotonic() - started < 3.0  # one gateway timeout at most
    phone.refuse_connections(False)
    phone.inbox.receive(ANA, "voltei", at=time.time())
    assert transport.check_session().state == "logged_in"
    assert [i.text for i in transport.poll_inbound()] == ["voltei"]


class StopAfterAPage(SmsGateClient):
    """The phone's client, with the worker's first SIGTERM coming as a page of the inbox is read."""

    def __init__(self, stop: threading.Event, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop, self.pages = stop, 0

    def inbox(self, since, limit, offset):
        self.pages += 1
        self.stop.set()
        return super().inbox(since, limit, offset)


def test_a_stop_during_an_inbox_sweep_ends_it_after_the_page_being_read(settings, phone):
    now = time.time()
    for n in range(2 * PAGE + 50):
        phone.inbox.receive(f"+55119{n:08d}", f"oi {n}", at=now - n)
    stop = threading.Event()
    client = StopAfterAPage(stop, phone.url, "sms", "secret", timeout=(3.0, 3.0))
    worker_settings = dataclasses.replace(settings, sms_webhook_url="", sms_gateway_timeout=3.0)
    transport = SmsTransport(worker_settings, client=client)
    assert transport.check_session().state == "logged_in"
    assert len(transport.poll_inbound(stop=stop)) == PAGE and client.pages == 1
    assert transport.poll_inbound(stop=stop) == [] and client.pages == 1  # stopped: no read
    stop.clear()  # a worker started again goes on where the sweep stopped
    client.stop = threading.Event()
    assert len(transport.poll_inbound(stop=stop)) == PAGE + 50


def test_without_a_signing_key_the_webhook_is_not_registered_and_it_says_so(settings, queue, phone):
    transport = transport_for(
        settings, phone, "https://example.invalid", sms_webhook_signing_key=""
    )
    transport.poll_inbound()
    assert "SMS_WEBHOOK_SIGNING_KEY is not set" in transport.inbound_problem
    assert phone.inbox.list_hooks() == []


def test_the_catch_up_starts_at_the_newest_stored_reply_within_a_week(settings, queue, phone):
    now = time.time()
    phone.inbox.receive(ANA, "three days ago", at=now - 3 * 86400)
    phone.inbox.receive(ANA, "ten days ago", at=now - 10 * 86400)
    transport = transport_for(settings, phone, "https://example.invalid")
    found = transport.poll_inbound(since=now - 4 * 86400)
    assert [i.text for i in found] == ["three days ago"]
    assert found[0].provider_id and found[0].kind == "text"


def test_stop_by_sms_is_confirmed_once_when_a_confirmation_is_set(app, queue):
    app.config["SETTINGS"] = dataclasses.replace(
        app.config["SETTINGS"], opt_out_confirmation="Você não receberá mais mensagens."
    )
    client = app.test_client()
    post(client, event(text="PARAR"))
    post(client, event(text="PARAR", event_id="resent-with-a-new-id"))  # the same SMS again
    jobs = queue.db.connection().execute("SELECT phone, text FROM messages").fetchall()
    assert [tuple(j) for j in jobs] == [(ANA, "Você não receberá mais mensagens.")]
