"""The careful-sending fields of /send (contract section 8): `send_at`, `timezone`,
`daily_cap`, `hourly_cap`, in JSON or as multipart fields, checked before anything is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from message_queue import job_channel
from utils.zones import is_known_zone

from .problems import invalid

FIELDS = ("send_at", "timezone", "daily_cap", "hourly_cap")


@dataclass(frozen=True)
class Careful:
    send_at: float | None = None
    timezone: str | None = None
    daily_cap: int | None = None
    hourly_cap: int | None = None


def read_careful(raw: dict, settings, channel: str, now: float | None = None) -> Careful:
    """The fields from `raw` (JSON values, or the strings of a form), or a 422 naming one."""
    now = time.time() if now is None else now
    first = job_channel(channel).first
    caps = {}
    for name, setting in (("daily_cap", "daily_cap"), ("hourly_cap", "hourly_cap")):
        value = _whole_number(name, raw.get(name))
        ceiling = getattr(settings, f"{first}_{setting}", 0)
        if value is not None and ceiling and value > ceiling:
            raise invalid(
                name,
                f"{name} {value} is above this channel's {first.upper()}_{setting.upper()} "
                f"({ceiling}); a job may only ask for less.",
            )
        caps[name] = value
    return Careful(
        send_at=_future_instant(raw.get("send_at"), now),
        timezone=_zone(raw.get("timezone")),
        **caps,
    )


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _whole_number(name: str, value) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid(name, f"{name} must be a whole number of at least 1.") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
        raise invalid(name, f"{name} must be a whole number of at least 1.")
    return value


def _future_instant(value, now: float) -> float | None:
    if _blank(value):
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise invalid("send_at", "send_at must be an ISO 8601 time with an offset.")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        at = None
    if at is None or at.utcoffset() is None:
        raise invalid(
            "send_at",
            "send_at must be an ISO 8601 time with an offset, e.g. 2026-12-24T09:00:00-03:00 "
            "or 2026-12-24T12:00:00Z.",
        )
    if at.timestamp() <= now:
        raise invalid("send_at", "send_at must be in the future.")
    return at.timestamp()


def _zone(value) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str) or len(value) > 64 or not is_known_zone(value.strip()):
        raise invalid(
            "timezone", "timezone must be an IANA time zone, e.g. America/Sao_Paulo or UTC."
        )
    return value.strip()
