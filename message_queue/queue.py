"""`Queue`: the one object through which the API and the workers use the database."""

from __future__ import annotations

from pathlib import Path

from .activity import ActivityStore
from .claim import Claimer
from .conversations import ConversationStore
from .copies import CopyStore
from .db import open_database
from .inbound import InboundStore
from .jobs import JobStore
from .listing import ListingStore
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
    ListingStore,
    MessageStore,
    ParkingStore,
    WorkerStore,
    SessionStore,
    ConversationStore,
    InboundStore,
    ActivityStore,
):
    """Jobs, messages, workers and /app sessions in one database shared by several processes:
    a SQLite file at `target`, or PostgreSQL when `target` is a `postgresql://` URL.

    `clock` returns seconds since the epoch; tests pass their own to move time. By default it
    is the database's clock (on PostgreSQL the server's, so several machines agree). `rules`
    are the careful-sending rules (`SendingRules.from_settings`); without them nothing is held.
    """

    def __init__(self, target: str | Path, clock=None, rules: SendingRules = NO_RULES):
        self.db = open_database(target)
        self.clock = clock or self.db.now
        self.rules = rules
        self._claimer = Claimer(rules, self.db.dialect)
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

    def wait_for_work(self, stop, timeout: float) -> None:
        """An idle worker's sleep: up to `timeout`, cut short by stop, or on PostgreSQL by a
        NOTIFY that new work is there."""
        self.db.wait_for_work(stop, timeout)

    def close(self) -> None:
        """Close this thread's connection (SQLite), or the pool (PostgreSQL)."""
        self.db.close()
