"""`Queue`: the one object through which the API and the workers use the database."""

from __future__ import annotations

import time
from pathlib import Path

from .activity import ActivityStore
from .claim import Claimer
from .conversations import ConversationStore
from .copies import CopyStore
from .db import Database
from .inbound import InboundStore
from .jobs import JobStore
from .messages import MessageStore
from .parking import ParkingStore
from .rules import NO_RULES, SendingRules
from .sessions import SessionStore
from .suppressions import SuppressionStore
from .workers import WorkerStore


# SuppressionStore comes first: it wraps writing a job's rows and claiming one, so no row for
# a number on the suppression list is handed to a worker (see message_queue/suppressions.py).
class Queue(
    SuppressionStore,
    CopyStore,
    JobStore,
    MessageStore,
    ParkingStore,
    WorkerStore,
    SessionStore,
    ConversationStore,
    InboundStore,
    ActivityStore,
):
    """Jobs, messages, workers and /app sessions in one SQLite file shared by several processes.

    `clock` returns seconds since the epoch; tests pass their own to move time. `rules` are
    the careful-sending rules (`SendingRules.from_settings`); without them nothing is held.
    """

    def __init__(self, path: str | Path, clock=time.time, rules: SendingRules = NO_RULES):
        self.db = Database(path)
        self.clock = clock
        self.rules = rules
        self._claimer = Claimer(rules)
        self._senders_seen: set[str] = set()

    def check(self) -> str:
        """`ok` when the database answers, else what went wrong."""
        return self.db.check()

    def integrity_check(self) -> str:
        """SQLite's integrity check of the file: `ok` when sound."""
        return self.db.integrity_check()

    def backup(self, target: str | Path) -> None:
        """Copy the live database to `target` with SQLite's online backup (safe while in use)."""
        self.db.backup_to(target)

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()
