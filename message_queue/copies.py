"""Copies of a job: its failed, unknown or cancelled rows sent again, and, days after it
finished, the release of its attachment file (the retention both must agree on).

Both read a finished job and decide what may be used again, so they live together.
"""

from __future__ import annotations

import secrets

from .errors import NothingToResend
from .jobs import JobStore, NewJob, Recipient, _marks
from .states import MessageStatus

# Jobs done before ? whose file no job still working, or done after ?, uses.
_EXPIRED = (
    "SELECT j.id, j.attachment_path FROM jobs AS j WHERE j.attachment_path IS NOT NULL"
    " AND j.finished_at < ? AND NOT EXISTS (SELECT 1 FROM jobs AS k"
    " WHERE k.attachment_path = j.attachment_path AND k.id != j.id"
    " AND (k.finished_at IS NULL OR k.finished_at >= ?))"
)


class CopyStore(JobStore):
    """Resend and attachment retention; mixed into `Queue` (it builds on JobStore's writing)."""

    def resend(self, job_id: str, statuses) -> dict:
        """A new job with copies of this job's rows in `statuses` (failed, unknown, cancelled).

        A row is copied once: it is marked with the new job's id, so a second click, a retried
        request or a later resend of other states never queues it twice. NothingToResend when
        no row is left to copy.
        """
        statuses = tuple(dict.fromkeys(statuses))
        if not statuses or set(statuses) - set(MessageStatus.RESENDABLE):
            raise ValueError(f"only {', '.join(MessageStatus.RESENDABLE)} can be sent again")
        now = self.clock()
        new_id = "j_" + secrets.token_hex(8)
        with self.db.write() as conn:
            source = self._job_row(conn, job_id)
            rows = conn.execute(
                f"SELECT id, row, phone, name, text, channel FROM messages WHERE job_id = ?"
                f" AND status IN ({_marks(statuses)}) AND resent_to IS NULL ORDER BY id",
                (job_id, *statuses),
            ).fetchall()
            if not rows:
                went_to = conn.execute(
                    f"SELECT DISTINCT resent_to FROM messages WHERE job_id = ? AND status IN"
                    f" ({_marks(statuses)}) AND resent_to IS NOT NULL ORDER BY resent_to",
                    (job_id, *statuses),
                )
                raise NothingToResend(job_id, statuses, [r["resent_to"] for r in went_to])
            copy = NewJob(
                channel=source["channel"],
                template=source["template"],
                name=f"{source['name'] or job_id} (sent again)",
                attachment_path=source["attachment_path"],
                attachment_name=source["attachment_name"],
                sms_parts=source["sms_parts"],
                # The same care as the first time: its zone and its own caps (not its start).
                timezone=source["timezone"],
                daily_cap=source["daily_cap"],
                hourly_cap=source["hourly_cap"],
                senders=tuple(source["senders"]),
            )
            self._write_job(
                conn,
                new_id,
                copy,
                (
                    Recipient(
                        phone=r["phone"],
                        text=r["text"],
                        channel=r["channel"],
                        name=r["name"],
                        row=r["row"],
                    )
                    for r in rows
                ),
                now,
            )
            conn.executemany(
                "UPDATE messages SET resent_to = ? WHERE id = ?", ((new_id, r["id"]) for r in rows)
            )
            return self._job_row(conn, new_id)

    def expired_attachments(self, finished_before: float) -> list[dict]:
        """Jobs finished before `finished_before` that still keep an attachment file, as
        {"id", "attachment_path"}; a file some other job still needs (a resend not finished,
        or finished later) is left out."""
        with self.db.read() as conn:
            rows = conn.execute(
                _EXPIRED + " ORDER BY finished_at", (finished_before, finished_before)
            ).fetchall()
        return [dict(r) for r in rows]

    def release_attachment(self, job_id: str, finished_before: float) -> str | None:
        """Clear the job's attachment_path if it is still expired; the path released, else None.

        The name stays, so the status still says which file it was. Checked again inside the
        write, so a resend made meanwhile keeps its file.
        """
        with self.db.write() as conn:
            row = conn.execute(
                _EXPIRED + " AND j.id = ?", (finished_before, finished_before, job_id)
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET attachment_path = NULL WHERE id = ?", (job_id,))
            return row["attachment_path"]
