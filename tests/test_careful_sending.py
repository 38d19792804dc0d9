"""Careful sending on an injected clock, real queue: caps, warm-up, windows, schedules and
auto-pause (contract section 8). Every test drives the queue the way a worker does."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from message_queue import NewJob, Queue, Recipient
from message_queue.rules import Caps, SendingRules
from tests.fakes import Clock
from utils.sendwindow import SendWindow

DAY = 86_400
HOUR = 3_600
# 2026-12-07 00:00 UTC, a Monday.
MONDAY = datetime(2026, 12, 7, tzinfo=UTC).timestamp()


def numbers(n: int, prefix: str = "+5511990") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


def queue_with(database, clock, **rules) -> Queue:
    return Queue(database, clock=clock, rules=SendingRules(**rules))


def add_job(queue, phones, **job) -> str:
    row, _ = queue.create_job(
        NewJob(channel=job.pop("channel", "whatsapp"), template="Hi", **job),
        [Recipient(p, f"Hi {p}", "whatsapp", row=i + 1) for i, p in enumerate(phones)],
    )
    return row["id"]


def run_sender(queue, clock, until: float, every: float = 30.0, worker="w-1", fail=()):
    """Act as one paced worker until `until`: claim, send, wait; idle a minute when held.

    Returns [(time, phone)] of what went out."""
    sent = []
    while clock.now < until:
        message = queue.claim_next("whatsapp", worker)
        if message is None:
            clock.advance(60)
            continue
        if message["phone"] in fail:
            queue.mark_failed(message["id"], worker, "not_on_whatsapp")
        else:
            queue.mark_sent(message["id"], worker)
            sent.append((clock.now, message["phone"]))
        clock.advance(every)
    return sent


def most_in_any(times: list[float], span: float) -> int:
    """The most sends inside any window of `span` seconds (rolling)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_daily_cap_spreads_500_messages_over_five_days(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock, caps={"whatsapp": Caps(daily=100, hourly=60)})
    job_id = add_job(queue, numbers(500))

    sent = run_sender(queue, clock, until=MONDAY + 6 * DAY)

    times = [t for t, _ in sent]
    assert len(sent) == 500 and len({p for _, p in sent}) == 500
    assert most_in_any(times, DAY) == 100
    assert most_in_any(times, HOUR) <= 60
    # Five days' worth: the 401st goes a little over four days after the first.
    assert 4 * DAY <= times[400] - times[0] < 4 * DAY + HOUR
    assert queue.get_job(job_id)["status"] == "completed"


def test_at_the_cap_the_job_says_why_and_until_when_then_resumes_by_itself(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock, caps={"whatsapp": Caps(daily=0, hourly=5)})
    job_id = add_job(queue, numbers(8))
    sent = run_sender(queue, clock, until=MONDAY + 10 * 60)
    assert len(sent) == 5

    queue.heartbeat("w-1", "whatsapp", "logged_in")  # a live sender, held by its cap
    job = queue.get_job(job_id)
    assert job["status"] == "running"
    assert job["waiting"].reason == "hourly_cap"
    assert job["waiting"].until == pytest.approx(sent[0][0] + HOUR)

    more = run_sender(queue, clock, until=sent[0][0] + HOUR + 5 * 60)
    assert len(more) >= 1 and more[0][0] >= sent[0][0] + HOUR


def test_a_second_worker_or_a_restart_does_not_reset_a_senders_count(database):
    clock = Clock(MONDAY)
    rules = {"caps": {"whatsapp": Caps(daily=3)}}
    queue = queue_with(database, clock, **rules)
    add_job(queue, numbers(10))
    assert len(run_sender(queue, clock, until=MONDAY + HOUR)) == 3
    reopened = queue_with(database, clock, **rules)  # a restart: a new process, same file
    assert reopened.claim_next("whatsapp", "w-1") is None
    # Another sender has its own cap.
    assert reopened.claim_next("whatsapp", "w-2") is not None


def test_a_jobs_own_caps_hold_it_but_not_other_jobs(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock, caps={"whatsapp": Caps(daily=100, hourly=60)})
    capped = add_job(queue, numbers(10), hourly_cap=2)
    other = add_job(queue, numbers(10, "+5511980"))
    sent = run_sender(queue, clock, until=MONDAY + 20 * 60)
    by_job = [p.startswith("+5511990") for _, p in sent]
    assert by_job.count(True) == 2  # the capped job sent two, then gave way
    assert by_job.count(False) == 10
    assert queue.get_job(capped)["waiting"].reason == "hourly_cap"
    assert queue.get_job(other)["status"] == "completed"


def test_a_jobs_cap_counts_rows_other_senders_have_in_flight(database):
    """Several senders share a job: a row one of them claimed and has not marked yet takes a
    place of the job's cap, or each sender would see one place more than there is."""
    clock = Clock(MONDAY)
    queue = queue_with(database, clock)
    job = add_job(queue, numbers(10), hourly_cap=3)
    first = queue.claim_next("whatsapp", "w-1")
    assert first is not None and queue.mark_sent(first["id"], "w-1")
    in_flight = [queue.claim_next("whatsapp", w) for w in ("w-2", "w-3")]
    assert all(in_flight)
    assert queue.claim_next("whatsapp", "w-4") is None  # 1 sent + 2 in flight = 3
    assert queue.get_job(job)["waiting"].reason == "hourly_cap"
    # One in flight fails: its place is free again, once the claim asks again.
    queue.mark_failed(in_flight[0]["id"], "w-2", "not_on_whatsapp")
    clock.advance(30)
    assert queue.claim_next("whatsapp", "w-4") is not None


def test_senders_sharing_a_capped_job_never_pass_its_cap_in_any_hour(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock)
    add_job(queue, numbers(40), hourly_cap=5)
    senders = ["w-1", "w-2", "w-3"]
    sent: list[float] = []
    held: dict[str, dict] = {}
    while clock.now < MONDAY + 4 * HOUR:
        for w in senders:  # each claims, and marks its row at its next turn
            if w in held:
                queue.mark_sent(held.pop(w)["id"], w)
                sent.append(clock.now)
            message = queue.claim_next("whatsapp", w)
            if message is not None:
                held[w] = message
            clock.advance(20)
    assert len(sent) >= 15  # the cap, not something else, is what paces it
    assert most_in_any(sorted(sent), HOUR) <= 5


def test_warm_up_ramps_a_new_sender_day_by_day(database):
    clock = Clock(MONDAY)
    queue = queue_with(
        database,
        clock,
        caps={"whatsapp": Caps(daily=100)},
        warmup_days=5,
        warmup_first_day=20,
    )
    add_job(queue, numbers(600))
    sent = run_sender(queue, clock, until=MONDAY + 7 * DAY, every=60)
    first = sent[0][0]
    per_day = [
        sum(1 for t, _ in sent if first + d * DAY <= t < first + (d + 1) * DAY) for d in range(7)
    ]
    assert per_day == [20, 40, 60, 80, 100, 100, 100]


def test_warm_up_shows_as_the_reason(database):
    clock = Clock(MONDAY)
    queue = queue_with(
        database, clock, caps={"whatsapp": Caps(daily=100)}, warmup_days=3, warmup_first_day=2
    )
    job_id = add_job(queue, numbers(5))
    queue.heartbeat("w-1", "whatsapp", "logged_in")
    run_sender(queue, clock, until=MONDAY + 600)
    queue.heartbeat("w-1", "whatsapp", "logged_in")
    waiting = queue.get_job(job_id)["waiting"]
    assert waiting.reason == "warmup"
    assert waiting.until == pytest.approx(MONDAY + DAY)


def test_a_machine_whose_clock_stands_before_the_first_send_is_on_day_one(database):
    clock = Clock(MONDAY)
    rules = dict(caps={"whatsapp": Caps(daily=200)}, warmup_days=2, warmup_first_day=20)
    queue = queue_with(database, clock, **rules)
    job_id = add_job(queue, numbers(5))
    queue.heartbeat("w-1", "whatsapp", "logged_in")
    run_sender(queue, clock, until=MONDAY + 60)
    # Another machine, a moment behind: a day before day 1 would be a negative allowance.
    behind = queue_with(database, Clock(MONDAY - 0.01), **rules)
    assert behind.get_job(job_id)["status"] in ("running", "completed")
    (worker,) = behind.list_workers(usage=True)
    assert worker["usage"]["warmup_day"] == 1 and worker["usage"]["daily_cap"] == 20
    behind.claim_next("whatsapp", "w-1")  # PostgreSQL refused a negative LIMIT here


ZONES = {
    "+5511991000000": "America/Sao_Paulo",  # no daylight saving since 2019
    "+12125550100": "America/New_York",  # leaves DST on 2026-11-01
    "+919812345678": "Asia/Kolkata",  # +05:30, none
    "+4915112345678": "Europe/Berlin",  # leaves DST on 2026-10-25
}


def mixed_numbers(per_zone: int) -> list[str]:
    out = []
    for base in ZONES:
        out += [base[:-3] + f"{i:03d}" for i in range(per_zone)]
    return out


def zone_of(phone: str) -> str:
    return next(z for base, z in ZONES.items() if phone[:-3] == base[:-3])


@pytest.mark.parametrize(
    "start", [datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)]
)
def test_nobody_gets_a_message_outside_the_window_in_their_own_zone_across_dst(database, start):
    clock = Clock(start.timestamp())
    window = SendWindow.parse("09:00-20:00")
    queue = queue_with(database, clock, window=window)
    phones = mixed_numbers(40)
    add_job(queue, phones)

    sent = run_sender(queue, clock, until=start.timestamp() + 3 * DAY, every=120)

    assert sorted(p for _, p in sent) == sorted(phones)
    for at, phone in sent:
        local = datetime.fromtimestamp(at, ZoneInfo(zone_of(phone)))
        assert 9 <= local.hour < 20, (phone, local)


def test_rows_that_may_go_now_go_while_others_wait(database):
    # 10:00 UTC: 19:00 in Tokyo... use Kolkata (15:30, open) and New York (05:00, closed).
    clock = Clock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp())
    queue = queue_with(database, clock, window=SendWindow.parse("09:00-20:00"))
    ny = [f"+1212555{i:04d}" for i in range(5)]
    india = [f"+9198123{i:05d}" for i in range(5)]
    job_id = add_job(queue, ny + india)  # New York's rows come first in the list
    sent = run_sender(queue, clock, until=clock.now + 15 * 60)
    assert [p for _, p in sent] == india
    waiting = queue.get_job(job_id)["waiting"]
    assert waiting.reason == "send_window"
    # 09:00 in New York (EST, -05:00) is 14:00 UTC.
    assert waiting.until == datetime(2026, 12, 7, 14, 0, tzinfo=UTC).timestamp()


def test_numbers_with_several_zones_use_the_jobs_timezone_else_the_setting(database):
    clock = Clock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC).timestamp())
    window = SendWindow.parse("09:00-20:00")
    queue = queue_with(database, clock, window=window, timezone="Asia/Tokyo")
    australia = ["+61412345678"]  # mobile: eight zones
    by_job = add_job(queue, australia, timezone="Australia/Sydney")  # 13:00 there: open
    assert [p for _, p in run_sender(queue, clock, until=clock.now + 60)] == australia
    assert queue.get_job(by_job)["status"] == "completed"
    add_job(queue, ["+61412345679"])  # no job zone: Tokyo's, 11:00: open
    assert len(run_sender(queue, clock, until=clock.now + 60)) == 1
    clock.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()  # 21:00 in Tokyo
    add_job(queue, ["+61412345670"])
    assert run_sender(queue, clock, until=clock.now + 60) == []


def test_a_scheduled_job_does_not_start_early(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock)
    job_id = add_job(queue, numbers(3), send_at=MONDAY + HOUR)
    job = queue.get_job(job_id)
    assert job["status"] == "scheduled"
    assert job["waiting"] == ("scheduled", MONDAY + HOUR)

    sent = run_sender(queue, clock, until=MONDAY + 2 * HOUR, every=60)
    assert sent[0][0] == MONDAY + HOUR
    assert len(sent) == 3


def test_a_scheduled_job_can_be_started_now_or_stopped(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock)
    now_job = add_job(queue, numbers(1), send_at=MONDAY + DAY)
    stop_job = add_job(queue, numbers(1, "+5511980"), send_at=MONDAY + DAY)
    assert queue.start_job(now_job)["status"] == "pending"
    assert queue.claim_next("whatsapp", "w-1")["job_id"] == now_job
    stopped = queue.stop_job(stop_job)
    assert stopped["status"] == "stopped" and stopped["counts"]["cancelled"] == 1
    clock.advance(2 * DAY)
    assert queue.claim_next("whatsapp", "w-1") is None


def test_a_job_whose_sends_mostly_fail_pauses_itself(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock, failure_rate=0.5, failure_window=10)
    phones = numbers(30)
    bad = set(phones[:6] + phones[10:20])  # 6 of the first 10 fail: 0.6 > 0.5
    job_id = add_job(queue, phones)
    run_sender(queue, clock, until=MONDAY + HOUR, fail=bad)
    job = queue.get_job(job_id)
    assert job["status"] == "paused"
    assert job["waiting"] == ("too_many_failures", None)
    assert job["counts"]["sent"] + job["counts"]["failed"] == 10

    # A resume starts a fresh window: the old failures do not pause it again at once.
    assert queue.resume_job(job_id)["waiting"] is None
    run_sender(queue, clock, until=MONDAY + 2 * HOUR, fail=bad)
    job = queue.get_job(job_id)
    assert job["status"] == "paused"  # the next ten (10..19) all failed
    assert job["counts"]["sent"] + job["counts"]["failed"] == 20


def test_a_job_under_the_failure_rate_or_with_few_sends_is_not_paused(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock, failure_rate=0.5, failure_window=10)
    phones = numbers(12)
    job_id = add_job(queue, phones)
    run_sender(queue, clock, until=MONDAY + HOUR, fail=set(phones[::2]))  # exactly half
    assert queue.get_job(job_id)["status"] == "completed"


def test_a_scheduled_job_due_while_logged_out_waits_for_the_login(database):
    clock = Clock(MONDAY)
    queue = queue_with(database, clock)
    job_id = add_job(queue, numbers(2), send_at=MONDAY + HOUR)
    assert queue.set_channel_waiting("whatsapp", "waiting_for_login") == []  # not due yet
    clock.advance(2 * HOUR)
    assert queue.set_channel_waiting("whatsapp", "waiting_for_login") == [job_id]
    assert queue.get_job(job_id)["status"] == "waiting_for_login"
