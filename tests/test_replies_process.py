"""Replies, opt-outs and the phone's webhook end to end, every part a real process (issue 13).

The API is gunicorn on 127.0.0.1, the SMS worker and the WhatsApp worker are `run_worker.py`
processes (tests/replies_process_support.py); the phone and WhatsApp Web are the stand-ins.
The tests share those processes and one database, each with its own numbers, and talk to the
API over HTTP with the API key, as a person's script would. Both workers send one message a
second (PACE), so a job of ten rows is still running when a STOP comes in.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest
import requests

from tests.replies_process_support import KEY, SMS_WORKER, WA_WORKER, Deployment
from tests.sms_standin.inbox import gson_dumps, java_time, sign
from tests.wa_e2e_support import wait_until

pytestmark = pytest.mark.browser

READ_WITHIN = 20.0  # seconds a reply may take to be listed (the contract allows 60)
OTHER = {"sms": "whatsapp", "whatsapp": "sms"}


@pytest.fixture(scope="module")
def deployment(chromium, tmp_path_factory):
    rig = Deployment(tmp_path_factory.mktemp("replies-process"))
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


@pytest.fixture(scope="module")
def http(deployment):
    return deployment.http


def number(n: int) -> str:
    """A number that is on WhatsApp and takes SMS (the tests keep theirs apart by `n`)."""
    return f"+1415555{n:04d}"


def wait_reply(http, phone: str, count: int = 1, details=None) -> list[dict]:
    """Wait until `phone` has written `count` replies; them, oldest first."""
    return wait_until(
        lambda: len(found := http.replies(phone)) >= count and found,
        READ_WITHIN,
        f"{count} repl(ies) from {phone} in its conversation",
        interval=0.1,
        details=details,
    )


def after_the_second_it_was_sent(http, job_id: str, phone: str) -> None:
    """Wait until the clock has left the second in which the job's message to `phone` went.

    A reply carries whole seconds (the SMSC's time; for WhatsApp, the second it was read): one
    stamped in the very second of the send would sort before it, in the thread and in the
    conversation's last line. A person takes longer than that to answer.
    """
    sent = datetime.fromisoformat(http.rows(job_id)[phone]["sent_at"].replace("Z", "+00:00"))
    boundary = int(sent.timestamp()) + 1
    wait_until(lambda: time.time() >= boundary, 2, "the next second")


# --- a reply shows up in its conversation and on its campaign -------------------------------
@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_a_reply_shows_in_its_conversation_and_on_its_campaign(deployment, http, channel):
    phone = number(1 if channel == "sms" else 2)
    job_id = http.send(channel=channel, name=f"{channel} offer", numbers=[phone], message="Hi")[
        "job_id"
    ]
    http.wait_job(job_id, details=deployment.details)
    after_the_second_it_was_sent(http, job_id, phone)
    text = "Sim, quero! 🎉" if channel == "whatsapp" else "Sim, quero!"
    deployment.reply(channel, phone, text)

    (reply,) = wait_reply(http, phone, details=deployment.details)
    assert (reply["channel"], reply["text"], reply["status"]) == (channel, text, "received")
    assert reply["job_id"] == job_id
    assert reply["sender"] == (SMS_WORKER if channel == "sms" else WA_WORKER)
    listed = http.conversation(phone)
    assert listed is not None, "the conversation is not in GET /conversations"
    assert (listed["last_direction"], listed["channel"], listed["last_text"]) == (
        "in",
        channel,
        text,
    )
    assert listed["unread"] == 1
    assert http.status(job_id)["replies"] == 1


# --- STOP on one channel stops the other ---------------------------------------------------
@pytest.mark.parametrize("stop_by", ["sms", "whatsapp"])
def test_stop_suppresses_the_number_and_cancels_its_row_in_a_running_campaign(
    deployment, http, stop_by
):
    """M answers STOP to campaign A on one channel while campaign B sends on the other.

    B's row for M is the last of ten, sent a second apart: it is cancelled before its turn.
    """
    running = OTHER[stop_by]
    base = 100 if stop_by == "sms" else 200
    m, others = number(base), [number(base + i) for i in range(1, 10)]
    first = http.send(channel=stop_by, name="A", numbers=[m], message="Promo {phone}")
    http.wait_job(first["job_id"], details=deployment.details)
    campaign = http.send(channel=running, name="B", numbers=[*others, m], message="News {phone}")
    b = campaign["job_id"]
    wait_until(
        lambda: deployment.arrivals(running)[others[0]],
        30,
        f"B's first message on {running}",
        interval=0.05,
        details=deployment.details,
    )
    deployment.reply(stop_by, m, "Stop!" if stop_by == "sms" else "  parar ")

    suppression = wait_until(
        lambda: http.suppression(m),
        READ_WITHIN,
        f"{m} in GET /suppressions",
        interval=0.1,
        details=deployment.details,
    )
    assert (suppression["reason"], suppression["source"]) == ("keyword", stop_by)
    rows = http.rows(b)
    assert (rows[m]["status"], rows[m]["error"]) == ("cancelled", "opted_out")
    # The opt-out came while B was sending: some of its rows were still to go.
    assert any(rows[p]["status"] == "pending" for p in others), rows

    status = http.wait_job(b, details=deployment.details)
    assert status["opted_out"] == 1
    assert status["counts"]["cancelled"] == 1
    assert status["counts"]["sent"] + status["counts"]["delivered"] == len(others)
    arrived = deployment.arrivals(running)
    assert arrived[m] == 0, f"{m} opted out and still got B's message on {running}"
    assert [arrived[p] for p in others] == [1] * len(others)
    assert http.replies(m)[-1]["job_id"] == first["job_id"]  # the STOP answered A
    assert http.status(first["job_id"])["replies"] == 1

    again = http.send(channel=running, name="C", numbers=[number(base + 10), m], message="Hey")
    assert again["rejected"] == [{"row": 2, "phone": m, "reason": "opted_out"}]
    assert again["total"] == 1
    http.wait_job(again["job_id"], details=deployment.details)  # the workers idle again
    assert deployment.arrivals(running)[m] == 0


# --- the webhook: signed by the phone, stored once ------------------------------------------
def sms_received(phone: str, text: str, at: int, event_id: str) -> bytes:
    """An sms:received body as the phone writes it (tests/sms_standin/inbox.py, Gson)."""
    payload = {
        "message": text,
        "receivedAt": java_time(at * 1000, "-03:00"),
        "messageId": "5eed1e55",
        "sender": phone,
        "simNumber": 1,
        "phoneNumber": phone,
    }
    envelope = {"id": event_id, "webhookId": "h1", "event": "sms:received", "deviceId": "dev1"}
    return gson_dumps(envelope | {"payload": payload})


def signed(body: bytes, key: str = KEY, stamp: int | None = None) -> dict:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "Content-Type": "application/json; charset=UTF-8",
        "X-Timestamp": str(stamp),
        "X-Signature": sign(body, key, stamp),
    }


def test_a_bad_signature_is_refused_and_a_replayed_webhook_stores_nothing_new(deployment, http):
    phone, text, at = number(300), "Quero saber mais", int(time.time())
    hook = http.url + "/hooks/smsgate"
    body = sms_received(phone, text, at, "EvT0000000000000000a1")
    other = sms_received(phone, "Nao quero", at, "EvT0000000000000000a1")
    not_the_phone = {
        "wrong key": (body, signed(body, key="an0therK")),
        "body changed after signing": (other, signed(body)),
        "captured 10 minutes ago": (body, signed(body, stamp=int(time.time()) - 600)),
        "unsigned": (body, {"Content-Type": "application/json"}),
    }
    for what, (data, headers) in not_the_phone.items():
        response = requests.post(hook, data=data, headers=headers, timeout=10)
        assert response.status_code == 401, f"{what}: {response.status_code} {response.text}"
    assert http.replies(phone) == [] and http.conversation(phone) is None

    headers = signed(body)
    answers = [requests.post(hook, data=body, headers=headers, timeout=10) for _ in range(2)]
    assert [(a.status_code, a.json()["status"]) for a in answers] == [
        (200, "stored"),
        (200, "duplicate"),
    ]
    # The phone itself sends the same SMS again under a new event id (a second registration).
    copy = deployment.phone.inbox.receive(phone, text, at=at)
    wait_until(
        lambda: any(
            a["event"] in copy["events"] and a["status"] == 200
            for a in list(deployment.phone.inbox.attempts)
        ),
        10,
        "the phone's own copy to be answered 200",
        details=deployment.details,
    )
    (reply,) = http.replies(phone)
    assert reply["text"] == text
    assert http.conversation(phone)["unread"] == 1


# --- replies while the API is down --------------------------------------------------------
def set_retry_count(inbox, count: int) -> None:
    """The phone's Settings > Webhooks > Retry count."""
    with inbox.lock:
        inbox.settings["retry_count"] = count


def attempts(inbox, events: list[str]) -> list[int | str]:
    """The phone's webhook attempts for `events`: an HTTP status, or the error's name."""
    with inbox.lock:
        return [a["status"] for a in inbox.attempts if a["event"] in events]


def failed_attempts(inbox, events: list[str]) -> int:
    return sum(1 for status in attempts(inbox, events) if status != 200)


def test_replies_that_arrive_while_the_api_is_down_are_all_there_after_none_twice(deployment, http):
    """One reply's webhook is given up on by the phone, the other's is still being retried.

    The phone's retries bring the second when the API is back; the first only the SMS
    worker's inbox catch-up can bring, when it (re)connects: it reads every reply the phone
    holds, all those of the other tests too, and must store none of them twice.
    """
    inbox, dan, eva = deployment.phone.inbox, number(400), number(401)
    wait_until(inbox.idle, 10, "the phone's earlier webhooks to be settled")
    before = http.replies_everywhere()
    deployment.api.stop(crash=True)
    try:
        set_retry_count(inbox, 2)
        given_up = inbox.receive(dan, "Chegou com a API parada", at=time.time())["events"]
        wait_until(
            lambda: inbox.idle() and failed_attempts(inbox, given_up) == 2,
            10,
            "the phone to give up on the first reply",
        )
        set_retry_count(inbox, 15)
        retried = inbox.receive(eva, "Eu também", at=time.time())["events"]
        wait_until(lambda: failed_attempts(inbox, retried) >= 2, 10, "the second to be retried")
    finally:
        set_retry_count(inbox, 15)
        deployment.api.start()

    wait_reply(http, eva, details=deployment.details)  # by the phone's own retry
    deployment.restart_sms_worker()
    wait_reply(http, dan, details=deployment.details)  # by the worker's catch-up
    wait_until(inbox.idle, 10, "the phone's webhooks to be settled")

    # Each came the way the story says: the first never by webhook, the second by one.
    assert 200 not in attempts(inbox, given_up) and 200 in attempts(inbox, retried)
    after = http.replies_everywhere()
    assert after - before == Counter(
        {(dan, "sms", "Chegou com a API parada"): 1, (eva, "sms", "Eu também"): 1}
    )
    assert before - after == Counter()
    assert max(after.values()) == 1, [k for k, n in after.items() if n > 1]
    assert [http.conversation(p)["unread"] for p in (dan, eva)] == [1, 1]
