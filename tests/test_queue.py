"""The SQLite queue on real files: claiming across processes, big jobs, crashes, every state move.

Time is an injected `Clock`; nothing here sleeps. SQL appears only to check the queue's own
bookkeeping (counts, claimed ids) against what is really in the file.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from message_queue import (
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    NewJob,
    Queue,
    Recipient,
)
from message_queue.states import MessageStatus
from tests.fakes import Clock

T0 = 1_700_000_000.0


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def db_path(database):
    return database


@pytest.fixture
def q(db_path, clock):
    queue = Queue(db_path, clock=clock)
    yield queue
    queue.close()


def recipients(n, channel="whatsapp", prefix="+1555"):
    return [
        Recipient(
            phone=f"{prefix}{i:07d}",
            text=f"hello {i}",
            channel=channel,
            name=f"name {i}",
            row=i + 2,
        )
        for i in range(n)
    ]


def make_job(q, n=3, channel="whatsapp", **kw):
    msg_channel = "whatsapp" if channel == "whatsapp_then_sms" else channel
    job, created = q.create_job(
        NewJob(channel=channel, template="hello {name}", **kw), recipients(n, msg_channel)
    )
    assert created is True
    return job


def zero_counts(**nonzero):
    return {**dict.fromkeys(MessageStatus.ALL, 0), **nonzero}


def sql_counts(q, job_id):
    """What is really in the messages table, per status (zeros for absent statuses)."""
    rows = q.db.connection().execute(
        "SELECT status, count(*) FROM messages WHERE job_id = ? GROUP BY status", (job_id,)
    )
    return zero_counts(**dict(rows))


def sql_scalar(q, sql, *params):
    return q.db.connection().execute(sql, params).fetchone()[0]


def message(q, message_id):
    row = q.db.connection().execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
    return dict(row)


def assert_counts(q, job_id, **nonzero):
    """The job's kept counts are exactly these, and agree with a real GROUP BY."""
    expected = zero_counts(**nonzero)
    assert q.get_job(job_id)["counts"] == expected
    assert sql_counts(q, job_id) == expected


def claim_and_send(q, channel="whatsapp", worker="w1"):
    m = q.claim_next(channel, worker)
    assert m is not None
    assert q.mark_sent(m["id"], worker) is True
    return m


# 1. Several processes claiming at once -------------------------------------------------------

CLAIMERS = 4
DRAIN_ROWS = 2_000


def _drain(path, worker_id, start, results):
    """Child process: its own Queue, claim → mark_sent until nothing is left."""
    try:
        q = Queue(path)
        start.wait(timeout=60)
        claimed = []
        while (m := q.claim_next("whatsapp", worker_id)) is not None:
            claimed.append(m["id"])
            if len(claimed) > DRAIN_ROWS:  # rows handed out again: stop rather than spin
                raise AssertionError(f"{worker_id} claimed more rows than the job has")
            if not q.mark_sent(m["id"], worker_id):
                raise AssertionError(f"{worker_id} lost message {m['id']} it had claimed")
        q.close()
        results.put((worker_id, claimed, None))
    except BaseException:  # report anything to the parent rather than hang it
        results.put((worker_id, [], traceback.format_exc()))


def test_four_processes_drain_one_job_and_never_claim_a_row_twice(db_path):
    q = Queue(db_path)
    job = make_job(q, DRAIN_ROWS)
    ctx = multiprocessing.get_context("spawn")
    results, start = ctx.Queue(), ctx.Barrier(CLAIMERS)
    procs = [
        ctx.Process(target=_drain, args=(str(db_path), f"w{i}", start, results))
        for i in range(CLAIMERS)
    ]
    try:
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * CLAIMERS
    assert [err for _, _, err in outcomes if err] == []

    by_worker = {worker: ids for worker, ids, _ in outcomes}
    all_ids = [i for ids in by_worker.values() for i in ids]
    assert len(all_ids) == DRAIN_ROWS
    assert len(set(all_ids)) == DRAIN_ROWS  # no id claimed twice
    conn = q.db.connection()
    assert set(all_ids) == {
        r[0] for r in conn.execute("SELECT id FROM messages WHERE job_id = ?", (job["id"],))
    }
    # Each claimer took rows in queue order, and really took part (not one process doing it all).
    assert all(ids == sorted(ids) for ids in by_worker.values())
    assert sum(1 for ids in by_worker.values() if ids) >= 2
    # The row records the claimer that reported it; every row was attempted exactly once.
    claimed_by = dict(
        conn.execute(
            "SELECT id, claimed_by FROM messages WHERE job_id = ?", (job["id"],)
        ).fetchall()
    )
    assert claimed_by == {i: w for w, ids in by_worker.items() for i in ids}
    assert sql_scalar(q, "SELECT count(*) FROM messages WHERE attempts <> 1") == 0

    done = q.get_job(job["id"])
    assert done["status"] == "completed"
    assert done["counts"] == zero_counts(sent=DRAIN_ROWS)
    assert sql_counts(q, job["id"]) == zero_counts(sent=DRAIN_ROWS)
    assert q.integrity_check() == "ok"
    q.close()


def at_once(n, fn):
    """Run fn() in n threads (each with its own connection) released together; results or
    the exception each raised."""
    start = threading.Barrier(n)

    def call():
        start.wait(timeout=30)
        try:
            return fn()
        except Exception as exc:  # collected for the test to look at
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


@pytest.mark.parametrize("attempt", range(5))
def test_the_same_request_sent_eight_times_at_once_creates_one_job(q, attempt):
    new = NewJob(channel="whatsapp", template="t", idempotency_key="k", request_hash="h")
    outcomes = at_once(8, lambda: q.create_job(new, recipients(50)))
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert sorted(created for _, created in outcomes) == [False] * 7 + [True]
    assert len({job["id"] for job, _ in outcomes}) == 1
    assert sql_scalar(q, "SELECT count(*) FROM jobs") == 1
    assert sql_scalar(q, "SELECT count(*) FROM messages") == 50


@pytest.mark.parametrize("attempt", range(10))  # a race: several chances to lose it
def test_stop_sent_eight_times_at_once_stops_once(q, attempt):
    jid = make_job(q, 5)["id"]
    outcomes = at_once(8, lambda: q.stop_job(jid))
    stopped = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, IllegalTransition)]
    assert (len(stopped), len(refused)) == (1, 7), outcomes
    assert stopped[0]["counts"] == zero_counts(cancelled=5)
    assert_counts(q, jid, cancelled=5)


# 2. A big job in one transaction ---------------------------------------------------------------


def test_a_job_of_100000_recipients_is_created_whole(q):
    job, created = q.create_job(
        NewJob(channel="sms", template="t"),
        (Recipient(phone=f"+1555{i:07d}", text="t", channel="sms") for i in range(100_000)),
    )
    assert created is True
    assert job["total"] == 100_000
    assert job["status"] == "pending"
    assert job["counts"] == zero_counts(pending=100_000)
    assert sql_counts(q, job["id"]) == zero_counts(pending=100_000)
    assert q.claim_next("sms", "s1")["phone"] == "+15550000000"


def test_a_recipient_source_failing_midway_leaves_nothing_behind(q):
    def failing():
        yield from recipients(7_500)  # past one insert batch, so rows really were inserted
        raise RuntimeError("bad row 7,501")

    with pytest.raises(RuntimeError, match="bad row"):
        q.create_job(
            NewJob(channel="whatsapp", template="t", idempotency_key="k1", request_hash="h1"),
            failing(),
        )
    for table in ("jobs", "messages", "job_counts"):
        assert sql_scalar(q, f"SELECT count(*) FROM {table}") == 0
    # No transaction left open, and the key was not used up by the failed attempt.
    job, created = q.create_job(
        NewJob(channel="whatsapp", template="t", idempotency_key="k1", request_hash="h1"),
        recipients(2),
    )
    assert created is True
    assert job["total"] == 2


# 3. A worker dies between claim and mark ------------------------------------------------------


def test_rows_left_sending_stay_with_their_sender_until_it_is_gone(db_path, q, clock):
    job = make_job(q, 4)
    q.heartbeat("w1", "whatsapp", "sending", job["id"])
    q.heartbeat("w3", "whatsapp", "sending", job["id"])
    dead_row = q.claim_next("whatsapp", "w1")
    live_row = q.claim_next("whatsapp", "w3")

    # w1 dies. Minutes later another worker starts: only w1's own chat can tell whether the
    # row went out, so w2 takes nothing.
    later = Clock(clock.now + 300)
    q2 = Queue(db_path, clock=later)
    q2.heartbeat("w3", "whatsapp", "sending", job["id"])
    assert q2.recover_sending("whatsapp", "w2") == []
    assert q2.settle_gone_senders(3600) == []
    assert message(q2, dead_row["id"])["claimed_by"] == "w1"

    # An hour without a word from w1: gone, its row ends unknown (never sent twice).
    later.advance(3600)
    q2.heartbeat("w3", "whatsapp", "sending", job["id"])
    assert q2.settle_gone_senders(3600) == [dead_row["id"]]
    stored = message(q2, dead_row["id"])
    assert (stored["status"], stored["error"]) == ("unknown", "sender_gone")
    assert message(q2, live_row["id"])["status"] == "sending"
    assert q2.mark_sent(dead_row["id"], "w1") is False  # w1 back from the dead: too late
    assert_counts(q2, job["id"], pending=2, sending=1, unknown=1)
    q2.close()


def test_a_restarted_worker_gets_its_own_rows_back(db_path, q, clock):
    job = make_job(q, 2)
    q.heartbeat("w1", "whatsapp", "sending", job["id"])
    row = q.claim_next("whatsapp", "w1")
    clock.advance(5)
    q2 = Queue(db_path, clock=clock)  # the same worker id starts again, heartbeat still fresh
    q2.heartbeat("w1", "whatsapp", "starting")
    recovered = q2.recover_sending("whatsapp", "w1")
    assert recovered == [row]
    stored = message(q2, row["id"])
    assert (stored["claimed_by"], stored["status"], stored["claimed_at"]) == (
        "w1",
        "sending",
        clock.now,
    )
    q2.close()


def test_recovery_takes_only_the_workers_own_rows_on_its_channel(q, clock):
    make_job(q, 3)
    make_job(q, 1, channel="sms")
    q.heartbeat("stopped-w", "whatsapp", "stopped")
    a = q.claim_next("whatsapp", "stopped-w")  # stopped cleanly while its row was held
    mine = q.claim_next("whatsapp", "w2")
    c = q.claim_next("sms", "w2")  # the same name on another channel is another sender
    recovered = q.recover_sending("whatsapp", "w2")
    assert [m["id"] for m in recovered] == [mine["id"]]
    assert message(q, a["id"])["claimed_by"] == "stopped-w"
    assert message(q, c["id"])["status"] == "sending"
    # A stopped sender's rows settle once it has been silent SENDER_GONE_AFTER, like any.
    clock.advance(61)
    q.heartbeat("w2", "whatsapp", "logged_in")
    assert q.settle_gone_senders(60) == [a["id"]]


# 4. Job moves a person asks for, from every state ----------------------------------------------


def job_in(q, state):
    """A job of 3 rows brought into `state` the way it happens in real use."""
    channel = "sms" if state == "waiting_for_gateway" else "whatsapp"
    job = make_job(q, 3, channel=channel)
    jid = job["id"]
    if state in ("running", "paused_after_start", "waiting_for_login", "waiting_for_gateway"):
        claim_and_send(q, channel)
    if state in ("paused", "paused_after_start"):
        q.pause_job(jid)
    elif state == "waiting_for_login":
        assert q.set_channel_waiting("whatsapp", "waiting_for_login") == [jid]
    elif state == "waiting_for_gateway":
        assert q.set_channel_waiting("sms", "waiting_for_gateway") == [jid]
    elif state == "completed":
        for _ in range(3):
            claim_and_send(q)
    elif state == "stopped":
        q.stop_job(jid)
    assert q.get_job(jid)["status"] == state.replace("_after_start", "")
    return jid


STATES = [
    "pending",
    "running",
    "paused",
    "paused_after_start",
    "waiting_for_login",
    "waiting_for_gateway",
    "completed",
    "stopped",
]
ALLOWED = {  # (state, move) → new state; anything absent raises IllegalTransition
    ("pending", "pause"): "paused",
    ("running", "pause"): "paused",
    ("waiting_for_login", "pause"): "paused",
    ("waiting_for_gateway", "pause"): "paused",
    ("paused", "resume"): "pending",  # never started
    ("paused_after_start", "resume"): "running",
    ("pending", "stop"): "stopped",
    ("running", "stop"): "stopped",
    ("paused", "stop"): "stopped",
    ("paused_after_start", "stop"): "stopped",
    ("waiting_for_login", "stop"): "stopped",
    ("waiting_for_gateway", "stop"): "stopped",
}


@pytest.mark.parametrize("move", ["pause", "resume", "stop"])
@pytest.mark.parametrize("state", STATES)
def test_user_move_from_each_job_state(q, clock, state, move):
    jid = job_in(q, state)
    before = q.get_job(jid)
    clock.advance(10)
    do = getattr(q, f"{move}_job")
    if (state, move) in ALLOWED:
        after = do(jid)
        assert after["status"] == ALLOWED[state, move]
        assert after["updated_at"] == clock.now
        assert q.get_job(jid)["status"] == ALLOWED[state, move]
        assert after["finished_at"] == (clock.now if move == "stop" else before["finished_at"])
    else:
        with pytest.raises(IllegalTransition) as err:
            do(jid)
        assert (err.value.job_id, err.value.status, err.value.move) == (jid, before["status"], move)
        assert q.get_job(jid) == before  # nothing changed


@pytest.mark.parametrize("move", ["pause_job", "resume_job", "stop_job", "get_job"])
def test_unknown_job_id_is_not_found(q, move):
    with pytest.raises(JobNotFound):
        getattr(q, move)("1 OR 1=1")


def test_stop_cancels_waiting_rows_lets_the_sending_one_finish_and_stays_stopped(q, clock):
    job = make_job(q, 5)
    jid = job["id"]
    claim_and_send(q)
    in_flight = q.claim_next("whatsapp", "w1")
    retried = q.claim_next("whatsapp", "w2")
    assert q.retry_later(retried["id"], "w2", "chat_not_open", at=clock.now + 30) is True
    assert_counts(q, jid, pending=2, retrying=1, sending=1, sent=1)

    clock.advance(1)
    stopped = q.stop_job(jid)
    assert stopped["status"] == "stopped"
    assert stopped["finished_at"] == clock.now
    assert stopped["counts"] == zero_counts(cancelled=3, sending=1, sent=1)
    assert sql_counts(q, jid) == zero_counts(cancelled=3, sending=1, sent=1)
    clock.advance(60)
    assert q.claim_next("whatsapp", "w3") is None  # the retry time has come, still nothing

    clock.advance(1)
    assert q.mark_sent(in_flight["id"], "w1") is True
    final = q.get_job(jid)
    assert final["status"] == "stopped"  # never completed
    assert final["finished_at"] == stopped["finished_at"]
    assert_counts(q, jid, cancelled=3, sent=2)


@pytest.mark.parametrize("undo", ["release", "retry_later", "reroute"])
def test_a_row_given_back_after_its_job_stopped_is_cancelled_not_left_open(q, clock, undo):
    """Contract: every row ends sent/delivered/failed/cancelled/unknown, even one in flight
    when its job was stopped and whose send then turned out not to have happened."""
    job = make_job(q, 2, channel="whatsapp_then_sms")
    m = q.claim_next("whatsapp", "w1")
    q.stop_job(job["id"])
    args = {
        "release": ("session_lost",),
        "retry_later": ("chat_not_open", clock.now + 1),
        "reroute": ("sms", "not_on_whatsapp"),
    }[undo]
    assert getattr(q, undo)(m["id"], "w1", *args) is True
    assert message(q, m["id"])["status"] == "cancelled"
    assert_counts(q, job["id"], cancelled=2)
    assert q.get_job(job["id"])["status"] == "stopped"
    clock.advance(10)
    assert q.claim_next("sms", "s1") is None
    assert q.claim_next("whatsapp", "w1") is None


@pytest.mark.parametrize(
    "state",
    [
        "paused",
        "paused_after_start",
        "waiting_for_login",
        "waiting_for_gateway",
        "stopped",
        "completed",
    ],
)
def test_jobs_that_are_not_sendable_hand_out_nothing(q, state):
    job_in(q, state)
    assert q.claim_next("whatsapp", "w9") is None
    assert q.claim_next("sms", "s9") is None


def test_resumed_and_returned_jobs_hand_out_again(q):
    paused = job_in(q, "paused")
    q.resume_job(paused)
    assert q.claim_next("whatsapp", "w1")["job_id"] == paused
    assert q.get_job(paused)["status"] == "running"


def test_login_lost_waits_whatsapp_jobs_only_and_returns_them(q, clock):
    wa = make_job(q, 2)["id"]
    claim_and_send(q)  # wa has started
    both = make_job(q, 2, channel="whatsapp_then_sms")["id"]
    sms = make_job(q, 2, channel="sms")["id"]
    paused = make_job(q, 2)["id"]
    q.pause_job(paused)

    assert sorted(q.set_channel_waiting("whatsapp", "waiting_for_login")) == sorted([wa, both])
    statuses = {j: q.get_job(j)["status"] for j in (wa, both, sms, paused)}
    assert statuses == {
        wa: "waiting_for_login",
        both: "waiting_for_login",
        sms: "pending",
        paused: "paused",
    }
    assert q.claim_next("whatsapp", "w1") is None
    assert q.claim_next("sms", "s1")["job_id"] == sms  # the gateway is not affected
    assert q.end_channel_waiting("whatsapp", "waiting_for_gateway") == []  # wrong wait: nothing
    assert sorted(q.end_channel_waiting("whatsapp", "waiting_for_login")) == sorted([wa, both])
    statuses = {j: q.get_job(j)["status"] for j in (wa, both, sms, paused)}
    assert statuses == {wa: "running", both: "pending", sms: "running", paused: "paused"}
    assert q.end_channel_waiting("whatsapp", "waiting_for_login") == []


def test_gateway_lost_waits_sms_jobs_only(q):
    sms = make_job(q, 1, channel="sms")["id"]
    wa = make_job(q, 1)["id"]
    assert q.set_channel_waiting("sms", "waiting_for_gateway") == [sms]
    assert q.get_job(wa)["status"] == "pending"
    assert q.claim_next("sms", "s1") is None
    assert q.end_channel_waiting("sms", "waiting_for_gateway") == [sms]
    assert q.get_job(sms)["status"] == "pending"
    assert q.claim_next("sms", "s1")["job_id"] == sms


# 4b. Message moves ---------------------------------------------------------------------------


def test_first_claim_starts_the_job_and_hands_out_queue_order(q, clock):
    job = make_job(q, 2, attachment_path="/u/a.png", attachment_name="a.png")
    clock.advance(3)
    m = q.claim_next("whatsapp", "w1")
    assert (m["phone"], m["text"], m["name"], m["row"]) == ("+15550000000", "hello 0", "name 0", 2)
    stored = message(q, m["id"])
    assert (stored["status"], m["attempts"], stored["claimed_by"], stored["claimed_at"]) == (
        "sending",
        1,
        "w1",
        clock.now,
    )
    assert (m["attachment_path"], m["attachment_name"], m["job_channel"]) == (
        "/u/a.png",
        "a.png",
        "whatsapp",
    )
    started = q.get_job(job["id"])
    assert (started["status"], started["started_at"]) == ("running", clock.now)
    assert q.claim_next("whatsapp", "w2")["phone"] == "+15550000001"
    assert q.claim_next("whatsapp", "w3") is None
    assert q.claim_next("sms", "s1") is None


def test_older_job_goes_first(q, clock):
    first = make_job(q, 1)["id"]
    second = make_job(q, 1)["id"]  # same created_at: insertion order decides
    clock.advance(1)
    third = make_job(q, 1)["id"]
    assert [q.claim_next("whatsapp", "w1")["job_id"] for _ in range(3)] == [first, second, third]


def test_sent_then_delivered(q, clock):
    job = make_job(q, 2)
    m = q.claim_next("whatsapp", "w1")
    assert q.mark_delivered(m["id"]) is False  # sending, not sent
    pending_id = m["id"] + 1
    assert q.mark_delivered(pending_id) is False
    clock.advance(2)
    assert q.mark_sent(m["id"], "w1", provider_id="gw-17") is True
    row = message(q, m["id"])
    assert (row["status"], row["sent_at"], row["provider_id"]) == ("sent", clock.now, "gw-17")
    assert q.mark_sent(m["id"], "w1") is False  # at most once
    assert q.mark_delivered(m["id"]) is True
    assert q.mark_delivered(m["id"]) is False
    assert message(q, m["id"])["status"] == "delivered"
    assert message(q, pending_id)["status"] == "pending"
    assert_counts(q, job["id"], pending=1, delivered=1)


def test_retry_later_counts_the_attempt_and_waits_for_its_time(q, clock):
    job = make_job(q, 1)
    m = q.claim_next("whatsapp", "w1")
    assert q.retry_later(m["id"], "w1", "chat_not_open", at=clock.now + 30) is True
    row = message(q, m["id"])
    assert (
        row["status"],
        row["attempts"],
        row["error"],
        row["next_attempt_at"],
        row["claimed_by"],
    ) == ("retrying", 1, "chat_not_open", clock.now + 30, None)
    assert q.get_job(job["id"])["last_error"] == "chat_not_open"
    assert_counts(q, job["id"], retrying=1)
    clock.advance(29.9)
    assert q.claim_next("whatsapp", "w1") is None
    clock.advance(0.1)
    again = q.claim_next("whatsapp", "w2")
    assert (again["id"], again["attempts"]) == (m["id"], 2)
    assert message(q, m["id"])["claimed_by"] == "w2"
    assert q.get_job(job["id"])["status"] == "running"


def test_release_does_not_burn_an_attempt(q):
    job = make_job(q, 1)
    m = q.claim_next("whatsapp", "w1")
    assert q.release(m["id"], "w1", "session_lost") is True
    row = message(q, m["id"])
    assert (row["status"], row["attempts"], row["claimed_by"], row["error"]) == (
        "pending",
        0,
        None,
        "session_lost",
    )
    assert_counts(q, job["id"], pending=1)
    assert q.claim_next("whatsapp", "w1")["attempts"] == 1


def test_reroute_sends_again_by_sms_from_scratch(q, clock):
    job = make_job(q, 1, channel="whatsapp_then_sms")
    m = q.claim_next("whatsapp", "w1")
    assert q.retry_later(m["id"], "w1", "chat_not_open", at=clock.now + 5) is True
    clock.advance(5)
    m = q.claim_next("whatsapp", "w1")
    assert m["attempts"] == 2
    assert q.reroute(m["id"], "w1", "sms", "not_on_whatsapp") is True
    row = message(q, m["id"])
    assert (
        row["status"],
        row["channel"],
        row["attempts"],
        row["claimed_by"],
        row["error"],
        row["next_attempt_at"],
    ) == ("pending", "sms", 0, None, "not_on_whatsapp", 0)
    assert q.claim_next("whatsapp", "w1") is None
    by_sms = q.claim_next("sms", "s1")
    assert (by_sms["id"], by_sms["channel"], by_sms["attempts"], by_sms["job_channel"]) == (
        m["id"],
        "sms",
        1,
        "whatsapp_then_sms",
    )
    assert q.mark_sent(by_sms["id"], "s1") is True
    assert q.get_job(job["id"])["status"] == "completed"


@pytest.mark.parametrize("mark,status", [("mark_failed", "failed"), ("mark_unknown", "unknown")])
def test_failed_and_unknown_record_the_error_on_row_and_job(q, mark, status):
    job = make_job(q, 2)
    m = q.claim_next("whatsapp", "w1")
    assert getattr(q, mark)(m["id"], "w1", "send_not_confirmed") is True
    row = message(q, m["id"])
    assert (row["status"], row["error"]) == (status, "send_not_confirmed")
    assert q.get_job(job["id"])["last_error"] == "send_not_confirmed"
    assert_counts(q, job["id"], pending=1, **{status: 1})


MARKS = {
    "mark_sent": (),
    "mark_failed": ("invalid_phone",),
    "mark_unknown": ("send_not_confirmed",),
    "retry_later": ("chat_not_open", T0 + 30),
    "release": ("session_lost",),
    "reroute": ("sms", "not_on_whatsapp"),
}


@pytest.mark.parametrize("mark", sorted(MARKS))
def test_a_worker_that_does_not_hold_the_row_changes_nothing(q, clock, mark):
    job = make_job(q, 1, channel="whatsapp_then_sms")
    m = q.claim_next("whatsapp", "w1")
    row_before, job_before = message(q, m["id"]), q.get_job(job["id"])
    clock.advance(1)
    assert getattr(q, mark)(m["id"], "intruder", *MARKS[mark]) is False
    assert message(q, m["id"]) == row_before
    assert q.get_job(job["id"]) == job_before
    # and nobody marks a row that is no longer sending
    assert q.mark_sent(m["id"], "w1") is True
    assert getattr(q, mark)(m["id"], "w1", *MARKS[mark]) is False
    assert message(q, m["id"])["status"] == "sent"


def test_job_completes_exactly_when_its_last_open_row_finishes(q, clock):
    job = make_job(q, 3)
    jid = job["id"]
    a, b, c = (q.claim_next("whatsapp", "w1") for _ in range(3))
    assert q.mark_sent(a["id"], "w1") is True
    assert q.get_job(jid)["status"] == "running"
    assert q.mark_failed(b["id"], "w1", "invalid_phone") is True
    assert q.get_job(jid)["status"] == "running"
    assert q.retry_later(c["id"], "w1", "chat_not_open", at=clock.now) is True
    assert q.get_job(jid)["status"] == "running"  # retrying is still open
    c = q.claim_next("whatsapp", "w1")
    assert q.get_job(jid)["status"] == "running"
    clock.advance(7)
    assert q.mark_unknown(c["id"], "w1", "send_not_confirmed") is True
    done = q.get_job(jid)
    assert (done["status"], done["finished_at"], done["last_error"]) == (
        "completed",
        clock.now,
        "send_not_confirmed",
    )
    assert_counts(q, jid, sent=1, failed=1, unknown=1)
    assert q.list_jobs() == []


# 5. Idempotency ------------------------------------------------------------------------------


def test_same_key_same_request_returns_the_first_job(q):
    first = make_job(q, 3, idempotency_key="key-1", request_hash="abc")
    again, created = q.create_job(
        NewJob(channel="whatsapp", template="x", idempotency_key="key-1", request_hash="abc"),
        recipients(5),
    )
    assert created is False
    assert again == first
    assert sql_scalar(q, "SELECT count(*) FROM jobs") == 1
    assert sql_scalar(q, "SELECT count(*) FROM messages") == 3


def test_same_key_other_request_is_a_conflict(q):
    make_job(q, 3, idempotency_key="key-1", request_hash="abc")
    with pytest.raises(IdempotencyConflict):
        q.create_job(
            NewJob(channel="whatsapp", template="x", idempotency_key="key-1", request_hash="other"),
            recipients(5),
        )
    assert sql_scalar(q, "SELECT count(*) FROM jobs") == 1
    assert sql_scalar(q, "SELECT count(*) FROM messages") == 3
    make_job(q, 1, idempotency_key="key-2", request_hash="abc")  # other keys still work


# 6. Workers ----------------------------------------------------------------------------------


def test_heartbeat_upserts_and_a_silent_worker_is_disconnected(q, clock):
    q.heartbeat("w1", "whatsapp", "starting")
    clock.advance(10)
    q.heartbeat("w1", "whatsapp", "sending", current_job_id="j_1", detail="row 4")
    q.heartbeat("s1", "sms", "stopped")
    assert [w["usage"]["sent_last_24h"] for w in q.list_workers(usage=True)] == [0, 0]
    assert q.list_workers() == [
        {
            "id": "s1",
            "channel": "sms",
            "state": "stopped",
            "detail": None,
            "current_job_id": None,
            "started_at": T0 + 10,
            "heartbeat_at": T0 + 10,
            "qr_available": False,
            "heartbeat_age_s": 0.0,
        },
        {
            "id": "w1",
            "channel": "whatsapp",
            "state": "sending",
            "detail": "row 4",
            "current_job_id": "j_1",
            "started_at": T0,
            "heartbeat_at": T0 + 10,
            "qr_available": False,
            "heartbeat_age_s": 0.0,
        },
    ]
    clock.advance(60)
    assert [(w["id"], w["state"]) for w in q.list_workers()] == [
        ("s1", "stopped"),
        ("w1", "sending"),
    ]
    clock.advance(0.5)
    workers = q.list_workers()
    assert [(w["id"], w["state"], w["heartbeat_age_s"]) for w in workers] == [
        ("s1", "stopped", 60.5),
        ("w1", "disconnected", 60.5),
    ]


def test_qr_is_offered_only_by_a_live_worker_waiting_for_a_scan(q, clock):
    assert q.latest_qr() is None
    q.heartbeat("w1", "whatsapp", "qr_required")
    q.save_qr("w1", b"\x89PNG one")
    assert q.latest_qr() == (b"\x89PNG one", T0)
    assert q.list_workers()[0]["qr_available"] is True

    clock.advance(5)
    q.heartbeat("w2", "whatsapp", "qr_required")
    q.save_qr("w2", b"\x89PNG two")
    assert q.latest_qr() == (b"\x89PNG two", T0 + 5)  # the newest
    q.clear_qr("w2")
    assert q.latest_qr() == (b"\x89PNG one", T0)

    q.heartbeat("w1", "whatsapp", "ready")  # logged in, QR not cleared yet: not offered
    assert q.latest_qr() is None
    q.heartbeat("w1", "whatsapp", "qr_required")
    assert q.latest_qr() == (b"\x89PNG one", T0)
    clock.advance(61)  # w1 went silent
    assert q.latest_qr() is None
    assert q.list_workers()[0]["qr_available"] is False
    q.heartbeat("w1", "whatsapp", "qr_required")
    q.clear_qr("w1")
    assert q.latest_qr() is None


# 7. Listing ----------------------------------------------------------------------------------


def test_list_messages_pages_filters_and_searches_literally(q):
    names = ["100% Ali", "a_b", "axb", "plain", "back\\slash", *[f"n{i}" for i in range(20)]]
    job, _ = q.create_job(
        NewJob(channel="whatsapp", template="t"),
        [
            Recipient(phone=f"+4915{i:08d}", text="t", channel="whatsapp", name=name)
            for i, name in enumerate(names)
        ],
    )
    jid = job["id"]
    claim_and_send(q)
    claim_and_send(q)

    page, total = q.list_messages(jid, limit=10, offset=20)
    assert total == 25
    assert [m["name"] for m in page] == ["n15", "n16", "n17", "n18", "n19"]
    first, _ = q.list_messages(jid, limit=3)
    assert [m["name"] for m in first] == ["100% Ali", "a_b", "axb"]
    assert [m["id"] for m in first] == sorted(m["id"] for m in first)

    sent, total = q.list_messages(jid, status="sent")
    assert (total, [m["name"] for m in sent]) == (2, ["100% Ali", "a_b"])
    assert q.list_messages(jid, status="failed") == ([], 0)

    def found(search, **kw):
        rows, total = q.list_messages(jid, search=search, **kw)
        assert total == len(rows)
        return [m["name"] for m in rows]

    assert found("%") == ["100% Ali"]
    assert found("_") == ["a_b"]
    assert found("a_b") == ["a_b"]  # not axb
    assert found("\\") == ["back\\slash"]
    assert found("ALI") == ["100% Ali"]
    assert found("+491500000004") == ["back\\slash"]  # by phone
    assert found("n1", status="pending") == ["n1", *[f"n{i}" for i in range(10, 20)]]
    assert found("a_b", status="pending") == []
    with pytest.raises(JobNotFound):
        q.list_messages("j_nope")


def test_iter_messages_yields_every_row_in_order_across_batches(q):
    job = make_job(q, 25)
    other = make_job(q, 3)
    rows = list(q.iter_messages(job["id"], batch=7))
    assert [m["phone"] for m in rows] == [f"+1555{i:07d}" for i in range(25)]
    assert [m["id"] for m in rows] == sorted(m["id"] for m in rows)
    assert {m["job_id"] for m in rows} == {job["id"]}
    assert len(list(q.iter_messages(other["id"], batch=3))) == 3
    with pytest.raises(JobNotFound):
        list(q.iter_messages("j_nope"))


def test_list_jobs_latest_job_and_stop_all(q, clock):
    assert q.latest_job() is None
    assert q.list_jobs() == []
    done = make_job(q, 1)["id"]
    claim_and_send(q)
    clock.advance(1)
    a = make_job(q, 1)["id"]
    clock.advance(1)
    b = make_job(q, 1, channel="sms")["id"]
    c = make_job(q, 1)["id"]  # same second as b: created later, listed first
    q.pause_job(a)

    assert [j["id"] for j in q.list_jobs()] == [c, b, a]
    assert [j["id"] for j in q.list_jobs(active_only=False)] == [c, b, a, done]
    assert [j["id"] for j in q.list_jobs(active_only=False, limit=2)] == [c, b]
    assert q.list_jobs()[2]["counts"] == zero_counts(pending=1)
    assert q.latest_job()["id"] == c

    assert sorted(q.stop_all()) == sorted([a, b, c])
    assert {j["id"]: j["status"] for j in q.list_jobs(active_only=False)} == {
        a: "stopped",
        b: "stopped",
        c: "stopped",
        done: "completed",
    }
    assert q.list_jobs() == []
    assert q.stop_all() == []
    assert q.integrity_check() == "ok"
    assert q.check() == "ok"
