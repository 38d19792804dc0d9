"""Careful sending end to end in real headless Chromium against the WhatsApp Web stand-in:
an hourly cap holds a live job and lets it go on by itself, and a scheduled job starts on time.

The queue is opened with the rules the settings give, as app.py and run_worker.py open it.
Its clock runs on real time plus an offset, so "an hour later" is one assignment, not an hour.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from message_queue import Queue, SendingRules
from tests.test_whatsapp_e2e import SELECTORS, create_job, digits, job_status, received
from tests.wa_e2e_support import WorkerThread, holds_for, wait_until
from tests.wa_standin import StandinServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _needs_chromium(chromium):
    """Every test here drives a real Chromium."""


@pytest.fixture(scope="module")
def server():
    with StandinServer(tick_delay=0.05) as srv:
        yield srv


@pytest.fixture
def wa(server):
    server.reset()
    server.login()
    return server


class ShiftedClock:
    """Real time, moved forward by `offset` seconds when a test says time has passed."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def careful(settings, wa):
    """(settings, queue, client, clock) with caps in force; every worker stopped at the end."""
    from app import create_app

    s = settings.replace(
        whatsapp_web_url=wa.url,
        send_timeout=10.0,
        selectors_file=str(SELECTORS),
        whatsapp_hourly_cap=5,
        whatsapp_daily_cap=200,
    )
    clock = ShiftedClock()
    queue = Queue(s.database_path, clock=clock, rules=SendingRules.from_settings(s))
    app = create_app(s, queue)
    workers: list[WorkerThread] = []
    yield s, queue, app.test_client(), clock, workers
    for w in workers:
        w.stop()
    queue.close()


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
