"""A third channel that lives only here proves the seams: one class plus one registration line.

"Pigeon" sends by carrier pigeon. Nothing in worker/ or message_queue/ knows its name, yet
the real loop claims, paces, sends, records, parks its jobs when the loft is closed, resumes
them, and follows deliveries, all from what the transport declares about itself.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from message_queue import JobStatus, NewJob, Queue, Recipient
from utils.pacing import Delays
from worker import channels
from worker import transport as t
from worker.worker import SESSION_RECHECK, Worker

from .fakes import Clock

ROOT = Path(__file__).resolve().parent.parent
# The loop and its helpers: none of them may name a channel.
LOOP_MODULES = (
    "worker.py",
    "deliveries.py",
    "recovery.py",
    "delay.py",
    "inbox.py",
    "housekeeping.py",
)


class PigeonTransport:
    """A channel with its own traits and delivery reports (pigeons come back to say so)."""

    channel = "pigeon"
    traits = t.Traits(JobStatus.WAITING_FOR_GATEWAY, "loft_closed", park_when_unavailable=True)
    delivery_window = 3600.0

    def __init__(self, settings=None, abort: threading.Event | None = None):
        self.settings, self.abort = settings, abort
        self.loft_open = True
        self.flown: list[str] = []
        self.returned: set[int] = set()

    def check_session(self) -> t.SessionState:
        return t.SessionState(t.LOGGED_IN if self.loft_open else t.UNAVAILABLE, "loft closed")

    def send(self, message) -> t.SendResult:
        self.flown.append(message["phone"])
        return t.SendResult(provider_id=f"ring-{message['id']}")

    def verify(self, message) -> str:
        return "sent" if message["phone"] in self.flown else "not_sent"

    def close(self) -> None:
        pass

    def tracking_id(self, message) -> str | None:
        return f"ring-{message['id']}"

    def poll_deliveries(self, rows: list[dict]) -> list[int]:
        return [r["id"] for r in rows if r["id"] in self.returned]


@pytest.fixture
def registered(monkeypatch):
    """The one registration line, added for this test only."""
    monkeypatch.setitem(channels.REGISTRY, "pigeon", "tests.test_third_channel:PigeonTransport")


def test_a_registered_channel_is_built_by_name(registered, settings):
    transport = channels.make_transport(
        settings.replace(worker_channel="pigeon"), threading.Event()
    )
    assert isinstance(transport, PigeonTransport)
    assert isinstance(transport, t.ReportsDelivery)
    assert not isinstance(transport, t.ReceivesMessages)  # abilities are declared, not assumed


def test_the_real_loop_sends_parks_resumes_and_follows_a_third_channel(registered, settings):
    clock = Clock()
    queue = Queue(settings.database, clock=clock)
    transport = channels.make_transport(
        settings.replace(worker_channel="pigeon"), threading.Event()
    )
    phones = ["+15550001", "+15550002", "+15550003"]
    job, _ = queue.create_job(
        NewJob(channel="pigeon", template="coo"),
        [Recipient(phone=p, text="coo", channel="pigeon") for p in phones],
    )
    worker = Worker(
        settings,
        queue,
        transport,
        threading.Event(),
        clock=clock,
        idle_poll=0,
        session_poll=0,
        delivery_poll=0,
    )

    assert worker.run_once() is True  # one message out
    transport.loft_open = False
    clock.advance(SESSION_RECHECK + 1)  # when the loop looks at the session again
    assert worker.run_once() is False  # the channel is down: its own traits say how to show it
    assert queue.get_job(job["id"])["status"] == JobStatus.WAITING_FOR_GATEWAY
    assert queue.list_workers()[0]["state"] == "loft_closed"

    transport.loft_open = True
    while worker.run_once():
        pass
    assert transport.flown == phones  # each once, in order
    assert queue.get_job(job["id"])["status"] == JobStatus.COMPLETED

    transport.returned = {m["id"] for m in queue.list_messages(job["id"])[0]}
    clock.advance(1)
    worker.run_once()  # idle: asks about deliveries, as the channel declared it can
    assert queue.get_job(job["id"])["counts"]["delivered"] == 3
    queue.close()


def test_pacing_of_an_unknown_channel_is_the_general_one(settings):
    paced = settings.replace(min_delay=1, max_delay=2, sms_min_delay=30, sms_max_delay=40)
    delays = Delays.for_channel(paced, "pigeon")
    assert (delays.low, delays.high) == (1, 2)


@pytest.mark.parametrize("module", LOOP_MODULES)
def test_the_loop_never_names_a_channel(module):
    source = (ROOT / "worker" / module).read_text()
    code = re.sub(r'""".*?"""|#[^\n]*', "", source, flags=re.S)  # docstrings, comments may
    assert not re.search(r"""["'](whatsapp|sms)["']""", code, flags=re.I), module
