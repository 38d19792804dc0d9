"""The careful-sending rules (contract section 8) as one value the queue is opened with.

The API and the workers build it once from their settings (`SendingRules.from_settings`);
a queue opened without it (tests, tools) applies no caps, no window and no auto-pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from utils.sendwindow import SendWindow

DAY = 86_400.0
HOUR = 3_600.0


@dataclass(frozen=True)
class Caps:
    """Most messages in a rolling 24 hours and 60 minutes; 0 is no cap."""

    daily: int = 0
    hourly: int = 0


@dataclass(frozen=True)
class SendingRules:
    # Per transport channel ("whatsapp", "sms"): what one sender may send.
    caps: dict[str, Caps] = field(default_factory=dict)
    warmup_days: int = 0
    warmup_first_day: int = 20
    window: SendWindow | None = None
    timezone: str = "UTC"
    failure_rate: float = 0.0  # 0: a job never pauses itself
    failure_window: int = 20

    @classmethod
    def from_settings(cls, settings) -> SendingRules:
        return cls(
            caps={
                "whatsapp": Caps(settings.whatsapp_daily_cap, settings.whatsapp_hourly_cap),
                "sms": Caps(settings.sms_daily_cap, settings.sms_hourly_cap),
            },
            warmup_days=settings.warmup_days,
            warmup_first_day=settings.warmup_first_day,
            window=SendWindow.parse(settings.send_window),
            timezone=settings.timezone,
            failure_rate=settings.auto_pause_failure_rate,
            failure_window=settings.auto_pause_window,
        )

    def caps_for(self, channel: str) -> Caps:
        return self.caps.get(channel, Caps())

    def zone(self, zone: str) -> str:
        """A row's zone as stored ('' is the configured TIMEZONE) as an IANA name."""
        return zone or self.timezone

    def warmup_day(self, first_send_at: float | None, now: float) -> int | None:
        """Which day of its warm-up a sender is on (1 = its first 24 hours); None when off
        or already over, or when it has not sent yet (it is then on day 1 once it does)."""
        if not self.warmup_days:
            return None
        # At least day 1: another machine's clock may stand a moment before the first send.
        day = 1 if first_send_at is None else max(int((now - first_send_at) // DAY) + 1, 1)
        return day if day < self.warmup_days else None

    def daily_allowance(self, channel: str, first_send_at: float | None, now: float) -> int:
        """How many a sender may send in 24 hours today: the daily cap, lower in warm-up.

        Day n allows FIRST + (CAP - FIRST) * (n - 1) / (DAYS - 1), rounded down; 0 is no cap.
        """
        cap = self.caps_for(channel).daily
        day = self.warmup_day(first_send_at, now)
        if not cap or day is None:
            return cap
        first = min(self.warmup_first_day, cap)
        return min(cap, first + (cap - first) * (day - 1) // (self.warmup_days - 1))


NO_RULES = SendingRules()
