"""Conversations: one thread per contact number, merging what we sent with what they wrote.

A `conversations` row is the thread's summary (name, unread, starred, last activity), written
when a reply arrives (inbound side) and when a message to the number is *sent* (here, from
`mark_sent`), never when a row is queued: a 100,000-row upload writes none. The thread itself
is read live from `messages` and `inbound`, so each outbound bubble shows its current status.
"""

from __future__ import annotations

import re

from .errors import ConversationNotFound
from .store import Store, like_pattern

FILTERS = ("all", "unread", "starred")
# The list shows a preview (as long as the inbound side's); short, so a search over 10,000
# threads stays cheap.
PREVIEW_CHARS = 500
_COLUMNS = "phone, name, unread, starred, last_message_at, last_text, last_direction, channel"
_WHERE = {"all": "TRUE", "unread": "unread > 0", "starred": "starred = 1"}

# Both sides of a thread, each read through its by-phone index; `at` is when it happened,
# `error` the outbound row's error code (why a failed bubble failed).
_THREAD = """
SELECT 'out' AS direction, id, channel, text, status, coalesce(sent_at, updated_at) AS at,
       job_id, claimed_by AS sender, error FROM messages WHERE phone = :phone
UNION ALL
SELECT 'in', id, channel, text, 'received', received_at, job_id, sender, NULL
FROM inbound WHERE phone = :phone
"""

# Sent time, text, channel and name of the row just marked sent; unread and starred are the
# reader's, so an existing row keeps them. A late-recorded older send never hides a newer line.
_TOUCH_OUTBOUND = f"""
INSERT INTO conversations ({_COLUMNS})
SELECT phone, name, 0, 0, coalesce(sent_at, updated_at), substr(text, 1, {PREVIEW_CHARS}), 'out',
       channel FROM messages WHERE id = ?
ON CONFLICT (phone) DO UPDATE SET
    name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE conversations.name END,
    last_text = CASE WHEN excluded.last_message_at >= conversations.last_message_at
                THEN excluded.last_text ELSE conversations.last_text END,
    last_direction = CASE WHEN excluded.last_message_at >= conversations.last_message_at
                     THEN 'out' ELSE conversations.last_direction END,
    channel = CASE WHEN excluded.last_message_at >= conversations.last_message_at
              THEN excluded.channel ELSE conversations.channel END,
    last_message_at = max(excluded.last_message_at, conversations.last_message_at)
"""


# A sender's sent rows after the last one the list took in, by (claimed_at, id): a range of
# the messages_sent_by_sender index (its WHERE repeated, as SQLite requires).
_FOLLOWED = """
SELECT id, claimed_at FROM messages
WHERE claimed_by = :sender AND status IN ('sent', 'delivered', 'unknown')
  AND status <> 'unknown' AND claimed_at >= :at AND NOT (claimed_at = :at AND id <= :id)
ORDER BY claimed_at, id LIMIT :limit
"""


class ConversationStore(Store):
    """Threads per contact; mixed into `Queue`, which provides `db` and `clock`."""

    def list_conversations(
        self, filter: str = "all", search: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict], int]:
        """A page of conversations, most recent activity first, and how many match in all.

        `search` matches the name, the number (digits, however written) and the last text of
        the 10,000-row summary table, plus what contacts wrote (`inbound`); the text of every
        message ever sent is not searched: 200,000 campaign copies would be a full scan per
        keystroke, and they say the same thing anyway.
        """
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {', '.join(FILTERS)}")
        where, params = _WHERE[filter], list[str]()
        if search:
            clause, params = _search(search)
            where += " AND " + clause
        with self.db.read() as conn:
            total = conn.execute(
                f"SELECT count(*) FROM conversations WHERE {where}", params
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE {where}"
                " ORDER BY last_message_at DESC, phone DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_conversation(r) for r in rows], total

    def get_conversation(self, phone: str) -> dict:
        """One conversation; ConversationNotFound when the number has none."""
        row = (
            self.db.connection()
            .execute(f"SELECT {_COLUMNS} FROM conversations WHERE phone = ?", (phone,))
            .fetchone()
        )
        if row is None:
            raise ConversationNotFound(phone)
        return _conversation(row)

    def conversation_messages(
        self, phone: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict], int]:
        """A page of one thread, oldest first within the page, the newest page at offset 0."""
        with self.db.read() as conn:
            known = conn.execute("SELECT 1 FROM conversations WHERE phone = ?", (phone,))
            if known.fetchone() is None:
                raise ConversationNotFound(phone)
            total = conn.execute(
                "SELECT (SELECT count(*) FROM messages WHERE phone = :phone)"
                " + (SELECT count(*) FROM inbound WHERE phone = :phone)",
                {"phone": phone},
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM ({_THREAD}) AS thread ORDER BY at DESC, direction DESC, id DESC"
                " LIMIT :limit OFFSET :offset",
                {"phone": phone, "limit": limit, "offset": offset},
            ).fetchall()
        return [dict(r) for r in reversed(rows)], total

    def last_inbound_channel(self, phone: str) -> str | None:
        """The channel the contact last wrote from, or None when they never wrote."""
        row = (
            self.db.connection()
            .execute(
                "SELECT channel FROM inbound WHERE phone = ? ORDER BY received_at DESC, id DESC"
                " LIMIT 1",
                (phone,),
            )
            .fetchone()
        )
        return row["channel"] if row else None

    def set_read(self, phone: str, read: bool) -> dict:
        """Mark the thread read (unread 0) or unread again (at least 1); the conversation."""
        value = "0" if read else "max(unread, 1)"
        return self._update(phone, f"unread = {value}")

    def set_starred(self, phone: str, starred: bool) -> dict:
        """Star or unstar the thread; the conversation."""
        return self._update(phone, f"starred = {int(starred)}")

    def _update(self, phone: str, assignment: str) -> dict:
        with self.db.write() as conn:
            row = conn.execute(
                f"UPDATE conversations SET {assignment} WHERE phone = ? RETURNING {_COLUMNS}",
                (phone,),
            ).fetchone()
        if row is None:
            raise ConversationNotFound(phone)
        return _conversation(row)

    def follow_sent(self, sender: str | None = None, batch: int = 500) -> int:
        """Bring the inbox's list up to what `sender` (or every sender) sent; how many rows.

        A thread reads the queue's rows itself, so it never misses a message; only the list's
        summary row (last activity, last text) is kept here, after the send's transaction,
        in batches: writing it inside every send cost a quarter of the claim loop. Workers
        call this between sends and while idle, so the list follows within seconds.
        """
        taken = 0
        with self.db.write() as conn:
            where, params = ("WHERE id = ?", (sender,)) if sender else ("", ())
            for s in conn.execute(
                f"SELECT id, followed_at, followed_id FROM senders {where}", params
            ).fetchall():
                rows = conn.execute(
                    _FOLLOWED, {"sender": s[0], "at": s[1], "id": s[2], "limit": batch}
                ).fetchall()
                for row in rows:  # oldest first, so the newest job's name wins
                    conn.execute(_TOUCH_OUTBOUND, (row[0],))
                if rows:
                    conn.execute(
                        "UPDATE senders SET followed_at = ?, followed_id = ? WHERE id = ?",
                        (rows[-1][1], rows[-1][0], s[0]),
                    )
                taken += len(rows)
        return taken

    def job_reply_counts(self, job_id: str) -> tuple[int, int]:
        """(replies, opted_out) of one job: see `reply_counts`."""
        with self.db.read() as conn:
            return reply_counts(conn, job_id)


def reply_counts(conn, job_id: str, cancelled: int | None = None) -> tuple[int, int]:
    """(recipients who wrote after this job's message reached them, rows cancelled opted_out).

    A reply's `inbound.job_id` is set when it is stored, to the newest job whose message had
    reached the number by then (the inbound side's one rule, with its clock slack), so the
    replies are the distinct numbers among this job's inbound rows, read through its index.
    `cancelled` (the job's cancelled count, when the caller has it) skips the opted_out count
    when no row is cancelled, which is nearly always.
    """
    replies = conn.execute(
        "SELECT count(DISTINCT phone) FROM inbound WHERE job_id = ?", (job_id,)
    ).fetchone()[0]
    if cancelled == 0:
        return replies, 0
    # INDEXED BY: left to itself SQLite picks messages_by_job and reads every cancelled row.
    opted_out = conn.execute(
        "SELECT count(*) FROM messages INDEXED BY messages_opted_out WHERE job_id = ?"
        " AND status = 'cancelled' AND error = 'opted_out'",
        (job_id,),
    ).fetchone()[0]
    return replies, opted_out


def _search(text: str) -> tuple[str, list]:
    """The WHERE clause and parameters for a search box's text."""
    like = like_pattern(text)
    clauses = [
        "name LIKE ? ESCAPE '\\'",
        "last_text LIKE ? ESCAPE '\\'",
        # What they wrote: a contact's replies are few next to the campaigns' rows.
        "phone IN (SELECT phone FROM inbound WHERE text LIKE ? ESCAPE '\\')",
    ]
    params: list = [like, like, like]
    digits = re.sub(r"\D", "", text)
    # "+55 (11) 91234": a number as people type it matches the stored E.164 form.
    if digits and re.fullmatch(r"[\d\s+().-]+", text):
        clauses.append("phone LIKE ?")
        params.append(f"%{digits}%")
    return "(" + " OR ".join(clauses) + ")", params


def _conversation(row) -> dict:
    conversation = dict(row)
    conversation["starred"] = bool(conversation["starred"])
    return conversation
