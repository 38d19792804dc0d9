"""Delivery reports: ask a channel that reports delivery (SMS) about sent messages.

The worker asks while idle and during the pause between two sends, never in the middle of one.

Kept apart from the loop: it is a nicety that never stops sending, polled batch by batch.
"""

from __future__ import annotations

import logging

from message_queue.messages import ClaimedMessage

from .transport import ReportsDelivery, Transport

log = logging.getLogger("worker")

# At most this many sent messages are asked about, at most every DELIVERY_POLL_EVERY seconds.
DELIVERY_POLL_EVERY = 5.0
BATCH = 20


class DeliveryTracker:
    """Walks a channel's sent rows batch by batch and marks the delivered ones."""

    def __init__(
        self, queue, transport: Transport, clock, poll_every: float = DELIVERY_POLL_EVERY, ctx=None
    ):
        self.queue, self.clock, self.channel = queue, clock, transport.channel
        # None for a channel without reports (WhatsApp): every call here is then a no-op.
        self.reports = transport if isinstance(transport, ReportsDelivery) else None
        self.poll_every = poll_every
        self.ctx = ctx or {}
        self.next_poll = 0.0
        self.cursor = 0

    def tracking_id(self, message: ClaimedMessage) -> str | None:
        """The id to ask about `message` by, for a row settled without `send` (recovery)."""
        return self.reports.tracking_id(message) if self.reports else None

    def poll_if_due(self) -> None:
        """Ask about the next batch when it is time; a channel without reports is skipped."""
        now = self.clock()
        if self.reports is None or now < self.next_poll:
            return
        self.next_poll = now + self.poll_every
        rows = self.queue.sent_awaiting_delivery(
            self.channel, now - self.reports.delivery_window, BATCH, self.cursor
        )
        # Batch by batch through the sent rows, then from the start again.
        self.cursor = rows[-1]["id"] if len(rows) == BATCH else 0
        if not rows:
            return
        try:
            delivered = self.reports.poll_deliveries(rows)
        except Exception as exc:  # a delivery report is a nicety: it never stops sending
            log.warning("could not poll delivery reports: %s", exc, extra=self.ctx)
            return
        for message_id in delivered:
            self.queue.mark_delivered(message_id)
        if delivered:
            log.info("%d message(s) delivered", len(delivered), extra=self.ctx)
