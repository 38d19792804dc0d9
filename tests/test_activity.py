"""GET /jobs/<id>/activity: a campaign's totals, and its sends and replies hour by hour."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.openapi import load_spec
from message_queue import NewJob, Queue, Recipient
from tests.conftest import AUTH
from tests.fakes import Clock, send_next

HOUR = 3600.0
T0 = 1_800_000_000.0  # a whole hour (500,000 hours after the epoch)
A, B, C, D, E, F, G, H = (f"+1415555{i:04d}" for i in range(100, 108))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def queue(settings, clock):
    """The queue on the test's clock (the app fixture picks this one up)."""
    q = Queue(settings.database, clock=clock)
    yield q
    q.close()


def queue_job(queue, phones, name="Promo") -> str:
    rows = [Recipient(phone=p, text="hi", channel="whatsapp") for p in phones]
    job, _ = queue.create_job(NewJob(channel="whatsapp", template="hi", name=name), rows)
    return job["id"]


def reply(queue, phone: str, at: float) -> None:
    _, created = queue.record_inbound(phone, "whatsapp", "w-1", f"hello at {at}", at)
    assert created


def hour(n: int) -> str:
    return datetime.fromtimestamp(T0 + n * HOUR, UTC).strftime("%Y-%m-%dT%H:00:00Z")


def bucket(n: int, sent=0, delivered=0, failed=0, replies=0) -> dict:
    return {
        "at": hour(n),
        "sent": sent,
        "delivered": delivered,
        "failed": failed,
        "replies": replies,
    }


def activity(client, auth, job_id: str) -> dict:
    response = client.get(f"/jobs/{job_id}/activity", headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_sends_failures_deliveries_replies_and_opt_outs_hour_by_hour(client, auth, queue, clock):
    job_id = queue_job(queue, [A, B, C, D, E, F, G, H])
    assert queue.add_suppressions([G, H], "manual") == [G, H]  # their rows: cancelled, opted_out
    first = send_next(queue, clock, T0 + 60)  # A, hour 0
    send_next(queue, clock, T0 + 120)  # B, hour 0
    send_next(queue, clock, T0 + HOUR + 10)  # C, hour 1
    send_next(queue, clock, T0 + HOUR + 20, fail="not_on_whatsapp")  # D, hour 1
    reply(queue, A, T0 + HOUR + 100)  # hour 1
    send_next(queue, clock, T0 + 3 * HOUR + 5)  # E, hour 3; nothing in hour 2
    clock.now = T0 + 3 * HOUR + 30
    assert queue.mark_delivered(first)  # A's delivery, reported in hour 3
    reply(queue, A, T0 + 3 * HOUR + 200)  # A writes twice: two replies, one recipient
    reply(queue, B, T0 + 3 * HOUR + 300)
    # Another campaign's sends and replies in the same hours are not this one's.
    queue.pause_job(job_id)  # F stays queued; the next claim is the other campaign's
    other = queue_job(queue, ["+14155550999"], name="Other")
    send_next(queue, clock, T0 + 3 * HOUR + 400)
    reply(queue, "+14155550999", T0 + 3 * HOUR + 500)

    body = activity(client, auth, job_id)

    assert body["job_id"] == job_id
    assert body["bucket_seconds"] == 3600
    assert body["buckets"] == [
        bucket(0, sent=2),
        bucket(1, sent=1, failed=1, replies=1),
        bucket(3, sent=1, delivered=1, replies=2),
    ]
    assert body["totals"] == {
        "queued": 8,
        "sent": 4,  # A (delivered since), B, C, E
        "delivered": 1,
        "replied": 2,  # A and B, however often they wrote
        "opted_out": 2,
        "failed": 1,
    }
    # The same numbers as the status object, so the page and the API can never disagree.
    status = client.get(f"/status/{job_id}", headers=auth).get_json()
    assert (status["replies"], status["opted_out"]) == (2, 2)
    assert activity(client, auth, other)["totals"]["sent"] == 1
    assert_described(body)


def assert_described(body: dict) -> None:
    """Every field the answer has is in api/openapi.json's Activity schema, and no other."""
    schema = load_spec()["components"]["schemas"]["Activity"]["properties"]
    assert set(body) == set(schema)
    assert set(body["buckets"][0]) == set(schema["buckets"]["items"]["properties"])
    assert set(body["totals"]) == set(schema["totals"]["properties"])


def test_a_job_nothing_happened_to_yet_has_no_buckets_and_zero_totals(client, auth, queue):
    job_id = queue_job(queue, [A, B, C])
    assert activity(client, auth, job_id) == {
        "job_id": job_id,
        "bucket_seconds": 3600,
        "buckets": [],
        "totals": {
            "queued": 3,
            "sent": 0,
            "delivered": 0,
            "replied": 0,
            "opted_out": 0,
            "failed": 0,
        },
    }


def test_an_unknown_job_is_404_problem(client, auth):
    response = client.get("/jobs/j_nope/activity", headers=auth)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "No job with id 'j_nope'."  # the job, not the route


def test_activity_is_behind_the_api_key(client, queue):
    job_id = queue_job(queue, [A])
    response = client.get(f"/jobs/{job_id}/activity")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    wrong = client.get(f"/jobs/{job_id}/activity", headers={"X-API-Key": "x" * 24})
    assert wrong.status_code == 401
    assert client.get(f"/jobs/{job_id}/activity", headers=AUTH).status_code == 200
