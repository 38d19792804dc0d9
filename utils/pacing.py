"""Pacing: how long a sender waits between two messages.

The one home of the rule: the worker draws its pauses from it, and the API's estimates
(`/preview`, a job's ETA, the /app page's words) are computed from the same numbers, so what
the page promises and what the worker does cannot drift apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from message_queue.channels import job_channel

# Seconds one send takes besides the pause (open the chat, type, wait for the tick).
SEND_SECONDS = 5.0


@dataclass(frozen=True)
class Delays:
    """A random pause between `low` and `high` seconds, longer after every `every` messages."""

    low: float
    high: float
    every: int = 0
    long_low: float = 0.0
    long_high: float = 0.0

    @classmethod
    def for_channel(cls, settings, channel: str) -> Delays:
        """The pauses of a transport or job channel (a job is paced by its first transport).

        SMS has its own, slower delays: Android and carriers throttle far below WhatsApp.
        """
        if job_channel(channel).first == "sms":
            low, high = settings.sms_min_delay, settings.sms_max_delay
        else:
            low, high = settings.min_delay, settings.max_delay
        return cls(
            low, high, settings.long_pause_every, settings.long_pause_min, settings.long_pause_max
        )

    def seconds_per_message(self) -> float:
        """The mean time one message takes: its share of the pauses plus the send itself."""
        mean = (self.low + self.high) / 2 + SEND_SECONDS
        if self.every:
            mean += (self.long_low + self.long_high) / 2 / self.every
        return mean

    def estimate_seconds(self, count: int) -> int:
        """About how long `count` messages take."""
        return int(round(self.seconds_per_message() * count))

    def describe(self) -> dict:
        """The pauses as numbers and in plain words, for /preview and the /app page."""
        if self.high <= 0:
            summary = "No pause between messages: each goes as soon as the previous one is sent."
        else:
            summary = f"One message every {_span(self.low, self.high)} seconds"
            if self.every and self.long_high > 0:
                pause = _span(self.long_low, self.long_high)
                summary += (
                    f", with a longer break of {pause} seconds after every {self.every} messages"
                )
            summary += ", so it looks like a person typing and not like a robot."
        return {
            "min_delay": self.low,
            "max_delay": self.high,
            "long_pause_every": self.every,
            "long_pause_min": self.long_low,
            "long_pause_max": self.long_high,
            "summary": summary,
        }


class Pacer:
    """Draws the worker's pauses from `Delays`; randomness is injected for tests."""

    def __init__(self, delays: Delays, rng: random.Random | None = None):
        self.delays = delays
        self.rng = rng or random.Random()
        self.sent = 0

    def next_delay(self) -> float:
        """Seconds to wait after one more message was sent."""
        self.sent += 1
        d = self.delays
        if d.every and self.sent % d.every == 0:
            return self.rng.uniform(d.long_low, d.long_high)
        return self.rng.uniform(d.low, d.high)


def _span(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"
