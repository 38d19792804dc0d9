"""The rule for a row in flight when its number opted out, shared by the message store.

Kept apart from message_queue/suppressions.py, which builds on the message store and so
cannot be imported by it.
"""

from __future__ import annotations

# A row goes back to waiting (a retry, a fallback, a recovery that found it unsent): if its
# number was suppressed after its job was created, it is cancelled instead. A job created
# after the suppression is the opt-out confirmation, the one message that may still go.
_CANCEL_IF_OPTED_OUT = (
    "UPDATE messages SET status = 'cancelled', error = 'opted_out', updated_at = ?"
    " WHERE id = ? AND status IN ('pending', 'retrying') AND EXISTS (SELECT 1"
    " FROM suppressions s, jobs j WHERE s.phone = messages.phone AND j.id = messages.job_id"
    " AND s.created_at >= j.created_at) RETURNING id"
)


def cancel_if_opted_out(conn, message_id: int, now: float) -> bool:
    """Cancel the waiting row `message_id` as `opted_out` if the rule says so (inside a write)."""
    return conn.execute(_CANCEL_IF_OPTED_OUT, (now, message_id)).fetchone() is not None
