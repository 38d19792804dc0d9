"""Waiting without missing a stop: every pause of the worker is taken here, on the stop Event.

How long to pause is decided in utils/pacing.py, the one home of pacing.
"""

from __future__ import annotations

import threading
import time


def wait(
    stop: threading.Event, seconds: float, still_wanted=lambda: True, step: float = 0.5
) -> bool:
    """Wait up to `seconds`; False as soon as `stop` is set or `still_wanted()` turns False."""
    # Counted against a deadline, not in steps: what `still_wanted` does between two steps
    # (a heartbeat, reading replies) is part of the pause, not added to it.
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if stop.wait(min(step, remaining)):
            return False
        if not still_wanted():
            return False
    return not stop.is_set()
