"""Messages: claiming one for a worker, recording what happened, recovering after a crash.

A row is committed as `sending` before the worker touches the browser or the gateway, so a
crash can never make the queue forget that a send may have started: such rows are handed back
to a worker to verify (`recover_sending`) and are never silently re-queued.
"""

from __future__ import annotations

from .claim import ClaimedMessage, Claimer
from .optout_rule import cancel_if_opted_out
from .outcomes import complete_if_done, judge_failures, needs_follow_up, tally_of
from .states import MessageStatus
from .store import Store

# What a worker is handed: the row plus what its job says about sending it.
_CLAIMED = """
SELECT m.id, m.job_id, m.row, m.phone, m.name, m.text, m.channel, m.attempts, m.provider_id,
       j.attachment_path, j.attachment_name, j.channel AS job_channel
FROM messages m JOIN jobs j ON j.id = m.job_id WHERE m.id IN ({ids}) ORDER BY m.id
"""


def _claimed(conn, ids: list[int]) -> list[ClaimedMessage]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return [
        ClaimedMessage(**dict(r))  # type: ignore[typeddict-item]
        for r in conn.execute(_CLAIMED.format(ids=marks), ids)
    ]


class MessageStore(Store):
    """Message-level operations; mixed into `Queue`, which provides `db` and `clock`."""

    _claimer: Claimer  # set by Queue with its rules
    _senders_seen: set[str]  # senders this process knows have a `senders` row

    def claim_next(self, channel: str, worker_id: str) -> ClaimedMessage | None:
        """Atomically take the next sendable message for `channel`, now `sending`; or None.

        None also when this sender is at its cap, or every waiting row is held by its job's
        caps or outside the send window in its recipient's zone: what may go now goes first
        (message_queue/claim.py).
        """
        now = self.clock()
        with self.db.write(exclusive=False) as conn:
            return self._claimer.claim(conn, channel, worker_id, now)

    def mark_sent(self, message_id: int, worker_id: str, provider_id: str | None = None) -> bool:
        """The message went out; True when this worker still held it."""
        now = self.clock()
        return self._finish(
            message_id,
            worker_id,
            MessageStatus.SENT,
            None,
            "sent_at = :now, provider_id = COALESCE(:provider, provider_id)",
            {"now": now, "provider": provider_id},
        )

    def mark_failed(self, message_id: int, worker_id: str, error: str) -> bool:
        """The message will not go out: a final failure with its error code."""
        return self._finish(message_id, worker_id, MessageStatus.FAILED, error)

    def mark_unknown(self, message_id: int, worker_id: str, error: str) -> bool:
        """Nobody can tell whether it went out: never re-sent, left for a person."""
        return self._finish(message_id, worker_id, MessageStatus.UNKNOWN, error)

    def retry_later(self, message_id: int, worker_id: str, error: str, at: float) -> bool:
        """Nothing was sent; try again at time `at` (the attempt counts)."""
        return self._finish(
            message_id,
            worker_id,
            MessageStatus.RETRYING,
            error,
            "next_attempt_at = :at, claimed_by = NULL",
            {"at": at},
        )

    def release(self, message_id: int, worker_id: str, error: str | None = None) -> bool:
        """Nothing was sent and it was not the message's fault (session lost): no attempt burned."""
        return self._finish(
            message_id,
            worker_id,
            MessageStatus.PENDING,
            error,
            "attempts = max(attempts - 1, 0), claimed_by = NULL",
            {},
        )

    def reroute(self, message_id: int, worker_id: str, channel: str, error: str) -> bool:
        """Send it again on another channel from scratch (WhatsApp → SMS fallback)."""
        return self._finish(
            message_id,
            worker_id,
            MessageStatus.PENDING,
            error,
            "channel = :channel, attempts = 0, claimed_by = NULL, next_attempt_at = 0",
            {"channel": channel},
        )

    def mark_delivered(self, message_id: int) -> bool:
        """The channel reported delivery of a message already sent."""
        now = self.clock()
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE messages SET status = 'delivered', updated_at = ?"
                " WHERE id = ? AND status = 'sent'",
                (now, message_id),
            )
            return cur.rowcount == 1

    def sent_awaiting_delivery(
        self, channel: str, since: float, limit: int = 20, after_id: int = 0
    ) -> list[dict]:
        """Rows of `channel` sent since `since`, with the channel's id, not yet delivered.

        In id order from `after_id`, so a caller can walk them batch by batch.
        """
        rows = (
            self.db.connection()
            .execute(
                "SELECT * FROM messages WHERE status = 'sent' AND channel = ? AND sent_at >= ?"
                " AND provider_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (channel, since, after_id, limit),
            )
            .fetchall()
        )
        return [dict(r) for r in rows]

    def _finish(self, message_id, worker_id, status, error, extra_set="", extra=None) -> bool:
        now = self.clock()
        params = {
            "id": message_id,
            "worker": worker_id,
            "status": status,
            "error": error,
            "now": now,
            **(extra or {}),
        }
        sets = "status = :status, error = COALESCE(:error, error), updated_at = :now"
        if extra_set:
            sets += ", " + extra_set
        new_sender = status in (MessageStatus.SENT, MessageStatus.UNKNOWN) and (
            worker_id not in self._senders_seen
        )
        # On PostgreSQL a sent row's mark takes the write lock shared, as claims do, so marks
        # and claims of many senders run side by side. What must see every other write then
        # follows in an exclusive write of its own: the failure judge, and completion while
        # other rows of the job may be in flight (outcomes.needs_follow_up).
        shared = status == MessageStatus.SENT and self.db.dialect == "postgresql"
        with self.db.write(exclusive=not shared) as conn:
            row = conn.execute(
                f"UPDATE messages SET {sets} WHERE id = :id AND status = 'sending'"
                " AND claimed_by = :worker RETURNING job_id, channel, claimed_at",
                params,
            ).fetchone()
            if row is None:
                return False
            if new_sender:
                # A sender's warm-up counts from its first send, kept however it restarts;
                # once committed (or found), this process need not ask again.
                conn.execute(
                    "INSERT INTO senders (id, channel, first_send_at) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (worker_id, row["channel"], row["claimed_at"]),
                )
            tally = None
            if status in (MessageStatus.FAILED, MessageStatus.SENT, MessageStatus.UNKNOWN):
                tally = tally_of(conn, row["job_id"])  # read once for the judge and completion
                if not shared:
                    judge_failures(conn, self.rules, row["job_id"], now, tally.failed)
            if error and status in (
                MessageStatus.FAILED,
                MessageStatus.UNKNOWN,
                MessageStatus.RETRYING,
            ):
                conn.execute(
                    "UPDATE jobs SET last_error = ?, updated_at = ? WHERE id = ?",
                    (error, now, row["job_id"]),
                )
            if status in MessageStatus.WAITING:
                # Stopped while this row was in flight: nothing will hand it out again, so it is
                # cancelled like the rows the stop found waiting, not left open forever.
                conn.execute(
                    "UPDATE messages SET status = 'cancelled' WHERE id = ? AND EXISTS"
                    " (SELECT 1 FROM jobs WHERE id = ? AND status = 'stopped')",
                    (message_id, row["job_id"]),
                )
                # Its number opted out while it was in flight: it must never be handed out.
                if cancel_if_opted_out(conn, message_id, now):
                    complete_if_done(conn, row["job_id"], now)
            if status in MessageStatus.FINISHED and not (shared and tally and tally.open > 0):
                complete_if_done(conn, row["job_id"], now, tally)
        if new_sender:
            self._senders_seen.add(worker_id)
        if shared and tally and needs_follow_up(self.rules, tally):
            with self.db.write() as conn:
                tally = tally_of(conn, row["job_id"])
                judge_failures(conn, self.rules, row["job_id"], now, tally.failed)
                complete_if_done(conn, row["job_id"], now, tally)
        return True

    def recover_sending(self, channel: str, worker_id: str) -> list[ClaimedMessage]:
        """This worker's rows left `sending` (a crash, a logout), handed back to verify.

        Only the sender that held a row can tell whether it went out (its own chat history,
        its own phone), so no other sender ever takes it: it waits for its sender to come
        back, or for `settle_gone_senders`. The rows stay `sending`; the caller decides.
        """
        now = self.clock()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE messages SET claimed_at = :now, updated_at = :now"
                " WHERE status = 'sending' AND channel = :channel AND claimed_by = :worker"
                " RETURNING id",
                {"worker": worker_id, "now": now, "channel": channel},
            ).fetchall()
            return _claimed(conn, [r["id"] for r in rows])

    def settle_gone_senders(self, gone_after: float) -> list[int]:
        """Rows left `sending` by a sender not heard from for `gone_after` seconds end
        `unknown` with error `sender_gone`: nobody else can tell whether they went out, and
        they must not stay open for ever. The ids settled."""
        now = self.clock()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE messages SET status = 'unknown', error = 'sender_gone', updated_at = :now"
                " WHERE status = 'sending' AND (claimed_by IS NULL OR claimed_by NOT IN"
                " (SELECT id FROM workers WHERE heartbeat_at >= :cutoff))"
                " RETURNING id, job_id",
                {"now": now, "cutoff": now - gone_after},
            ).fetchall()
            for job_id in {r["job_id"] for r in rows}:
                conn.execute(
                    "UPDATE jobs SET last_error = 'sender_gone', updated_at = ? WHERE id = ?",
                    (now, job_id),
                )
                complete_if_done(conn, job_id, now)
            return [r["id"] for r in rows]
