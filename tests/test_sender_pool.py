"""A pool of senders on one channel (contract section 9, its first slice on SQLite): a job may
name the senders it uses; one account logged out leaves the others sending, and a job waits
for a login only when none of its senders can send."""

from __future__ import annotations

from message_queue import NewJob, Queue, Recipient
from tests.fakes import Clock

T0 = 1_800_000_000.0


def make_queue(database, clock) -> Queue:
    return Queue(database, clock=clock)


def add_job(queue, n=3, senders=(), channel="whatsapp") -> str:
    row, _ = queue.create_job(
        NewJob(channel=channel, template="x", senders=tuple(senders)),
        [Recipient(f"+5511990{i:06d}", "x", "whatsapp") for i in range(n)],
    )
    return row["id"]


def test_a_job_that_names_its_senders_is_sent_only_by_them(database):
    clock = Clock(T0)
    queue = make_queue(database, clock)
    named = add_job(queue, senders=["wa-2"])
    assert queue.get_job(named)["senders"] == ["wa-2"]
    assert queue.claim_next("whatsapp", "wa-1") is None
    assert queue.claim_next("whatsapp", "wa-2")["job_id"] == named
    anyone = add_job(queue)
    assert queue.claim_next("whatsapp", "wa-1")["job_id"] == anyone


def test_one_account_logged_out_leaves_the_rest_sending(database):
    clock = Clock(T0)
    queue = make_queue(database, clock)
    shared = add_job(queue)
    only_one = add_job(queue, senders=["wa-1"])
    queue.heartbeat("wa-1", "whatsapp", "logged_in")
    queue.heartbeat("wa-2", "whatsapp", "logged_in")

    # wa-1 is logged out: only the job nobody else may send waits for its login.
    assert queue.set_channel_waiting("whatsapp", "waiting_for_login", "wa-1") == [only_one]
    queue.heartbeat("wa-1", "whatsapp", "qr_required")
    assert queue.get_job(shared)["status"] == "pending"

    # wa-2 too: now nobody can send the shared job.
    assert queue.set_channel_waiting("whatsapp", "waiting_for_login", "wa-2") == [shared]
    queue.heartbeat("wa-2", "whatsapp", "qr_required")

    # wa-2 back: it resumes what it may send, not the job only wa-1 may.
    assert queue.end_channel_waiting("whatsapp", "waiting_for_login", "wa-2") == [shared]
    assert queue.get_job(only_one)["status"] == "waiting_for_login"
    assert queue.end_channel_waiting("whatsapp", "waiting_for_login", "wa-1") == [only_one]


def test_a_silent_sender_does_not_keep_jobs_from_waiting(database):
    clock = Clock(T0)
    queue = make_queue(database, clock)
    job = add_job(queue)
    queue.heartbeat("wa-2", "whatsapp", "logged_in")
    clock.advance(61)  # wa-2 has gone quiet: it cannot send
    assert queue.set_channel_waiting("whatsapp", "waiting_for_login", "wa-1") == [job]


def test_send_takes_senders_from_session_and_refuses_others(client, auth, queue):
    queue.heartbeat("wa-1", "whatsapp", "logged_in")
    queue.heartbeat("sms-1", "sms", "logged_in")
    body = {"message": "Hi", "numbers": ["+5511991234567"]}
    r = client.post("/send", json=body | {"senders": ["wa-1"]}, headers=auth)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["senders"] == ["wa-1"]
    for bad in (["sms-1"], ["nope"], [], "wa-1", [1]):
        r = client.post("/send", json=body | {"senders": bad}, headers=auth)
        assert r.status_code == 422, bad
        assert r.get_json()["errors"][0]["field"] == "senders"
    # whatsapp_then_sms may use both kinds.
    r = client.post(
        "/send",
        json=body | {"senders": ["wa-1", "sms-1"], "channel": "whatsapp_then_sms"},
        headers=auth,
    )
    assert r.status_code == 202
    form = {"message": "Hi", "numbers": "+5511991234568", "senders": "wa-1"}
    r = client.post("/send", data=form, headers=auth, content_type="multipart/form-data")
    assert r.status_code == 202 and r.get_json()["senders"] == ["wa-1"]
    assert queue.count_jobs(active_only=False) == 3


def test_each_account_serves_its_own_login_qr(client, auth, queue):
    queue.heartbeat("wa-1", "whatsapp", "qr_required")
    queue.save_qr("wa-1", b"\x89PNG one")
    queue.heartbeat("wa-2", "whatsapp", "qr_required")
    queue.save_qr("wa-2", b"\x89PNG two")
    assert client.get("/session/qr.png?worker_id=wa-1", headers=auth).data == b"\x89PNG one"
    assert client.get("/session/qr.png?worker_id=wa-2", headers=auth).data == b"\x89PNG two"
    assert client.get("/session/qr.png", headers=auth).status_code == 200
    assert client.get("/session/qr.png?worker_id=wa-3", headers=auth).status_code == 404
