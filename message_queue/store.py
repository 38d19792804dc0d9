"""What every part of the queue shares; `Queue` sets both when it opens the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .rules import SendingRules

if TYPE_CHECKING:
    from .db import Database
    from .pg import PostgresDatabase


class Store:
    """Base of the queue's parts (jobs, messages, workers, sessions), each a mixin of Queue."""

    db: Database | PostgresDatabase
    clock: Callable[[], float]  # seconds since the epoch; tests pass their own
    rules: SendingRules  # caps, warm-up, send window, auto-pause (none unless given)


def like_pattern(text: str) -> str:
    """`text` as a LIKE pattern that matches it anywhere, literally (use with ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
