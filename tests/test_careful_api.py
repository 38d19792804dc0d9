"""The careful-sending fields and moves through the API: send_at, timezone, the job's own caps,
POST /start, the status object's `waiting`, and /session's per-sender limits."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest

from app import create_app
from message_queue import Queue, SendingRules


def later(hours: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def body(**extra) -> dict:
    return {
        "message": "Hi {name}",
        "contacts": [{"phone": "+5511991234567", "name": "Ana"}],
    } | extra


def test_a_job_with_send_at_is_scheduled_until_then(client, auth):
    at = later(3)
    r = client.post("/send", json=body(send_at=at), headers=auth)
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    assert job["status"] == "scheduled"
    assert job["send_at"] == datetime.fromisoformat(at).astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert job["waiting"] == {"reason": "scheduled", "until": job["send_at"]}
    assert job["eta_seconds"] >= 3 * 3600 - 60
    listed = client.get("/jobs", headers=auth).get_json()["jobs"]
    assert [j["job_id"] for j in listed] == [job["job_id"]]


def test_start_moves_a_scheduled_job_to_pending_and_stop_cancels_it(client, auth):
    first = client.post("/send", json=body(send_at=later()), headers=auth).get_json()["job_id"]
    second = client.post(
        "/send", json=body(send_at=later(), name="second"), headers=auth
    ).get_json()["job_id"]

    started = client.post(f"/start/{first}", headers=auth)
    assert started.status_code == 200
    assert started.get_json()["status"] == "pending"
    assert started.get_json()["waiting"] is None
    assert client.post(f"/start/{first}", headers=auth).status_code == 409
    assert client.post(f"/pause/{second}", headers=auth).status_code == 409

    stopped = client.post(f"/stop/{second}", headers=auth).get_json()
    assert stopped["status"] == "stopped" and stopped["counts"]["cancelled"] == 1
    assert client.post("/start/j_nope", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_at", "2020-01-01T00:00:00Z"),  # in the past
        ("send_at", "2030-01-01T09:00:00"),  # no offset
        ("send_at", "tomorrow"),
        ("send_at", 1_900_000_000),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../../etc/passwd"),
        ("daily_cap", 0),
        ("daily_cap", 201),  # above WHATSAPP_DAILY_CAP's 200
        ("hourly_cap", 61),  # above WHATSAPP_HOURLY_CAP's 60
        ("hourly_cap", True),
        ("hourly_cap", 2.5),
        ("daily_cap", "ten"),
    ],
)
def test_bad_careful_fields_are_422_naming_the_field_and_leave_nothing(
    client, auth, queue, field, value
):
    r = client.post("/send", json=body(**{field: value}), headers=auth)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["errors"][0]["field"] == field
    assert queue.count_jobs(active_only=False) == 0
    # /preview checks them the same way.
    assert client.post("/preview", json=body(**{field: value}), headers=auth).status_code == 422


def test_a_jobs_caps_and_zone_are_kept_and_may_come_as_form_fields(client, auth, queue):
    form = {
        "message": "Hi",
        "numbers": "+5511991234567\n+5511991234568",
        "daily_cap": "50",
        "hourly_cap": "5",
        "timezone": "America/Sao_Paulo",
        "send_at": later(),
        "file": (io.BytesIO(b""), ""),
    }
    r = client.post("/send", data=form, headers=auth, content_type="multipart/form-data")
    assert r.status_code == 202, r.get_json()
    job = queue.get_job(r.get_json()["job_id"])
    assert (job["daily_cap"], job["hourly_cap"], job["timezone"]) == (50, 5, "America/Sao_Paulo")
    assert job["status"] == "scheduled"


def test_the_same_key_with_another_start_time_is_a_conflict(client, auth):
    key = {"Idempotency-Key": "k-careful-1", **auth}
    assert client.post("/send", json=body(send_at=later(2)), headers=key).status_code == 202
    again = client.post("/send", json=body(send_at=later(2)), headers=key)
    assert again.status_code in (200, 202)
    assert client.post("/send", json=body(send_at=later(5)), headers=key).status_code == 422


def test_session_shows_each_senders_caps_warm_up_and_why_it_waits(settings, auth, tmp_path):
    settings = settings.replace(
        whatsapp_daily_cap=100, whatsapp_hourly_cap=2, warmup_days=5, warmup_first_day=20
    )
    queue = Queue(settings.database, rules=SendingRules.from_settings(settings))
    client = create_app(settings, queue).test_client()
    client.post(
        "/send", json=body() | {"numbers": ["+5511991230001", "+5511991230002"]}, headers=auth
    )
    queue.heartbeat("w-1", "whatsapp", "logged_in")
    for _ in range(2):
        m = queue.claim_next("whatsapp", "w-1")
        queue.mark_sent(m["id"], "w-1")
    assert queue.claim_next("whatsapp", "w-1") is None

    worker = client.get("/session", headers=auth).get_json()["workers"][0]
    limits = worker["limits"]
    assert limits["sent_last_hour"] == limits["sent_last_24h"] == 2
    assert (limits["hourly_cap"], limits["daily_cap"], limits["warmup_day"]) == (2, 20, 1)
    assert limits["waiting"]["reason"] == "hourly_cap"
    until = datetime.fromisoformat(limits["waiting"]["until"]).timestamp()
    assert time.time() + 3500 < until <= time.time() + 3600
    status = client.get("/status", headers=auth).get_json()
    assert status["waiting"]["reason"] == "hourly_cap"
    assert status["status"] == "running"


@pytest.mark.parametrize(
    ("count", "extra", "settings_change", "words"),
    [
        (1000, {}, {}, "About 5 days at 200 a day."),
        (1000, {"daily_cap": 100}, {}, "About 10 days at 100 a day."),
        (120, {}, {}, "About 65 minutes at 60 an hour."),
        (10, {}, {}, "About 50 seconds."),
        (
            1000,
            {},
            {"send_window": "09:00-13:00"},
            "About 5 days at 200 a day, sending 4 hours a day in each person's own time.",
        ),
    ],
)
def test_preview_says_how_long_the_caps_make_a_campaign_take(
    settings, auth, count, extra, settings_change, words
):
    client = create_app(settings.replace(**settings_change)).test_client()
    numbers = [f"+55119{90000000 + i}" for i in range(count)]
    r = client.post("/preview", json={"message": "Hi", "numbers": numbers, **extra}, headers=auth)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["estimate"] == words
    if count == 1000 and not extra and not settings_change:
        assert 4 * 86_400 < body["estimate_seconds"] < 5 * 86_400
        assert body["limits"] == {"daily_cap": 200, "hourly_cap": 60, "send_window": None}


def test_a_message_names_the_sender_that_sent_it(client, auth, queue):
    job_id = client.post("/send", json=body(), headers=auth).get_json()["job_id"]
    before = client.get(f"/jobs/{job_id}/messages", headers=auth).get_json()["messages"]
    assert before[0]["sender"] is None
    m = queue.claim_next("whatsapp", "phone-2")
    queue.mark_sent(m["id"], "phone-2")
    after = client.get(f"/jobs/{job_id}/messages", headers=auth).get_json()["messages"]
    assert after[0]["sender"] == "phone-2"
