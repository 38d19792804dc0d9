"""The loop's InboxReader (worker/inbox.py) with a scripted channel: what it hands the channel.

The channel gets from the reader, not from a database of its own, which bubbles are stored
already; the real channels' reading is tested in real Chromium and against the phone stand-in.
"""

from __future__ import annotations

import threading

import pytest

from message_queue import DatabaseUnavailable
from worker import transport as t
from worker.inbox import InboxReader
from worker.worker import Worker

from .fakes import Clock, FakeTransport


class ReadingTransport(FakeTransport):
    """A FakeTransport that reads replies (t.ReceivesMessages) by calling `on_poll`."""

    wants_since = False
    inbound_problem = None

    def __init__(self, on_poll):
        super().__init__("whatsapp")
        self.on_poll = on_poll

    def poll_inbound(self, since=None, seen=None, stop=None) -> list[t.Inbound]:
        self.stop = stop
        return self.on_poll(seen)


def test_the_channel_asks_the_loop_s_queue_which_replies_are_stored(settings, queue):
    reply = t.Inbound("+14155550100", "ok", 1_700_000_000.0, provider_id="false_1@c.us_A")
    asked = []

    def on_poll(seen):
        asked.append(seen("+1 415 555 0100", ["false_1@c.us_A", "false_1@c.us_B"]))
        return [reply]

    reader = InboxReader(queue, settings, ReadingTransport(on_poll), Clock())
    assert reader.read_if_due() == 1
    assert asked == [set()]
    reader.next_read = 0
    assert reader.read_if_due() == 0  # the same reply again: stored once
    # Keyed as the reply was stored (E.164), whatever way the channel writes the number.
    assert asked[-1] == {"false_1@c.us_A"}


def test_a_database_gone_while_the_channel_asks_is_not_taken_for_a_read_error(settings, queue):
    def on_poll(seen):
        raise DatabaseUnavailable("disk I/O error")

    reader = InboxReader(queue, settings, ReadingTransport(on_poll), Clock())
    with pytest.raises(DatabaseUnavailable):  # the worker exits and systemd restarts it
        reader.read_if_due()


def test_the_channel_gets_the_stop_event_and_a_stopped_worker_starts_no_read(settings, queue):
    stop, polls = threading.Event(), []
    transport = ReadingTransport(lambda seen: polls.append(1) or [])
    reader = InboxReader(queue, settings, transport, Clock(), stop=stop)
    reader.read_if_due()
    assert transport.stop is stop and polls == [1]
    stop.set()
    reader.next_read = 0
    assert reader.read_if_due() == 0 and polls == [1]


def test_the_worker_hands_the_reader_its_own_stop_event(settings, queue):
    stop = threading.Event()
    transport = ReadingTransport(lambda seen: [])
    worker = Worker(settings, queue, transport, stop, clock=Clock(), idle_poll=0)
    worker.run_once()  # nothing to send: the idle worker reads replies
    assert transport.stop is stop
