"""Careful sending end to end in real headless Chromium against the WhatsApp Web stand-in:
an hourly cap holds a live job and lets it go on by itself, a scheduled job starts on time,
and a message's spintax variant, fixed in its row, survives a worker killed mid-send.

The queue is opened with the rules the settings give, as app.py and run_worker.py open it.
Its clock runs on real time plus an offset, so "an hour later" is one assignment, not an hour.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from message_queue import Queue, SendingRules
from tests.test_whatsapp_e2e import (
    FINISH,
    SELECTORS,
    SEND_TIMEOUT,
    _needs_chromium,  # noqa: F401 - a fixture: every test here drives a real Chromium
    assert_exactly_once,
    create_job,
    digits,
    in_flight_row,
    job_status,
    phones,
    received,
    rows,
    server,  # noqa: F401 - a fixture: the WhatsApp Web stand-in, one per module
    wait_finished,
)
from tests.wa_e2e_support import (
    WorkerProcess,
    WorkerThread,
    holds_for,
    processes_with,
    wait_until,
    worker_environment,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def wa(server):
    """The stand-in of tests/test_whatsapp_e2e.py (its `server`, Chromium needed), logged in."""
    server.reset()
    server.login()
    return server


class ShiftedClock:
    """Real time, moved forward by `offset` seconds when a test says time has passed."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def careful_api(settings, wa, **caps):
    """(settings, queue, client, clock): the API on a queue opened with the settings' rules."""
    from app import create_app

    s = settings.replace(
        whatsapp_web_url=wa.url, send_timeout=10.0, selectors_file=str(SELECTORS), **caps
    )
    clock = ShiftedClock()
    queue = Queue(s.database_path, clock=clock, rules=SendingRules.from_settings(s))
    return s, queue, create_app(s, queue).test_client(), clock


@pytest.fixture
def careful(settings, wa):
    """(settings, queue, client, clock) with caps in force; every worker stopped at the end."""
    s, queue, client, clock = careful_api(
        settings, wa, whatsapp_hourly_cap=5, whatsapp_daily_cap=200
    )
    workers: list[WorkerThread] = []
    yield s, queue, client, clock, workers
    for w in workers:
        w.stop()
    queue.close()


@pytest.fixture
def default_caps(settings, wa):
    """(settings, queue, client) with the default caps and auto-pause (60 and 200 a day)."""
    s, queue, client, _ = careful_api(settings, wa)
    yield s, queue, client
    queue.close()


@pytest.fixture
def worker_process(default_caps, tmp_path):
    """Start `run_worker.py` processes on the test's database, each killed at the end.

    A process reads its settings from its environment only: the caps and auto-pause the API's
    queue was opened with are passed to it explicitly, so both sides hold the same rules.
    """
    s = default_caps[0]
    procs: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        env = worker_environment(
            database_path=s.database_path,
            whatsapp_web_url=s.whatsapp_web_url,
            chrome_profile_dir=s.chrome_profile_dir,
            selectors_file=s.selectors_file,
            worker_id="e2e-proc",
            send_timeout=SEND_TIMEOUT,
            long_pause_every=0,
            min_delay=0.3,
            max_delay=0.3,
            retry_backoff=0,
            whatsapp_hourly_cap=s.whatsapp_hourly_cap,
            whatsapp_daily_cap=s.whatsapp_daily_cap,
            auto_pause_failure_rate=s.auto_pause_failure_rate,
            auto_pause_window=s.auto_pause_window,
        )
        procs.append(WorkerProcess(env, tmp_path / "worker.log"))
        return procs[-1]

    yield start
    for p in procs:
        p.close()


def iso_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_cap_of_5_an_hour_sends_5_says_until_when_and_goes_on_by_itself(careful, auth, wa):
    settings, queue, client, clock, workers = careful
    numbers = [f"+1415555{300 + i:04d}" for i in range(7)]
    job_id = create_job(client, auth, message="Capped {phone}", numbers=numbers)
    workers.append(WorkerThread(settings, queue))

    wait_until(lambda: len(received(wa)) >= 5, 40, "five messages to arrive")
    status = wait_until(
        lambda: (s := job_status(client, auth, job_id))["waiting"] and s,
        10,
        "the job to say it waits",
    )
    # A worker that ignored the cap would send the sixth within a second (no pacing here).
    holds_for(lambda: len(received(wa)) == 5, 1.5, "five messages and no more")
    assert status["status"] == "running"
    assert status["waiting"]["reason"] == "hourly_cap"
    first = min(r["claimed_at"] for r in queue.list_messages(job_id)[0] if r["claimed_at"])
    assert iso_time(status["waiting"]["until"]) == pytest.approx(first + 3600, abs=1)
    limits = client.get("/session", headers=auth).get_json()["workers"][0]["limits"]
    assert (limits["sent_last_hour"], limits["hourly_cap"]) == (5, 5)
    assert limits["waiting"]["reason"] == "hourly_cap"

    clock.offset = 3601.0  # the hour has passed
    wait_until(
        lambda: job_status(client, auth, job_id)["status"] == "completed",
        30,
        "the job to go on by itself and complete",
    )
    assert sorted(p for p, _ in received(wa)) == sorted(digits(n) for n in numbers)


def test_a_scheduled_job_starts_on_time(careful, auth, wa):
    settings, queue, client, clock, workers = careful
    workers.append(WorkerThread(settings, queue))
    start = time.time() + 6
    send_at = datetime.fromtimestamp(start, UTC).isoformat(timespec="milliseconds")
    job_id = create_job(
        client, auth, message="Scheduled {phone}", numbers=["+14155550400"], send_at=send_at
    )
    assert job_status(client, auth, job_id)["status"] == "scheduled"
    wait_until(lambda: received(wa), 30, "the scheduled message to arrive", interval=0.05)
    arrived = wa.messages()[0]["at"]
    assert start <= arrived < start + 5, arrived - start
    wait_until(lambda: job_status(client, auth, job_id)["status"] == "completed", 10, "completion")


SPUN = "{Hi|Hello|Good morning} {name}, {see you|talk} soon"
SPUN_TEXT = re.compile(r"(Hi|Hello|Good morning) (\w+), (see you|talk) soon")


def test_a_spintax_variant_fixed_in_its_row_survives_a_kill_after_the_click(
    default_caps, auth, wa, worker_process
):
    """The worker killed after a message's click, before its tick: the restarted worker finds
    that row's own variant in the chat and marks it sent, never sends another variant."""
    settings, queue, client = default_caps
    contacts = [{"phone": p, "name": f"Name{i}"} for i, p in enumerate(phones(12, first=500))]
    job_id = create_job(client, auth, message=SPUN, contacts=contacts)
    stored = {r["phone"]: r["text"] for r in rows(queue, job_id)}
    names = {c["phone"]: c["name"] for c in contacts}
    for phone, text in stored.items():  # one variant each, picked when the row was written
        match = SPUN_TEXT.fullmatch(text)
        assert match and match.group(2) == names[phone], text
    wa.login()
    worker = worker_process()
    wait_until(lambda: len(wa.messages()) >= 2, FINISH, "2 messages to arrive", details=worker.log)

    # Kill after the click, before the tick (a slow tick makes that window wide), on a message
    # sent after the tick was slowed, so its tick cannot come between the look and the kill.
    before = {m["phone"] for m in wa.messages()}
    wa.configure(tick_delay=1.5)

    def clicked_not_ticked():
        row = in_flight_row(wa, queue, job_id, arrived=True)
        return row if row and digits(row["phone"]) not in before else None

    killed = wait_until(
        clicked_not_ticked, FINISH, "a message clicked, not yet ticked", 0.01, worker.log
    )
    worker.kill()
    assert next(r for r in rows(queue, job_id) if r["id"] == killed["id"])["status"] == "sending"
    assert [t for p, t in received(wa) if p == digits(killed["phone"])] == [killed["text"]]
    wait_until(lambda: not processes_with(settings.chrome_profile_dir), 5, "the old Chromium to go")
    wa.configure(tick_delay=0.05)
    worker = worker_process()

    wait_finished(client, auth, job_id, wa, timeout=60)
    worker.terminate()
    assert worker.wait(SEND_TIMEOUT + 5) == 0, worker.log()
    assert_exactly_once(wa, queue, job_id, stored)  # each got its row's text, once
    assert f"recovered message {killed['id']}: sent" in worker.log(10**6)
    variants = {SPUN_TEXT.sub(r"\1 \3", text) for _, text in received(wa)}
    assert len(variants) >= 2, variants
    assert queue.integrity_check() == "ok"
