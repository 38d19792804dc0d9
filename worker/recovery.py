"""Settling sends nobody saw confirmed: ask the channel whether they went out, record the answer.

Two paths need it. After a crash, rows this worker left `sending` are checked (only its own
chat or phone can tell) before anything new is claimed; after a send that failed past the
click, that one message is. Both record a message found sent the same way: with the id the
channel knows it by, so a delivery report can still reach it.
"""

from __future__ import annotations

import logging

from message_queue.messages import ClaimedMessage

from .errors import NotOnWhatsApp, SessionLostError

log = logging.getLogger("worker")


class Recovery:
    """Verifies uncertain sends of one worker's channel and records what the channel says."""

    def __init__(self, queue, transport, worker_id: str, deliveries, ctx, on_failure):
        self.queue, self.transport, self.worker_id = queue, transport, worker_id
        self.deliveries, self.ctx = deliveries, ctx
        # The worker's own handling of a failed send (retry, fall back to SMS, fail).
        self.on_failure = on_failure

    def settle_leftovers(self) -> bool:
        """Settle rows this worker left `sending` (a crash, a logout): only its own channel
        can tell whether they went out, so no other worker's rows are ever taken.

        False when the channel went away mid-check: the rows stay `sending`, claimed by us.
        """
        for message in self.queue.recover_sending(self.transport.channel, self.worker_id):
            try:
                verdict = self.verify(message)
            except SessionLostError as exc:
                log.warning("recovery paused: %s", exc, extra=self.ctx())
                return False
            except NotOnWhatsApp as exc:  # nothing can have gone: as if the send just failed
                log.info("recovered message %s: %s", message["id"], exc, extra=self.ctx(message))
                self.on_failure(message, exc)
                continue
            log.info("recovered message %s: %s", message["id"], verdict, extra=self.ctx(message))
            if verdict == "sent":
                self.mark_sent(message)
            elif verdict == "not_sent":
                self.queue.release(message["id"], self.worker_id)
            else:
                self.queue.mark_unknown(message["id"], self.worker_id, "send_not_confirmed")
        return True

    def verify(self, message: ClaimedMessage) -> str:
        """`sent`, `not_sent` or `unknown`; SessionLostError when the channel went away,
        NotOnWhatsApp when the number has no WhatsApp (so nothing went, for certain)."""
        try:
            return self.transport.verify(message)
        except (SessionLostError, NotOnWhatsApp):
            raise
        except Exception as exc:  # the channel answered but cannot tell: nobody knows
            log.warning(
                "could not verify message %s: %s", message["id"], exc, extra=self.ctx(message)
            )
            return "unknown"

    def mark_sent(self, message: ClaimedMessage) -> None:
        """Record a message the channel showed as sent, with its id for delivery reports."""
        self.queue.mark_sent(message["id"], self.worker_id, self.deliveries.tracking_id(message))
