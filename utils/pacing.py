"""Pacing: how long a sender waits between two messages.

The one home of the rule: the worker draws its pauses from it, and the API's estimates
(`/preview`, a job's ETA, the /app page's words) are computed from the same numbers, so what
the page promises and what the worker does cannot drift apart.
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class Limits:
    """How many messages a job can send: caps per day and hour, hours a day it may send."""

    daily: int = 0  # 0: no cap
    hourly: int = 0
    open_hours: float = 24.0  # the send window's length

    @classmethod
    def for_job(
        cls, settings, channel: str, daily: int | None = None, hourly: int | None = None
    ) -> Limits:
        """The caps of the job's first transport, lowered by the job's own, and the window."""
        from utils.sendwindow import SendWindow

        first = job_channel(channel).first
        caps = (
            getattr(settings, f"{first}_daily_cap", 0),
            getattr(settings, f"{first}_hourly_cap", 0),
        )
        window = SendWindow.parse(settings.send_window)
        return cls(
            daily=_lowest(caps[0], daily),
            hourly=_lowest(caps[1], hourly),
            open_hours=window.open_seconds_per_day() / 3600 if window else 24.0,
        )

    def seconds(self, count: int, per_message: float) -> int:
        """About how long `count` messages take at `per_message` seconds each, within limits.

        Caps are rolling: a sender goes at its pace until a cap is reached, then waits for
        the oldest send to leave the window. So an hour sends at most its cap, in a burst;
        a day sends its cap or what the hours of its send window hold.
        """
        if count <= 0:
            return 0
        days = max(math.ceil(count / self.per_day(per_message)) - 1, 0)
        rest = count - days * self.per_day(per_message)
        return int(round(days * 86_400 + self._within_a_day(rest, per_message)))

    def per_hour(self, per_message: float) -> float:
        paced = 3600 / per_message if per_message > 0 else float("inf")
        return min(paced, self.hourly) if self.hourly else paced

    def per_day(self, per_message: float) -> float:
        in_window = self.per_hour(per_message) * self.open_hours
        return min(in_window, self.daily) if self.daily else in_window

    def _within_a_day(self, count: float, per_message: float) -> float:
        if self.hourly and self.hourly * per_message < 3600:  # bursts of a cap, an hour apart
            hours = max(math.ceil(count / self.hourly) - 1, 0)
            return hours * 3600 + (count - hours * self.hourly) * per_message
        return count * per_message

    def describe(self, count: int, per_message: float) -> str:
        """The estimate in words: "About 5 days at 200 a day." for 1,000 at a cap of 200."""
        per_day = self.per_day(per_message)
        if count > per_day:
            words = f"About {math.ceil(count / per_day)} days at {int(per_day):,} a day"
        else:
            words = f"About {_duration(self.seconds(count, per_message))}"
            if self.hourly and count > self.hourly and self.per_hour(per_message) == self.hourly:
                words += f" at {self.hourly} an hour"
        if self.open_hours < 24:
            words += f", sending {self.open_hours:g} hours a day in each person's own time"
        return words + "."


def _lowest(setting: int, job: int | None) -> int:
    values = [v for v in (setting, job) if v]
    return min(values) if values else 0


def _duration(seconds: int) -> str:
    for unit, size, up_to in (
        ("second", 1, 90),
        ("minute", 60, 90 * 60),
        ("hour", 3600, 36 * 3600),
        ("day", 86_400, None),
    ):
        if up_to is None or seconds < up_to:
            n = round(seconds / size)
            return f"{n} {unit}" + ("" if n == 1 else "s")
    raise AssertionError("unreachable")
