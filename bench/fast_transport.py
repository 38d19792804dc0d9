"""A transport that sends nothing and takes no time: it only notes when each send happened.

It has the shape of worker.transport.Transport, so the real Worker loop (claim, pace, send,
record, heartbeat) runs unchanged around it; only the channel is missing.
"""

from __future__ import annotations

import random
import time

from worker import transport as t


class FastTransport:
    """Always logged in; `send` records time.monotonic() and returns at once."""

    channel = "whatsapp"
    traits = t.WAITS_FOR_LOGIN

    def __init__(self):
        self.sent_at: list[float] = []

    def check_session(self) -> t.SessionState:
        return t.SessionState(t.LOGGED_IN)

    def send(self, message: dict) -> t.SendResult:
        self.sent_at.append(time.monotonic())
        return t.SendResult(provider_id=f"fast-{message['id']}")

    def verify(self, message: dict) -> str:
        return "not_sent"

    def close(self) -> None:
        pass


class RecordingRandom(random.Random):
    """A random source that remembers every delay the pacer drew, in order."""

    def __init__(self, seed=None):
        super().__init__(seed)
        self.drawn: list[float] = []

    def uniform(self, a, b):
        value = super().uniform(a, b)
        self.drawn.append(value)
        return value
