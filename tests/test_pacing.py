"""Pacing and retry decisions, with an injected random source and clock."""

from __future__ import annotations

import random
import threading
import time

from config import Settings
from utils.pacing import Delays, Pacer
from worker.delay import wait
from worker.errors import (
    ConfigurationError,
    NotOnWhatsApp,
    PermanentSendError,
    RetryableSendError,
    SessionLostError,
    TransportBroken,
    UncertainSendError,
    decide,
)


def test_delays_stay_in_range_and_long_pause_comes_every_n():
    pacer = Pacer(Delays(4, 8, every=10, long_low=20, long_high=40), random.Random(7))
    delays = [pacer.next_delay() for _ in range(200)]
    long_ones = [i for i, d in enumerate(delays, start=1) if d >= 20]
    assert long_ones == list(range(10, 201, 10))
    assert all(4 <= d <= 8 for i, d in enumerate(delays, start=1) if i % 10)
    assert all(20 <= d <= 40 for i, d in enumerate(delays, start=1) if i % 10 == 0)
    short = [d for i, d in enumerate(delays, start=1) if i % 10]
    assert max(short) - min(short) > 3  # really spread, not a constant


def test_zero_long_pause_every_turns_long_pauses_off():
    pacer = Pacer(Delays(1, 2, every=0, long_low=50, long_high=60), random.Random(1))
    assert all(1 <= pacer.next_delay() <= 2 for _ in range(50))


def test_same_seed_same_delays():
    a = Pacer(Delays(4, 8), random.Random(3))
    b = Pacer(Delays(4, 8), random.Random(3))
    assert [a.next_delay() for _ in range(5)] == [b.next_delay() for _ in range(5)]


def test_each_channel_is_paced_by_its_own_delays():
    settings = Settings(
        min_delay=4, max_delay=8, sms_min_delay=10, sms_max_delay=20, long_pause_every=0
    )

    def span(channel):
        delays = Delays.for_channel(settings, channel)
        return delays.low, delays.high

    assert span("sms") == (10, 20)
    assert span("whatsapp") == (4, 8)
    # A job that may fall back to SMS is paced by WhatsApp, which sends nearly all of it.
    assert span("whatsapp_then_sms") == (4, 8)
    assert Delays.for_channel(settings, "sms").seconds_per_message() == 15 + 5


def test_wait_returns_at_once_when_stopped():
    stop = threading.Event()
    stop.set()
    assert wait(stop, 3600) is False


def test_wait_ends_when_no_longer_wanted():
    calls = []
    assert (
        wait(threading.Event(), 3600, lambda: calls.append(1) or len(calls) < 2, step=0.001)
        is False
    )
    assert len(calls) == 2


def test_wait_of_zero_or_less_is_immediate():
    assert wait(threading.Event(), 0) is True
    assert wait(threading.Event(), -5) is True


def test_retry_decisions_by_error_class():
    now = 1000.0
    assert decide(RetryableSendError("x"), 1, 3, now, 30).action == "retry"
    assert decide(RetryableSendError("x"), 1, 3, now, 30).at == 1030
    assert decide(RetryableSendError("x"), 2, 3, now, 30).at == 1060
    assert decide(RetryableSendError("x"), 3, 3, now, 30).action == "fail"
    assert decide(NotOnWhatsApp("x"), 1, 3, now, 30).code == "not_on_whatsapp"
    assert decide(NotOnWhatsApp("x"), 1, 3, now, 30).action == "fail"
    assert (
        decide(PermanentSendError("x", code="gateway_rejected"), 1, 3, now, 30).code
        == "gateway_rejected"
    )
    assert decide(SessionLostError("x"), 3, 3, now, 30).action == "release"
    assert decide(ConfigurationError("x"), 1, 3, now, 30).action == "release"
    assert decide(UncertainSendError("x"), 1, 3, now, 30).action == "verify"
    assert decide(TransportBroken("x", may_have_sent=True), 1, 3, now, 30).action == "verify"
    assert decide(TransportBroken("x", may_have_sent=False), 1, 3, now, 30).action == "release"


def test_what_runs_during_a_pause_is_part_of_it_not_added_to_it():
    stop = threading.Event()
    started = time.monotonic()

    def slow_chore():  # reading replies during the pause, say
        stop.wait(0.3)
        return True

    assert wait(stop, 0.5, slow_chore, step=0.1) is True
    assert time.monotonic() - started < 1.5  # counted in steps it was 5 x 0.4 s = 2 s
