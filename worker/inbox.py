"""Replies: ask a channel that can read what people wrote (ReceivesMessages), store each once.

The worker asks while idle and during the pause between two sends, never in the middle of
one, so reading never changes the pacing or holds a message back. Storing, deduplicating and
honouring an opt-out keyword happen in utils/replies.py, the same for every channel.
"""

from __future__ import annotations

import logging
import threading

from message_queue import DatabaseUnavailable, QueueError
from utils.replies import contact_key, take_inbound

from .transport import ReceivesMessages, Transport

log = logging.getLogger("worker")

# The contract: a reply is in /conversations within 60 s. The channel may read less often
# (the SMS transport reads the phone's inbox every 5 s without a webhook, 60 s with one).
READ_EVERY = 2.0


class InboxReader:
    """Hands what the channel read to `take_inbound`; a no-op for a channel that cannot read.

    `stop`: the worker's stop Event. A first SIGTERM during a read ends it after the chat or
    page it is in, instead of after the whole read.
    """

    def __init__(
        self,
        queue,
        settings,
        transport: Transport,
        clock,
        every: float = READ_EVERY,
        stop: threading.Event | None = None,
    ):
        self.queue, self.settings, self.clock, self.every = queue, settings, clock, every
        self.stop = stop
        self.channel, self.worker_id = transport.channel, settings.worker_id
        self.reader = transport if isinstance(transport, ReceivesMessages) else None
        self.next_read = 0.0
        # Sends not yet taken into the inbox's list; at start, whatever a crash left.
        self.unfollowed = True

    def problem(self) -> str | None:
        """Why replies do not come the usual way (shown in /session), or None."""
        return self.reader.inbound_problem if self.reader else None

    def read_if_due(self) -> int:
        """Read and store what arrived, when it is time; how many replies were new.

        Also brings the inbox's list up to what this worker sent since it last did
        (`follow_sent`), outside the sends' own transactions: a write only when there is
        something to take in, so an idle worker stays idle.
        """
        now = self.clock()
        if now < self.next_read or self._stopping():
            return 0
        self.next_read = now + self.every
        if self.unfollowed:
            self.unfollowed = False
            self.queue.follow_sent(self.worker_id)
        if self.reader is None:
            return 0
        since = self.queue.latest_inbound_at(self.channel) if self.reader.wants_since else None
        try:
            found = self.reader.poll_inbound(since, self._stored, self.stop)
        except DatabaseUnavailable:
            raise  # asked through `_stored`: the worker's own handling applies, as in `_store`
        except Exception as exc:  # reading replies is never worth stopping the sending for
            log.warning("could not read replies: %s", exc)
            return 0
        return sum(self._store(item) for item in found)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _stored(self, phone: str, ids: list[str]) -> set[str]:
        """Which of the provider `ids` the queue holds from `phone`, keyed as `_store` keys it."""
        key = contact_key(phone, self.settings.default_country)
        return self.queue.inbound_seen(self.channel, key, ids)

    def _store(self, item) -> bool:
        try:
            return take_inbound(
                self.queue,
                self.settings,
                phone=item.phone,
                channel=self.channel,
                sender=self.worker_id,
                text=item.text,
                received_at=item.received_at,
                kind=item.kind,
                provider_id=item.provider_id,
            )
        except DatabaseUnavailable:
            raise  # the database is gone: the worker waits for it (worker.py)
        except (ValueError, QueueError) as exc:  # a reply we cannot key or keep: skip it, say so
            log.warning("reply from %r not stored: %s", item.phone, exc)
            return False
