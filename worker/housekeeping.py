"""Chores an idle worker does now and then: deleting attachments past their retention, and
settling the rows of senders gone for good (SENDER_GONE_AFTER).

The API is stateless and runs no background work, so the long-lived worker does it, between
sends only, never holding a message back.
"""

from __future__ import annotations

import logging

from utils.retention import sweep_attachments

log = logging.getLogger("worker")

SWEEP_EVERY = 3600.0  # seconds: retention is counted in days, an hour late is no harm
GONE_EVERY = 60.0  # seconds: a gone sender's rows are settled within a minute of its limit


class Housekeeping:
    """Runs the chores when they are due; a failing chore is logged, never fatal."""

    def __init__(self, queue, settings, clock, every: float = SWEEP_EVERY):
        self.queue, self.settings, self.clock, self.every = queue, settings, clock, every
        self.next_run = self.next_gone = 0.0

    def run_if_due(self) -> None:
        """Settle gone senders' rows every minute; sweep expired attachments every `every`."""
        now = self.clock()
        if now >= self.next_gone:
            self.next_gone = now + GONE_EVERY
            settled = self.queue.settle_gone_senders(self.settings.sender_gone_after)
            if settled:
                log.warning(
                    "messages %s were left sending by a sender gone for %g s: unknown",
                    ", ".join(map(str, settled)),
                    self.settings.sender_gone_after,
                )
        if now < self.next_run:
            return
        self.next_run = now + self.every
        try:
            sweep_attachments(
                self.queue, self.settings.upload_dir, self.settings.attachment_retention_days, now
            )
        except OSError as exc:  # a file we may not delete: say so, keep sending
            log.warning("could not delete expired attachments: %s", exc)
