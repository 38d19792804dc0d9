"""Parking: jobs that wait for a login (or the phone) because none of their senders can send,
and their return when one comes back. A pool of accounts keeps sending while one waits."""

from __future__ import annotations

from .channels import job_channels_using
from .jobs import _marks
from .states import DISCONNECTED_AFTER, JobStatus
from .store import Store

# Another sender of the channel, live and logged in, that the job `j` may use (every sender
# of its channel unless the job names its own in job_senders).
_OTHER_SENDER = """
SELECT 1 FROM workers w WHERE w.channel = ? AND w.id <> ? AND w.heartbeat_at >= ?
  AND w.state IN ('logged_in', 'sending')
  AND (NOT EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id)
       OR EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id AND s.sender = w.id))
"""
# The job `j` may be sent by the sender bound last (`?`).
_MAY_USE = """
(NOT EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id)
 OR EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id AND s.sender = ?))
"""


class ParkingStore(Store):
    """Channel-wide job moves made by workers; mixed into `Queue`."""

    def set_channel_waiting(
        self, channel: str, waiting_status: str, sender: str | None = None
    ) -> list[str]:
        """Park the sendable jobs that use `channel` and that no other live sender of theirs
        can send (`sender` is the one that just went down); their ids.

        A pool of accounts keeps sending while one of them waits for its login. A scheduled
        job whose time has come is sendable too, though no claim started it.
        """
        now = self.clock()
        job_channels = job_channels_using(channel)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'pending', updated_at = ? WHERE status = 'scheduled'"
                " AND send_at <= ?",
                (now, now),
            )
            rows = conn.execute(
                f"SELECT id FROM jobs j WHERE status IN ({_marks(JobStatus.SENDABLE)})"
                f" AND channel IN ({_marks(job_channels)}) AND NOT EXISTS ({_OTHER_SENDER})",
                (
                    *JobStatus.SENDABLE,
                    *job_channels,
                    channel,
                    sender or "",
                    now - DISCONNECTED_AFTER,
                ),
            ).fetchall()
            conn.executemany(
                "UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?",
                ((waiting_status, now, r["id"]) for r in rows),
            )
            return [r["id"] for r in rows]

    def end_channel_waiting(
        self, channel: str, waiting_status: str, sender: str | None = None
    ) -> list[str]:
        """Return jobs waiting on `channel` that `sender` (back in) may send to sending by
        themselves; their ids."""
        now = self.clock()
        job_channels = job_channels_using(channel)
        with self.db.write() as conn:
            rows = conn.execute(
                f"SELECT id, started_at FROM jobs j WHERE status = ?"
                f" AND channel IN ({_marks(job_channels)}) AND {_MAY_USE}",
                (waiting_status, *job_channels, sender or ""),
            ).fetchall()
            for r in rows:
                status = JobStatus.RUNNING if r["started_at"] else JobStatus.PENDING
                conn.execute(
                    "UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?",
                    (status, now, r["id"]),
                )
            if rows:
                self.db.notify(conn, channel)
            return [r["id"] for r in rows]
