"""Pacing: random pauses between messages and a longer one every N, waited on an Event.

Randomness and the clock are injected so a test can check the distribution without waiting.
"""
from __future__ import annotations

import random
import threading


class Pacer:
    """Says how long to wait before the next message, and waits it interruptibly."""

    def __init__(self, min_delay: float, max_delay: float, long_every: int = 0,
                 long_min: float = 0.0, long_max: float = 0.0, rng: random.Random | None = None):
        self.min_delay, self.max_delay = min_delay, max_delay
        self.long_every, self.long_min, self.long_max = long_every, long_min, long_max
        self.rng = rng or random.Random()
        self.sent = 0

    @classmethod
    def from_settings(cls, settings, rng: random.Random | None = None,
                      channel: str = "whatsapp") -> "Pacer":
        """A pacer with the delays of `settings` (SMS has its own, for phone and carrier limits)."""
        low, high = settings.min_delay, settings.max_delay
        if channel == "sms":
            low, high = settings.sms_min_delay, settings.sms_max_delay
        return cls(low, high, settings.long_pause_every, settings.long_pause_min,
                   settings.long_pause_max, rng)

    def next_delay(self) -> float:
        """Seconds to wait after one more message was sent."""
        self.sent += 1
        if self.long_every and self.sent % self.long_every == 0:
            return self.rng.uniform(self.long_min, self.long_max)
        return self.rng.uniform(self.min_delay, self.max_delay)


def wait(stop: threading.Event, seconds: float, still_wanted=lambda: True,
         step: float = 0.5) -> bool:
    """Wait up to `seconds`; False as soon as `stop` is set or `still_wanted()` turns False."""
    remaining = seconds
    while remaining > 0:
        if stop.wait(min(step, remaining)):
            return False
        if not still_wanted():
            return False
        remaining -= step
    return not stop.is_set()
