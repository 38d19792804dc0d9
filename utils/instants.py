"""Instants as the phone writes them: ISO 8601 with a UTC offset, read in one place.

The phone's webhook (`receivedAt`, api/hooks.py) and its inbox (`createdAt`, worker/sms) write
the same format, so both read it here and cannot come to disagree on what they accept.
"""

from __future__ import annotations

from datetime import datetime

# Longer than any ISO 8601 time ("2026-11-22T10:00:00.000000+03:00" is 32): refused unread.
MAX_CHARS = 40


class InstantError(ValueError):
    """Not an ISO 8601 time with its UTC offset; the message says which part is wrong."""


def parse_instant(value) -> float:
    """Seconds since the epoch of an ISO 8601 time that carries its UTC offset.

    InstantError when `value` is not a string, not ISO 8601, or has no offset: a time
    without one would be read in our zone, not the phone's, and be hours off.
    """
    if not isinstance(value, str) or len(value) > MAX_CHARS:
        raise InstantError("must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InstantError("must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InstantError("must carry its UTC offset")
    return moment.timestamp()
