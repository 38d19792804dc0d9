"""Turning off Python's cyclic garbage collector while a big list is read.

Reading a 100,000-row file allocates a few hundred thousand dicts, lists and tuples that all
live until the job is written. CPython counts container allocations and every 700 runs a
collection, and each older-generation collection walks every object still alive: the rows
already read get walked over and over, about a tenth of POST /send's time for a big file
(docs/BENCHMARKS.md). Nothing in that work makes reference cycles, so pausing the collector
for its duration frees nothing late, and reference counting still frees everything else at
once. The collector runs again as soon as the last such request ends.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_inside = 0  # requests in a paused block right now (gunicorn runs several threads)
_was_enabled = True


@contextmanager
def collector_paused():
    """Context manager and decorator: no cyclic GC until every overlapping user has left."""
    global _inside, _was_enabled
    with _lock:
        if _inside == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _was_enabled:
                gc.enable()
