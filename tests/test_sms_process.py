"""The SMS worker as a real process (`run_worker.py`, WORKER_CHANNEL=sms) on the gateway stand-in.

Jobs are queued through the API (or the queue); workers run with every setting in an explicit
environment, in their own process group, and are killed with SIGKILL as the kernel would. Each
test compares what reached the stand-in with the rows in the database: every recipient exactly
once with its exact text, no row left `sending`.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from message_queue import NewJob, Recipient
from tests.sms_e2e_support import (
    SmsWorkers,
    assert_each_once,
    in_flight,
    rows,
    wait_job,
    worker_in,
    worker_row,
)
from tests.sms_standin import GatewayServer
from tests.wa_e2e_support import ROOT, WorkerThread, holds_for, wait_until
from worker.sms import gateway_id

WORKER = "sms-proc"
DONE = ("sent", "delivered")


@pytest.fixture(scope="module")
def server():
    # step_delay 0: a message is Delivered in the POST's answer, so a job is not paced by
    # polling; tests that need a message in flight slow the phone down themselves.
    with GatewayServer(step_delay=0) as srv:
        yield srv


@pytest.fixture
def gw(server):
    server.reset()
    return server


@pytest.fixture
def workers(settings, gw, tmp_path):
    procs = SmsWorkers(settings.database, gw.url, tmp_path)
    yield procs
    procs.close()


def phones(n: int, first: int = 0) -> list[str]:
    return [f"+5511912345{first + i:03d}" for i in range(n)]


def post_job(client, auth, **body) -> str:
    response = client.post("/send", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["rejected"] == []
    return response.get_json()["job_id"]


def queue_job(queue, numbers, text="SMS {phone} ✓") -> str:
    job, _ = queue.create_job(
        NewJob(channel="sms", template=text),
        [Recipient(phone=p, text=text.format(phone=p), channel="sms") for p in numbers],
    )
    return job["id"]


def status_of(queue, job_id, message_id) -> str:
    return next(r["status"] for r in rows(queue, job_id) if r["id"] == message_id)


def stop_cleanly(proc) -> None:
    """SIGTERM, exit 0, and nothing in the whole log that looks like a crash."""
    proc.terminate()
    assert proc.wait(15) == 0, proc.log()
    log = proc.log(10**6)
    assert "Traceback" not in log and " ERROR " not in log, log


def test_job_of_50_from_the_api_arrives_once_each_with_its_text(client, auth, queue, gw, workers):
    contacts = [
        {"phone": p, "name": f"Zoë {i}", "code": f"C-{i:02d}"} for i, p in enumerate(phones(50))
    ]
    job_id = post_job(
        client, auth, channel="sms", contacts=contacts, message="Olá {name}, seu código é {code} ✓"
    )
    worker = workers.start()
    wait_job(queue, job_id, "completed", 30, details=worker.log)

    assert_each_once(
        gw, {c["phone"]: f"Olá {c['name']}, seu código é {c['code']} ✓" for c in contacts}
    )
    status = client.get(f"/status/{job_id}", headers=auth).get_json()
    assert status["counts"]["sent"] + status["counts"]["delivered"] == 50
    assert {r["status"] for r in rows(queue, job_id)} <= set(DONE)
    stop_cleanly(worker)
    assert worker_row(queue, WORKER)["state"] == "stopped"


def test_gateway_away_mid_job_waits_and_resumes_by_itself(queue, gw, workers):
    numbers = phones(30, 100)
    job_id = queue_job(queue, numbers)
    worker = workers.start(sms_min_delay=0.1, sms_max_delay=0.1, send_timeout=2)
    wait_until(lambda: len(gw.accepted()) >= 10, 20, "10 messages to arrive", details=worker.log)
    # The phone leaves the Wi-Fi while the worker follows a message it holds Pending.
    gw.configure(step_delay=1.0)
    wait_until(
        lambda: in_flight(gw, queue, job_id, "Pending"),
        10,
        "a message held by the phone",
        interval=0.01,
        details=worker.log,
    )
    gw.refuse_connections(True)
    try:
        wait_job(queue, job_id, "waiting_for_gateway", 20, details=worker.log)
        wait_until(
            lambda: worker_in(queue, WORKER, "gateway_down"),
            10,
            "the worker to show gateway_down",
            details=lambda: queue.list_workers(),
        )
        arrived = len(gw.accepted())
        assert arrived < len(numbers)
        holds_for(
            lambda: (
                len(gw.accepted()) == arrived
                and queue.get_job(job_id)["status"] == "waiting_for_gateway"
            ),
            0.5,
            "nothing sent while the phone is away",
        )
    finally:
        gw.configure(step_delay=0)
        gw.refuse_connections(False)

    wait_job(queue, job_id, "completed", 40, details=worker.log)
    assert_each_once(gw, {p: f"SMS {p} ✓" for p in numbers})
    final = rows(queue, job_id)
    assert {r["status"] for r in final} <= set(DONE)
    assert [r["attempts"] for r in final] == [1] * len(numbers), "the outage burned attempts"
    stop_cleanly(worker)


def test_wrong_password_waits_without_sending_until_fixed(queue, gw, workers):
    numbers = phones(5, 200)
    job_id = queue_job(queue, numbers)
    gw.set_credentials("sms", "changed-on-the-phone")
    worker = workers.start()

    down = wait_until(
        lambda: worker_in(queue, WORKER, "gateway_down"),
        15,
        "the worker to show gateway_down",
        details=worker.log,
    )
    assert "SMS_GATEWAY_PASSWORD" in down["detail"]
    wait_job(queue, job_id, "waiting_for_gateway", 10, details=worker.log)
    holds_for(lambda: gw.accepted() == [], 0.3, "nothing sent with a refused password")
    assert [(r["status"], r["attempts"]) for r in rows(queue, job_id)] == [("pending", 0)] * 5

    gw.set_credentials("sms", "secret")
    wait_job(queue, job_id, "completed", 30, details=worker.log)
    assert_each_once(gw, {p: f"SMS {p} ✓" for p in numbers})
    assert [r["attempts"] for r in rows(queue, job_id)] == [1] * 5
    stop_cleanly(worker)


def test_sigkill_mid_send_and_restart_sends_each_message_exactly_once(queue, gw, workers):
    numbers = phones(8, 300)
    job_id = queue_job(queue, numbers, "Kill test {phone}")
    # Killed while the phone holds the message Pending, while it is Processed, and while a
    # slow phone (2 s a step) still holds it Pending when the restarted worker asks about it.
    # Each step_delay is in force before the worker that will be killed posts the message.
    plan = [("Pending", 0.3), ("Processed", 0.3), ("Pending", 2.0)]
    killed = []
    gw.configure(step_delay=plan[0][1])  # Pending 0.3 s, Processed 0.3 s, Sent, Delivered
    # SEND_TIMEOUT long enough to follow the slow message to Sent after the last restart.
    worker = workers.start(send_timeout=8)
    for kill, (on_phone, _) in enumerate(plan, 1):
        row = wait_until(
            lambda on_phone=on_phone: in_flight(gw, queue, job_id, on_phone),
            20,
            f"a message {on_phone} on the phone (kill {kill})",
            interval=0.01,
            details=worker.log,
        )
        worker.kill()
        assert worker.proc.returncode == -9
        killed.append(row)
        gw.configure(step_delay=plan[kill][1] if kill < len(plan) else 0.3)
        worker = workers.start(send_timeout=8)
        # The next kill must hit a fresh send, not this row's recovery.
        wait_until(
            lambda row=row: status_of(queue, job_id, row["id"]) != "sending",
            15,
            f"the restarted worker to settle message {row['id']}",
            details=worker.log,
        )

    wait_job(queue, job_id, "completed", 40, details=worker.log)
    final = rows(queue, job_id)
    counts = Counter(r["status"] for r in final)
    assert set(counts) <= set(DONE), counts  # nothing unknown, failed or left sending
    assert_each_once(gw, {p: f"Kill test {p}" for p in numbers})
    # Each killed message was looked up on the phone by its id and found to have gone out.
    log = worker.log(10**6)
    for row in killed:
        assert f"recovered message {row['id']}: sent" in log
    assert [r["attempts"] for r in final] == [1] * len(numbers)
    assert queue.integrity_check() == "ok"
    # Rows sent by a follow carry the gateway's id; the idle worker learns their delivery.
    tracked = {r["id"] for r in final if r["provider_id"]}
    assert tracked
    wait_until(
        lambda: {r["id"] for r in rows(queue, job_id) if r["status"] == "delivered"} >= tracked,
        15,
        "the delivery reports to be recorded",
        details=worker.log,
    )
    stop_cleanly(worker)


def test_timed_out_post_is_repeated_with_the_same_id_and_arrives_once(queue, gw, workers):
    worker = workers.start(sms_gateway_timeout=1)
    wait_until(
        lambda: worker_in(queue, WORKER, "logged_in"), 15, "the worker to be up", details=worker.log
    )
    gw.hang(30)  # the phone takes the POST but answers long after the 1 s read timeout
    try:
        job_id = queue_job(queue, ["+5511912345400"])
        wait_until(
            lambda: gw.accepted() and time.time() - gw.accepted()[0]["at"] > 1.8,
            10,
            "the first POST to arrive and time out",
            details=worker.log,
        )
    finally:
        gw.hang(0)
    wait_job(queue, job_id, "completed", 20, details=worker.log)

    assert_each_once(gw, {"+5511912345400": "SMS +5511912345400 ✓"})
    (row,) = rows(queue, job_id)
    assert (row["status"], row["attempts"], row["provider_id"]) == ("delivered", 1, gateway_id(row))
    posts = [
        status
        for method, path, status in gw.request_log()
        if (method, path) == ("POST", "/messages")
    ]
    assert 409 in posts, gw.request_log()
    stop_cleanly(worker)


# --- WhatsApp first, SMS for numbers not on WhatsApp ----------------------------------------


@pytest.fixture(scope="module")
def wa_server(chromium):
    from tests.wa_standin import StandinServer

    with StandinServer(tick_delay=0.05) as srv:
        yield srv


@pytest.mark.browser
def test_whatsapp_then_sms_sends_each_number_once_on_one_channel(
    client, auth, queue, settings, gw, workers, wa_server
):
    wa_server.reset()
    numbers = [f"+1415555{i:04d}" for i in range(100, 106)]
    not_on_wa = {numbers[1], numbers[4]}
    job_id = post_job(
        client, auth, channel="whatsapp_then_sms", numbers=numbers, message="Oi {phone} 😀"
    )
    wa_server.set_invalid(sorted(not_on_wa))
    wa_server.login()
    wa_settings = settings.replace(
        whatsapp_web_url=wa_server.url,
        send_timeout=10,
        selectors_file=str(ROOT / "worker" / "selectors.json"),
    )
    wa_worker = WorkerThread(wa_settings, queue)
    try:
        sms_worker = workers.start()
        wait_job(queue, job_id, "completed", 60, details=sms_worker.log)
    finally:
        wa_worker.stop()

    digits = {p: p.lstrip("+") for p in numbers}
    assert Counter((m["phone"], m["text"]) for m in wa_server.messages()) == Counter(
        (digits[p], f"Oi {p} 😀") for p in numbers if p not in not_on_wa
    )
    assert_each_once(gw, {p: f"Oi {p} 😀" for p in sorted(not_on_wa)})
    listed = client.get(f"/jobs/{job_id}/messages", headers=auth).get_json()["messages"]
    by_phone = {m["phone"]: m for m in listed}
    for p in numbers:
        if p in not_on_wa:
            assert by_phone[p]["channel"] == "sms" and by_phone[p]["status"] in DONE, by_phone[p]
            assert by_phone[p]["attempts"] == 1
        else:
            assert (by_phone[p]["channel"], by_phone[p]["status"]) == ("whatsapp", "sent")
    stop_cleanly(sms_worker)


@pytest.mark.parametrize(
    "raw, ok", [("1", True), ("0.5", True), ("0", False), ("-1", False), ("soon", False)]
)
def test_sms_gateway_timeout_is_read_validated_and_reaches_the_client(raw, ok):
    from config import ConfigError, Settings
    from worker.sms import SmsTransport

    env = {"SMS_GATEWAY_TIMEOUT": raw, "SMS_GATEWAY_URL": "http://127.0.0.1:9"}
    if not ok:
        with pytest.raises(ConfigError, match="SMS_GATEWAY_TIMEOUT"):
            Settings.from_env(environ=env, dotenv_path=None)
        return
    settings = Settings.from_env(environ=env, dotenv_path=None)
    assert SmsTransport(settings).client.timeout == (float(raw), float(raw))
    assert Settings().sms_gateway_timeout == 15.0  # the client's former fixed (5, 15)
    assert SmsTransport(Settings()).client.timeout == (5.0, 15.0)


def test_a_second_process_under_the_same_worker_id_is_refused(queue, gw, workers, tmp_path):
    import subprocess
    import sys

    from tests.sms_e2e_support import sms_worker_environment

    first = workers.start()
    wait_until(lambda: worker_in(queue, WORKER, "logged_in"), 20, "the first worker to log in")
    env = sms_worker_environment(workers.database_path, gw.url, WORKER)
    second = subprocess.run(
        [sys.executable, "run_worker.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stderr
    assert "in use by another running worker" in second.stderr
    assert first.proc.poll() is None and worker_in(queue, WORKER, "logged_in")
    stop_cleanly(first)
