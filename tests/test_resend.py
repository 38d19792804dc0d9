"""Sending a job's failed, unknown or cancelled messages again, as a new job: each row once."""

from __future__ import annotations

import sqlite3

import pytest

from message_queue import JobNotFound, NewJob, NothingToResend, Queue
from message_queue.db import SCHEMA, SCHEMA_VERSION
from tests.test_queue import assert_counts, make_job, recipients


@pytest.fixture
def q(database):
    queue = Queue(database)
    yield queue
    queue.close()


def finished_job(q):
    """Six rows: failed, unknown, sent, delivered, then two cancelled by a stop."""
    job = make_job(q, n=6, attachment_path="/u/a.pdf", attachment_name="menu.pdf", name="Promo")
    outcomes = [q.mark_failed, q.mark_unknown]
    for mark in outcomes:
        m = q.claim_next("whatsapp", "w1")
        mark(m["id"], "w1", "not_on_whatsapp" if mark == q.mark_failed else "send_not_confirmed")
    for _ in range(2):
        m = q.claim_next("whatsapp", "w1")
        q.mark_sent(m["id"], "w1")
    q.mark_delivered(m["id"])
    q.stop_job(job["id"])
    assert_counts(q, job["id"], failed=1, unknown=1, sent=1, delivered=1, cancelled=2)
    return job


def rows(q, job_id):
    messages, _ = q.list_messages(job_id, limit=100)
    return messages


def test_the_chosen_rows_become_a_new_pending_job_with_the_same_text_and_file(q):
    source = finished_job(q)
    again = q.resend(source["id"], ["failed", "unknown"])

    assert again["id"] != source["id"] and again["status"] == "pending"
    assert (again["name"], again["channel"], again["template"]) == (
        "Promo (sent again)",
        "whatsapp",
        source["template"],
    )
    assert (again["attachment_path"], again["attachment_name"]) == ("/u/a.pdf", "menu.pdf")
    assert again["total"] == 2
    assert_counts(q, again["id"], pending=2)
    old = {m["status"]: m for m in rows(q, source["id"]) if m["status"] in ("failed", "unknown")}
    copies = rows(q, again["id"])
    assert [
        (m["phone"], m["name"], m["text"], m["row"], m["channel"], m["attempts"]) for m in copies
    ] == [
        (old[s]["phone"], old[s]["name"], old[s]["text"], old[s]["row"], "whatsapp", 0)
        for s in ("failed", "unknown")
    ]
    assert {m["resent_to"] for m in old.values()} == {again["id"]}
    # The source job keeps its history: same counts, still stopped.
    assert_counts(q, source["id"], failed=1, unknown=1, sent=1, delivered=1, cancelled=2)
    assert q.get_job(source["id"])["status"] == "stopped"
    # The copies are ordinary work for a worker.
    assert q.claim_next("whatsapp", "w2")["job_id"] == again["id"]


def test_a_row_is_copied_once_however_often_and_however_it_is_asked(q):
    source = finished_job(q)
    first = q.resend(source["id"], ["failed"])
    with pytest.raises(NothingToResend, match="no failed message left") as refused:
        q.resend(source["id"], ["failed"])  # a second click
    assert refused.value.sent_again_in == [first["id"]]  # where a retried request's job is
    both = q.resend(source["id"], ["failed", "unknown", "cancelled"])
    assert both["total"] == 3  # the unknown and the two cancelled; the failed one went before
    assert first["total"] == 1
    with pytest.raises(NothingToResend):
        q.resend(source["id"], ["failed", "unknown", "cancelled"])
    assert len(q.list_jobs(active_only=False)) == 3


def test_rows_that_arrived_or_are_still_open_are_never_copied(q):
    source = finished_job(q)
    for states in (["sent"], ["delivered"], ["pending"], ["sending"], [], ["failed", "sent"]):
        with pytest.raises(ValueError):
            q.resend(source["id"], states)
    running = make_job(q, n=2)
    with pytest.raises(NothingToResend):
        q.resend(running["id"], ["failed", "unknown", "cancelled"])
    with pytest.raises(JobNotFound):
        q.resend("j_nope", ["failed"])
    assert len(q.list_jobs(active_only=False)) == 2  # nothing half-created


def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    old_schema = SCHEMA.replace(
        "    resent_to TEXT,  -- the job a person sent this row again in"
        " (failed, unknown, cancelled)\n",
        "",
    )
    assert "resent_to" not in old_schema
    conn = sqlite3.connect(path)
    conn.executescript(old_schema + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO jobs (id, channel, status, template, total, created_at, updated_at)"
        " VALUES ('j_old', 'sms', 'stopped', 'hi', 1, 1, 1)"
    )
    conn.execute(
        "INSERT INTO messages (job_id, phone, text, channel, status, updated_at)"
        " VALUES ('j_old', '+15550001', 'hi', 'sms', 'cancelled', 1)"
    )
    conn.executemany(
        "INSERT INTO job_counts (job_id, status, n) VALUES ('j_old', ?, ?)", [("cancelled", 1)]
    )
    conn.commit()
    conn.close()

    q = Queue(path)
    try:
        assert q.db.connection().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        again = q.resend("j_old", ["cancelled"])
        assert [m["phone"] for m in rows(q, again["id"])] == ["+15550001"]
    finally:
        q.close()
    Queue(path).close()  # opening an upgraded file again changes nothing


def test_an_sms_job_keeps_its_parts_and_a_fallback_row_keeps_its_channel(q):
    job, _ = q.create_job(
        NewJob(channel="whatsapp_then_sms", template="x", sms_parts=2), recipients(2, "whatsapp")
    )
    m = q.claim_next("whatsapp", "w1")
    q.reroute(m["id"], "w1", "sms", "not_on_whatsapp")
    m = q.claim_next("sms", "s1")
    q.mark_failed(m["id"], "s1", "gateway_rejected")
    again = q.resend(job["id"], ["failed"])
    assert (again["channel"], again["sms_parts"]) == ("whatsapp_then_sms", 2)
    assert [r["channel"] for r in rows(q, again["id"])] == ["sms"]


# --- POST /jobs/<id>/resend ----------------------------------------------------------------


def test_the_api_answers_202_with_the_new_job_and_where_to_follow_it(client, auth, queue):
    source = finished_job(queue)
    resp = client.post(f"/jobs/{source['id']}/resend", json={"statuses": ["unknown"]}, headers=auth)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["status"] == "pending" and body["total"] == 1
    assert resp.headers["Location"] == f"/status/{body['job_id']}"
    listed = client.get(f"/jobs/{source['id']}/messages?status=unknown", headers=auth).get_json()
    assert [m["resent_to"] for m in listed["messages"]] == [body["job_id"]]

    again = client.post(
        f"/jobs/{source['id']}/resend", json={"statuses": ["unknown"]}, headers=auth
    )
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "sent again only once" in again.get_json()["detail"]
    assert f"they were sent again in {body['job_id']}" in again.get_json()["detail"]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"statuses": []}, 422),
        ({"statuses": ["sent"]}, 422),
        ({"statuses": "failed"}, 422),
        ({"statuses": [1]}, 422),
        ({}, 422),
        ({"statuses": ["failed"], "extra": 1}, 422),
        ([], 422),
        (None, 400),
    ],
)
def test_bad_bodies_are_refused_and_create_nothing(client, auth, queue, body, status):
    source = finished_job(queue)
    kwargs = {"json": body} if body is not None else {"data": b""}
    resp = client.post(f"/jobs/{source['id']}/resend", headers=auth, **kwargs)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert len(queue.list_jobs(active_only=False)) == 1


def test_an_unknown_job_is_404_and_the_key_is_needed(client, auth):
    assert (
        client.post("/jobs/j_nope/resend", json={"statuses": ["failed"]}, headers=auth).status_code
        == 404
    )
    assert client.post("/jobs/j_nope/resend", json={"statuses": ["failed"]}).status_code == 401


def test_the_job_page_offers_it_with_the_unknown_warning(client, auth, queue):
    from tests.test_app_page import sign_in

    source = finished_job(queue)
    assert sign_in(client).status_code == 303
    page = client.get(f"/app/jobs/{source['id']}").get_data(as_text=True)
    assert 'id="resend"' in page and 'id="resend-button"' in page
    assert 'value="failed" checked' in page and 'value="unknown">' in page
    assert "could get the message twice" in page
