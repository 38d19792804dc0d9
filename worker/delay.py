"""Waiting without missing a stop: every pause of the worker is taken here, on the stop Event.

How long to pause is decided in utils/pacing.py, the one home of pacing.
"""

from __future__ import annotations

import threading


def wait(
    stop: threading.Event, seconds: float, still_wanted=lambda: True, step: float = 0.5
) -> bool:
    """Wait up to `seconds`; False as soon as `stop` is set or `still_wanted()` turns False."""
    remaining = seconds
    while remaining > 0:
        if stop.wait(min(step, remaining)):
            return False
        if not still_wanted():
            return False
        remaining -= step
    return not stop.is_set()
