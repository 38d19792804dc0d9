"""Inbound messages (replies) and the conversation row each one touches.

A reply may reach us more than once: the phone retries a webhook with the same event id, an
older app or a second registration re-sends it with a new one, and the inbox catch-up reads it
again. So a reply is known by what it is (channel, number, second, kind, text), never by an id
a provider gave it, and `dedupe_key` is UNIQUE: the second copy changes nothing.
"""

from __future__ import annotations

import hashlib

from .states import MessageStatus
from .store import Store

# The phone stamps a reply with its own clock and we stamp a send with ours: a reply that
# seems to come a little before the send it answers still belongs to that send's job.
CLOCK_SLACK = 300.0
PREVIEW_CHARS = 500  # conversations.last_text is a preview for the list, not the message


def dedupe_key(channel: str, phone: str, received_at: float, kind: str, text: str) -> str:
    """What makes two copies of one reply equal.

    Whole seconds: an SMS's time is the SMSC's, in whole seconds, both in the webhook and in
    the phone's inbox; rounding to milliseconds first keeps float noise from flipping a second.
    """
    second = int(round(received_at, 3) // 1)
    raw = "\x1f".join((channel, phone, str(second), kind, text))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class InboundStore(Store):
    """Inbound rows and their conversations; mixed into `Queue`."""

    def record_inbound(
        self,
        phone: str,
        channel: str,
        sender: str,
        text: str,
        received_at: float,
        kind: str = "text",
        provider_id: str | None = None,
        keyword: str | None = None,
    ) -> tuple[int, bool]:
        """Store one reply once: (its row id, whether this call created it).

        In one write transaction: the row, linked to the newest job that sent to the number,
        the number's conversation (unread + 1, last activity, name), and what its `keyword`
        (opt_out, opt_in) asks of the suppression list. So a STOP is never stored without
        being honoured: a retry after an outage finds it stored, and honoured. A copy already
        stored changes nothing.
        """
        key = dedupe_key(channel, phone, received_at, kind, text)
        with self.db.write() as conn:
            row = conn.execute("SELECT id FROM inbound WHERE dedupe_key = ?", (key,)).fetchone()
            if row is not None:
                return int(row["id"]), False
            job_id = _replied_job(conn, phone, received_at)
            cursor = conn.execute(
                "INSERT INTO inbound (phone, channel, sender, text, kind, received_at,"
                " provider_id, dedupe_key, job_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    phone,
                    channel,
                    sender,
                    text,
                    kind,
                    received_at,
                    provider_id,
                    key,
                    job_id,
                    self.clock(),
                ),
            )
            inbound_id = cursor.fetchone()[0]
            _touch_conversation(conn, phone, channel, received_at, _preview(text, kind))
            if keyword:
                self._apply_keyword(conn, phone, channel, keyword, inbound_id)
        return inbound_id, True

    def _apply_keyword(self, conn, phone: str, channel: str, keyword: str, inbound_id: int):
        raise NotImplementedError  # SuppressionStore's, which Queue puts ahead of this one

    def latest_inbound_at(self, channel: str) -> float | None:
        """When the newest stored reply on `channel` was received, or None."""
        row = (
            self.db.connection()
            .execute("SELECT max(received_at) AS at FROM inbound WHERE channel = ?", (channel,))
            .fetchone()
        )
        return None if row is None or row["at"] is None else float(row["at"])

    def inbound_seen(self, channel: str, phone: str, provider_ids: list[str]) -> set[str]:
        """Which of `provider_ids` are already stored for this number on `channel`.

        Keyed by number too, so the lookup reads one contact's rows through inbound_by_phone.
        """
        if not provider_ids:
            return set()
        marks = ", ".join("?" * len(provider_ids))
        rows = (
            self.db.connection()
            .execute(
                "SELECT provider_id FROM inbound WHERE phone = ? AND channel = ?"
                f" AND provider_id IN ({marks})",
                (phone, channel, *provider_ids),
            )
            .fetchall()
        )
        return {row["provider_id"] for row in rows}

    def get_inbound(self, inbound_id: int) -> dict | None:
        """One inbound row as a dict, or None."""
        row = (
            self.db.connection()
            .execute(
                "SELECT id, phone, channel, sender, text, kind, received_at, provider_id,"
                " job_id, created_at FROM inbound WHERE id = ?",
                (inbound_id,),
            )
            .fetchone()
        )
        return None if row is None else dict(row)


def _replied_job(conn, phone: str, received_at: float) -> str | None:
    """The newest job whose message reached the number before this reply came."""
    row = conn.execute(
        "SELECT job_id FROM messages WHERE phone = ? AND status IN (?, ?)"
        " AND coalesce(sent_at, updated_at) <= ? ORDER BY id DESC LIMIT 1",
        (phone, MessageStatus.SENT, MessageStatus.DELIVERED, received_at + CLOCK_SLACK),
    ).fetchone()
    return None if row is None else row["job_id"]


def _touch_conversation(conn, phone: str, channel: str, at: float, preview: str) -> None:
    """Count the reply as unread; an older reply (a late catch-up) leaves `last_*` alone."""
    row = conn.execute(
        "SELECT name FROM messages WHERE phone = ? AND name <> '' ORDER BY id DESC LIMIT 1",
        (phone,),
    ).fetchone()
    name = "" if row is None else row["name"]
    conn.execute(
        "INSERT INTO conversations (phone, name, unread, starred, last_message_at, last_text,"
        " last_direction, channel) VALUES (?, ?, 1, 0, ?, ?, 'in', ?)"
        " ON CONFLICT (phone) DO UPDATE SET"
        # Qualified: PostgreSQL will not guess between the row and `excluded`.
        " unread = conversations.unread + 1,"
        " name = CASE WHEN conversations.name = '' THEN excluded.name ELSE conversations.name END,"
        " last_text = CASE WHEN excluded.last_message_at >= conversations.last_message_at"
        "   THEN excluded.last_text ELSE conversations.last_text END,"
        " last_direction = CASE WHEN excluded.last_message_at >= conversations.last_message_at"
        "   THEN 'in' ELSE conversations.last_direction END,"
        " channel = CASE WHEN excluded.last_message_at >= conversations.last_message_at"
        "   THEN excluded.channel ELSE conversations.channel END,"
        " last_message_at = max(conversations.last_message_at, excluded.last_message_at)",
        (phone, name, at, preview, channel),
    )


def _preview(text: str, kind: str) -> str:
    if not text and kind != "text":
        return f"[{kind}]"
    return text[:PREVIEW_CHARS]
