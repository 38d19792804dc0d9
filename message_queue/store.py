"""What every part of the queue shares; `Queue` sets both when it opens the database."""

from __future__ import annotations

from collections.abc import Callable

from .db import Database


class Store:
    """Base of the queue's parts (jobs, messages, workers, sessions), each a mixin of Queue."""

    db: Database
    clock: Callable[[], float]  # seconds since the epoch; tests pass their own
