"""Quiet hours: the part of each day in which messages may reach a recipient (SEND_WINDOW).

The window holds on the recipient's own clock: it is open at an instant when a clock in the
recipient's zone then shows a time inside it. Daylight saving follows from that one rule.
When the clocks spring forward past the start, the window opens at the first instant after
the gap (02:30 in a 02:00-03:00 gap: at 03:00); a window lying wholly inside the gap does not
open that day. When they fall back, it opens at the first 01:30; and as the clock goes back
an hour, a window can close or open again with it (01:30-06:00 shuts from 02:00 EDT, which
is 01:00 EST, until 01:30 EST). Clocks mostly change at night: a daytime window seldom sees it.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
_SECONDS_PER_DAY = MINUTES_PER_DAY * 60
_FORM = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*")
# tzdata has no zone whose offset changed twice within 7 days since 1970, and `_next_change`
# needs only that no two changes come within a day: one round to reach a change, one after.
_MAX_ROUNDS = 4


@dataclass(frozen=True)
class SendWindow:
    """Minutes after local midnight: `start` inclusive, `end` exclusive; start > end spans
    midnight (22:00-06:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start < MINUTES_PER_DAY and 0 <= self.end < MINUTES_PER_DAY):
            raise ValueError(f"window minutes must be 0-1439, not {self.start}-{self.end}")
        if self.start == self.end:
            raise ValueError(f"window {self} is empty: it starts when it ends")

    @classmethod
    def parse(cls, text: str) -> SendWindow | None:
        """The window `text` ("09:00-20:00", "9:00 - 20:00") describes; None for no window."""
        if not text.strip():
            return None
        match = _FORM.fullmatch(text)
        hours_minutes = [int(part) for part in match.groups()] if match else []
        if not hours_minutes or max(hours_minutes[0::2]) > 23 or max(hours_minutes[1::2]) > 59:
            raise ValueError(
                f"SEND_WINDOW must be HH:MM-HH:MM on a 24-hour clock, such as 09:00-20:00, "
                f"not {text!r}"
            )
        start_hour, start_minute, end_hour, end_minute = hours_minutes
        start, end = start_hour * 60 + start_minute, end_hour * 60 + end_minute
        if start == end:
            raise ValueError(
                f"SEND_WINDOW {text.strip()!r} is empty: it starts when it ends "
                f"(leave SEND_WINDOW empty to send at any time)"
            )
        return cls(start, end)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    def open_seconds_per_day(self) -> int:
        """How long the window is open on an ordinary day (without a daylight-saving change)."""
        return (self.end - self.start) % MINUTES_PER_DAY * 60

    def is_open(self, zone: str, at: float) -> bool:
        """Whether a clock in `zone` (an IANA name) shows a time inside the window at `at`."""
        local = datetime.fromtimestamp(at, _zone(zone))
        return self._holds(local.hour * 60 + local.minute)

    def next_open(self, zone: str, at: float) -> float:
        """`at` when the window is open then, else the first unix time after it when it opens."""
        return self._next_change(_zone(zone), at, opening=True)

    def closes_at(self, zone: str, at: float) -> float:
        """The first unix time from `at` on when the window is closed: `at` when it is."""
        return self._next_change(_zone(zone), at, opening=False)

    def _holds(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def _next_change(self, zone: ZoneInfo, at: float, opening: bool) -> float:
        """The first instant from `at` on when the window is open (`opening`) or closed.

        While the zone's offset holds, the clock runs with unix time, so the change comes
        when the clock next shows the window's start (or end). If the offset changes before
        then, the clock jumps: the change may come at the jump, or else is sought afresh from
        it with the new offset. Wall-clock times are never reached by adding 86,400 seconds
        across a change.
        """
        boundary = (self.start if opening else self.end) * 60
        for _ in range(_MAX_ROUNDS):
            local = datetime.fromtimestamp(at, zone)
            if self._holds(local.hour * 60 + local.minute) == opening:
                return at
            # Whole seconds from here on: offsets and their changes fall on whole seconds.
            whole = math.floor(at)
            local = datetime.fromtimestamp(whole, zone)
            clock = local.hour * 3600 + local.minute * 60 + local.second
            candidate = whole + (boundary - clock) % _SECONDS_PER_DAY
            offset = local.utcoffset()
            if datetime.fromtimestamp(candidate, zone).utcoffset() == offset:
                return float(candidate)
            at = float(_offset_change(zone, whole, candidate))
        raise RuntimeError(f"{self} found no change in {zone.key} after {at}")


def _offset_change(zone: ZoneInfo, before: int, after: int) -> int:
    """The first whole second in (before, after] with another offset than `before` has."""
    offset = datetime.fromtimestamp(before, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after


# ZoneInfo keeps only 8 zones alive by itself; a list's recipients may span more, and a
# zone dropped from its cache is read from disk again.
@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
