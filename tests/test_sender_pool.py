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


def test_one_name_is_one_sender_a_second_live_process_is_refused(database):
    import pytest

    from message_queue import SenderInUse

    clock = Clock(T0)
    queue = make_queue(database, clock)
    queue.heartbeat("wa-1", "whatsapp", "logged_in", instance="host-a 10 aa")
    with pytest.raises(SenderInUse, match="wa-1"):
        queue.heartbeat("wa-1", "whatsapp", "starting", instance="host-b 20 bb")
    # A process that knows the holder is gone (a crash on its machine) takes the name over...
    queue.heartbeat("wa-1", "whatsapp", "starting", instance="host-a 11 cc", may_take_over=bool)
    # ...and the old one, come back, is refused; its last `stopped` changes nothing.
    with pytest.raises(SenderInUse):
        queue.heartbeat("wa-1", "whatsapp", "sending", instance="host-a 10 aa")
    queue.heartbeat("wa-1", "whatsapp", "stopped", instance="host-a 10 aa")
    (worker,) = queue.list_workers()
    assert worker["state"] == "starting"
    # Silent for longer than DISCONNECTED_AFTER, or stopped: the name is free again.
    clock.advance(61)
    queue.heartbeat("wa-1", "whatsapp", "starting", instance="host-b 20 bb")
    queue.heartbeat("wa-1", "whatsapp", "stopped", instance="host-b 20 bb")
    queue.heartbeat("wa-1", "whatsapp", "starting", instance="host-a 12 dd")


def test_the_worker_knows_an_earlier_life_on_its_own_machine_is_gone():
    import os
    import socket
    import subprocess
    import sys

    from worker.heartbeat import gone

    here = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert gone(f"{here} {dead.pid} aa")
    assert gone(f"{here} {os.getpid()} bb")  # this very process, started again in place
    assert not gone(f"{here} {os.getppid()} cc")  # alive
    assert not gone(f"elsewhere {dead.pid} dd")  # another machine: nobody can tell
