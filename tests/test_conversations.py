"""Conversations: threads per contact, what marks them, answering from them, reply counts."""

from __future__ import annotations

import pytest

from message_queue import NewJob, Queue, Recipient
from tests.fakes import Clock, send_next

ANA, BEN, CAT = "+5511912345678", "+14155550101", "+447911123456"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def queue(settings, clock):
    """The queue on the test's clock (the app fixture picks this one up)."""
    q = Queue(settings.database, clock=clock)
    yield q
    q.close()


def queue_job(queue, recipients, channel="whatsapp", name="Promo") -> str:
    rows = [Recipient(phone=p, text=t, channel=channel, name=n) for p, t, n in recipients]
    job, _ = queue.create_job(NewJob(channel=channel, template="{text}", name=name), rows)
    return job["id"]


def reply_from(queue, phone, text, at, channel="whatsapp", sender="w-1") -> int:
    inbound_id, created = queue.record_inbound(phone, channel, sender, text, at)
    assert created
    return inbound_id


def jobs_count(queue) -> int:
    return queue.count_jobs(active_only=False)


def test_a_send_reaches_the_list_when_its_worker_follows_and_queuing_writes_none(queue, clock):
    queue_job(queue, [(f"+1415{i:07d}", "hi", "") for i in range(100_000)])
    assert queue.list_conversations()[1] == 0  # 100,000 rows queued, no thread yet

    clock.advance(5)
    message = queue.claim_next("whatsapp", "w-1")
    queue.mark_sent(message["id"], "w-1")
    # Off the send's own transaction: the worker's next chore (between sends) takes it in.
    assert queue.list_conversations()[1] == 0
    assert queue.follow_sent("w-1") == 1
    assert queue.follow_sent("w-1") == 0  # once
    assert queue.list_conversations()[1] == 1
    conversations, _ = queue.list_conversations()
    assert conversations[0]["phone"] == "+14150000000"
    assert conversations[0]["last_direction"] == "out"
    assert conversations[0]["last_message_at"] == clock.now


def test_a_sent_message_sets_text_name_channel_and_keeps_unread(queue, clock):
    queue_job(queue, [(ANA, "Your order is ready", "Ana")], channel="sms")
    reply_from(queue, ANA, "hello?", clock.now - 50, channel="sms")
    send_next(queue, clock, clock.now + 10, channel="sms")
    c = queue.get_conversation(ANA)
    assert (c["name"], c["last_text"], c["last_direction"], c["channel"]) == (
        "Ana",
        "Your order is ready",
        "out",
        "sms",
    )
    assert c["unread"] == 1  # sending does not read their message
    assert c["last_message_at"] == clock.now


def make_inbox(queue, clock):
    """Three threads: Ben newest (unread), Ana starred, Cat oldest and read."""
    t = clock.now
    queue_job(queue, [(CAT, "Cat's order", "Cat"), (ANA, "Ana's order", "Ana")])
    send_next(queue, clock, t + 1)
    send_next(queue, clock, t + 2)
    reply_from(queue, BEN, "Do you deliver to Lisbon?", t + 3)
    queue.set_starred(ANA, True)


def test_list_is_most_recent_first_with_filters(client, auth, queue, clock):
    make_inbox(queue, clock)
    body = client.get("/conversations", headers=auth).get_json()
    assert [c["phone"] for c in body["conversations"]] == [BEN, ANA, CAT]
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    assert body["conversations"][0] == {
        "phone": BEN,
        "name": "",
        "unread": 1,
        "starred": False,
        "last_message_at": "2027-01-15T08:00:03Z",
        "last_text": "Do you deliver to Lisbon?",
        "last_direction": "in",
        "channel": "whatsapp",
    }
    unread = client.get("/conversations?filter=unread", headers=auth).get_json()
    assert [c["phone"] for c in unread["conversations"]] == [BEN]
    starred = client.get("/conversations?filter=starred", headers=auth).get_json()
    assert [c["phone"] for c in starred["conversations"]] == [ANA]
    page = client.get("/conversations?limit=1&offset=1", headers=auth).get_json()
    assert [c["phone"] for c in page["conversations"]] == [ANA]
    assert page["total"] == 3


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("cat", [CAT]),  # name (and text: "Cat's order")
        ("+55 (11) 91234", [ANA]),  # a number as people type it
        ("4155550101", [BEN]),
        ("lisbon", [BEN]),  # what they wrote
        ("order", [ANA, CAT]),  # the last text sent
        ("100%", []),  # LIKE's wildcards are literal
    ],
)
def test_search_by_name_number_or_text(client, auth, queue, clock, q, found):
    make_inbox(queue, clock)
    body = client.get("/conversations", query_string={"q": q}, headers=auth).get_json()
    assert [c["phone"] for c in body["conversations"]] == found
    assert body["total"] == len(found)


def test_a_reply_older_than_the_last_line_is_searchable_too(queue, clock):
    make_inbox(queue, clock)
    reply_from(queue, BEN, "thanks!", clock.now + 100)
    assert [c["phone"] for c in queue.list_conversations(search="LISBON")[0]] == [BEN]


def test_thread_merges_both_sides_in_time_order_newest_page_first(client, auth, queue, clock):
    t = clock.now
    first = queue_job(queue, [(ANA, "Order A-17 is ready", "Ana")])
    out1 = send_next(queue, clock, t + 100, worker="phone-1")
    in1 = reply_from(queue, ANA, "Thanks! Open today?", t + 150, sender="phone-1")
    clock.now = t + 200
    second = queue_job(queue, [(ANA, "Yes, until 8pm", "Ana")], channel="sms")  # pending
    in2 = reply_from(queue, ANA, "great", t + 250, channel="sms", sender="gw-1")

    page = client.get(f"/conversations/{ANA}/messages?limit=2", headers=auth).get_json()
    assert page["total"] == 4
    assert [(m["direction"], m["id"]) for m in page["messages"]] == [
        ("out", out1 + 1),
        ("in", in2),
    ]
    assert page["messages"][0]["status"] == "pending"
    assert page["messages"][0]["job_id"] == second
    assert page["messages"][1] == {
        "id": in2,
        "direction": "in",
        "channel": "sms",
        "text": "great",
        "status": "received",
        "at": "2027-01-15T08:04:10Z",
        "job_id": first,
        "sender": "gw-1",
        "error": None,
    }
    older = client.get(f"/conversations/{ANA}/messages?limit=2&offset=2", headers=auth).get_json()
    assert [(m["direction"], m["id"]) for m in older["messages"]] == [("out", out1), ("in", in1)]
    assert older["messages"][0]["sender"] == "phone-1"

    queue.mark_delivered(out1)  # the bubble shows the live status
    again = client.get(f"/conversations/{ANA}/messages?offset=2", headers=auth).get_json()
    assert again["messages"][0]["status"] == "delivered"


def test_a_failed_bubble_says_why_and_the_others_carry_no_error(client, auth, queue, clock):
    t = clock.now
    queue_job(queue, [(ANA, "Hello", "Ana"), (ANA, "Hello again", "Ana")])
    sent = send_next(queue, clock, t + 10)
    failed = send_next(queue, clock, t + 20, fail="not_on_whatsapp")
    reply_from(queue, ANA, "who is this?", t + 30)
    page = client.get(f"/conversations/{ANA}/messages", headers=auth).get_json()
    errors = {(m["direction"], m["id"]): m["error"] for m in page["messages"]}
    assert errors == {("out", sent): None, ("out", failed): "not_on_whatsapp", ("in", 1): None}


def test_read_unread_star_unstar(client, auth, queue, clock):
    make_inbox(queue, clock)
    assert client.post(f"/conversations/{BEN}/read", headers=auth).get_json()["unread"] == 0
    assert queue.get_conversation(BEN)["unread"] == 0
    assert client.post(f"/conversations/{BEN}/unread", headers=auth).get_json()["unread"] == 1
    starred = client.post(f"/conversations/{BEN}/star", headers=auth)
    assert (starred.status_code, starred.get_json()["starred"]) == (200, True)
    assert client.post(f"/conversations/{BEN}/unstar", headers=auth).get_json()["starred"] is False
    assert queue.get_conversation(BEN)["starred"] is False


@pytest.mark.parametrize("written", ["%2B5511912345678", "5511912345678", "+5511912345678"])
def test_a_number_with_or_without_its_plus_names_the_conversation(
    client, auth, queue, clock, written
):
    make_inbox(queue, clock)
    response = client.get(f"/conversations/{written}", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["phone"] == ANA


@pytest.mark.parametrize("written", ["abc", "%2B%2B55119", "0011912345678", "12", "5" * 16])
def test_anything_else_is_a_404_problem(client, auth, queue, clock, written):
    make_inbox(queue, clock)
    for url in (f"/conversations/{written}", f"/conversations/{written}/messages"):
        response = client.get(url, headers=auth)
        assert response.status_code == 404, url
        assert response.mimetype == "application/problem+json"
    unknown = client.post("/conversations/%2B5511900000000/star", headers=auth)
    assert unknown.status_code == 404
    assert "No conversation" in unknown.get_json()["detail"]


def test_reply_is_a_one_recipient_job_on_the_channel_they_last_wrote_from(
    client, auth, queue, clock
):
    make_inbox(queue, clock)
    reply_from(queue, ANA, "by sms now", clock.now + 10, channel="sms")
    response = client.post(f"/conversations/{ANA}/reply", json={"text": "Sure!"}, headers=auth)
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/status/{body['job_id']}"
    assert (body["total"], body["channel"], body["status"]) == (1, "sms", "pending")
    assert body["name"] == "Reply to Ana"
    assert body["sms_parts"] == 1
    rows, total = queue.list_messages(body["job_id"])
    assert total == 1
    assert (rows[0]["phone"], rows[0]["text"], rows[0]["channel"]) == (ANA, "Sure!", "sms")


def test_reply_defaults_to_the_conversations_channel_and_takes_a_chosen_one(
    client, auth, queue, clock
):
    make_inbox(queue, clock)  # Cat never wrote: we last wrote to her by WhatsApp
    default = client.post("/conversations/447911123456/reply", json={"text": "hi"}, headers=auth)
    assert default.get_json()["channel"] == "whatsapp"
    chosen = client.post(
        f"/conversations/{CAT}/reply", json={"text": "hi", "channel": "sms"}, headers=auth
    )
    assert chosen.get_json()["channel"] == "sms"
    assert queue.list_messages(chosen.get_json()["job_id"])[0][0]["channel"] == "sms"


def test_reply_honours_idempotency_key(client, auth, queue, clock):
    make_inbox(queue, clock)
    headers = {**auth, "Idempotency-Key": "reply-1"}
    url = f"/conversations/{BEN}/reply"
    first = client.post(url, json={"text": "Yes we do"}, headers=headers)
    again = client.post(url, json={"text": "Yes we do"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["job_id"] == again.get_json()["job_id"]
    other = client.post(url, json={"text": "No we don't"}, headers=headers)
    assert other.status_code == 422
    assert other.mimetype == "application/problem+json"
    assert jobs_count(queue) == 2  # the inbox's campaign and one reply


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "not json", "content_type": "application/json"}, 400),
        ({"json": ["Sure"]}, 422),
        ({"json": {"text": "Sure", "extra": 1}}, 422),
        ({"json": {"text": "   "}}, 422),
        ({"json": {"text": 5}}, 422),
        ({"json": {"text": "Sure", "channel": "fax"}}, 422),
        ({"json": {"text": "x" * 70_000}}, 422),
        ({"json": {"text": "Sure"}, "headers": {"Idempotency-Key": " "}}, 422),
    ],
)
def test_bad_replies_are_4xx_and_queue_nothing(client, auth, queue, clock, kwargs, status):
    make_inbox(queue, clock)
    kwargs["headers"] = {**auth, **kwargs.get("headers", {})}
    response = client.post(f"/conversations/{BEN}/reply", **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert jobs_count(queue) == 1


def test_a_reply_to_a_number_that_opted_out_is_409_and_queues_nothing(client, auth, queue, clock):
    make_inbox(queue, clock)
    queue.add_suppressions([BEN], "keyword", source="STOP")
    response = client.post(f"/conversations/{BEN}/reply", json={"text": "Sure"}, headers=auth)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "opted out" in response.get_json()["detail"]
    assert jobs_count(queue) == 1


def test_a_reply_to_an_unknown_number_is_404_and_queues_nothing(client, auth, queue):
    response = client.post(
        "/conversations/%2B5511900000000/reply", json={"text": "hi"}, headers=auth
    )
    assert response.status_code == 404
    assert jobs_count(queue) == 0


@pytest.mark.parametrize("query", ["filter=spam", "limit=0", "limit=x", "offset=-1", "q=%00"])
def test_bad_list_queries_are_422(client, auth, query):
    response = client.get(f"/conversations?{query}", headers=auth)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_status_counts_replies_and_opt_outs(client, auth, queue, clock):
    t = clock.now
    job = queue_job(queue, [(ANA, "hi", "Ana"), (BEN, "hi", "Ben"), (CAT, "hi", "Cat")])
    send_next(queue, clock, t + 10)
    send_next(queue, clock, t + 20)
    reply_from(queue, ANA, "who is this?", t + 30)
    reply_from(queue, ANA, "hello??", t + 40)  # one recipient, however often they write
    reply_from(queue, "+5511988887777", "not in the job", t + 50)
    with queue.db.write() as conn:  # what the opt-out side does to a queued row
        conn.execute(
            "UPDATE messages SET status = 'cancelled', error = 'opted_out'"
            " WHERE job_id = ? AND phone = ?",
            (job, CAT),
        )
    body = client.get(f"/status/{job}", headers=auth).get_json()
    assert (body["replies"], body["opted_out"]) == (1, 1)
    assert queue.job_reply_counts(job) == (1, 1)
    listed = client.get("/jobs?all=1", headers=auth).get_json()["jobs"][0]
    assert (listed["replies"], listed["opted_out"]) == (1, 1)


def test_a_new_job_shows_no_replies(client, auth):
    body = client.post("/send", json={"message": "hi", "numbers": [BEN]}, headers=auth).get_json()
    assert (body["replies"], body["opted_out"]) == (0, 0)


def test_following_sends_in_batches_takes_each_once_even_at_one_instant(queue, clock):
    # A frozen clock: every row is claimed at the same instant, so the keyset needs the id.
    queue_job(queue, [(f"+1415555{i:04d}", f"hi {i}", f"N{i}") for i in range(5)])
    for _ in range(5):
        message = queue.claim_next("whatsapp", "w-1")
        queue.mark_sent(message["id"], "w-1")
    assert [queue.follow_sent("w-1", batch=2) for _ in range(4)] == [2, 2, 1, 0]
    conversations, total = queue.list_conversations()
    assert total == 5
    assert sorted(c["last_text"] for c in conversations) == [f"hi {i}" for i in range(5)]


def test_the_newest_job_names_the_thread_when_followed_together(queue, clock):
    queue_job(queue, [(ANA, "old", "Ana Old")], name="First")
    send_next(queue, clock, clock.now + 1)
    queue_job(queue, [(ANA, "new", "Ana New")], name="Second")
    clock.advance(1)
    message = queue.claim_next("whatsapp", "w-1")
    queue.mark_sent(message["id"], "w-1")
    queue.follow_sent()  # every sender
    c = queue.get_conversation(ANA)
    assert (c["name"], c["last_text"]) == ("Ana New", "new")
