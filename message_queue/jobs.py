"""Jobs: creating one with all its messages, reading them back, and the moves a person asks for."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import NamedTuple

from utils.zones import zone_for

from .conversations import reply_counts
from .errors import IdempotencyConflict, IllegalTransition, JobNotFound
from .holds import job_waiting
from .states import USER_MOVES, JobStatus, MessageStatus
from .store import Store

# A job's rows per status from job_counts: on PostgreSQL each count is spread over slots
# (schema_pg_7.sql), so the slots are added up; SQLite keeps one row per count.
COUNTS = "SELECT status, sum(n) AS n FROM job_counts WHERE job_id = ? GROUP BY status"


class Recipient(NamedTuple):
    """One row to queue: where it goes and the text already rendered for it.

    A named tuple rather than a frozen dataclass: a big job makes 100,000 of them, and a
    tuple is built in less than half the time.
    """

    phone: str
    text: str
    channel: str
    name: str = ""
    row: int | None = None


@dataclass(frozen=True)
class NewJob:
    """What `create_job` needs besides the recipients."""

    channel: str
    template: str
    name: str = ""
    attachment_path: str | None = None
    attachment_name: str | None = None
    sms_parts: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    # Careful sending: when it starts (scheduled until then), the zone of numbers with
    # several, and the job's own caps (lower than the sender's).
    send_at: float | None = None
    timezone: str | None = None
    daily_cap: int | None = None
    hourly_cap: int | None = None
    # The WORKER_IDs that may send it; empty: every sender of its channel.
    senders: tuple[str, ...] = ()


class JobStore(Store):
    """Job-level operations; mixed into `Queue`, which provides `db` and `clock`."""

    def create_job(self, job: NewJob, recipients) -> tuple[dict, bool]:
        """Insert a job and every recipient in one transaction; (job, created).

        With an idempotency key seen before, the first job is returned with created=False,
        or IdempotencyConflict is raised when that key came with a different request.
        """
        now = self.clock()
        job_id = "j_" + secrets.token_hex(8)
        with self.db.write() as conn:
            if job.idempotency_key:
                row = conn.execute(
                    "SELECT id, request_hash FROM jobs WHERE idempotency_key = ?",
                    (job.idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != job.request_hash:
                        raise IdempotencyConflict(job.idempotency_key)
                    return self._job_row(conn, row["id"]), False
            self._write_job(conn, job_id, job, recipients, now)
            return self._job_row(conn, job_id), True

    def _write_job(self, conn, job_id: str, job: NewJob, recipients, now: float) -> None:
        """Insert a pending job, its recipients and its counts (inside the caller's write)."""
        conn.execute(
            "INSERT INTO jobs (id, name, channel, status, template, attachment_path,"
            " attachment_name, total, sms_parts, idempotency_key, request_hash,"
            " created_at, updated_at, send_at, timezone, daily_cap, hourly_cap)"
            " VALUES (?,?,?,?,?,?,?,0,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                job.name,
                job.channel,
                JobStatus.SCHEDULED if job.send_at is not None else JobStatus.PENDING,
                job.template,
                job.attachment_path,
                job.attachment_name,
                job.sms_parts,
                job.idempotency_key,
                job.request_hash,
                now,
                now,
                job.send_at,
                job.timezone,
                job.daily_cap,
                job.hourly_cap,
            ),
        )
        total = self._insert_recipients(conn, job_id, recipients, now, job.timezone or "")
        conn.executemany(
            "INSERT INTO job_senders (job_id, sender) VALUES (?, ?)",
            ((job_id, sender) for sender in dict.fromkeys(job.senders)),
        )
        conn.execute("UPDATE jobs SET total = ? WHERE id = ?", (total, job_id))
        conn.executemany(
            "INSERT INTO job_counts (job_id, status, n) VALUES (?, ?, ?)",
            [(job_id, s, total if s == MessageStatus.PENDING else 0) for s in MessageStatus.ALL],
        )
        self.db.notify(conn, job.channel)  # idle workers start at once (on PostgreSQL)

    @staticmethod
    def _insert_recipients(conn, job_id, recipients, now, default_zone: str = "") -> int:
        # One executemany over a generator: sqlite3 binds each row as it is produced, so
        # no second list of 100,000 tuples is built, and the loop runs in C.
        zones: set[str] = set()

        def rows():
            for r in recipients:
                # The number's own zone; else the job's; else '' (TIMEZONE's, read at claim).
                zone = zone_for(r.phone) or default_zone
                zones.add(zone)
                yield (job_id, r.row, r.phone, r.name, r.text, r.channel, now, zone)

        cursor = conn.executemany(_INSERT_MESSAGE, rows())
        conn.executemany(
            "INSERT INTO job_zones (job_id, zone) VALUES (?, ?) ON CONFLICT DO NOTHING",
            ((job_id, z) for z in zones),
        )
        return cursor.rowcount  # summed over the rows; trigger writes are not counted

    def get_job(self, job_id: str) -> dict:
        """The job with its counts per message status; JobNotFound when there is none."""
        with self.db.read() as conn:
            return self._job_row(conn, job_id)

    def _job_row(self, conn, job_id: str) -> dict:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        job = dict(row)
        job.pop("rowid", None)  # PostgreSQL's stand-in for SQLite's hidden rowid
        job["counts"] = dict.fromkeys(MessageStatus.ALL, 0)
        for c in conn.execute(COUNTS, (job_id,)):
            job["counts"][c["status"]] = c["n"]
        # Every status object shows them, so they are read with the counts, in one snapshot.
        job["replies"], job["opted_out"] = reply_counts(
            conn, job_id, job["counts"][MessageStatus.CANCELLED]
        )
        now = self.clock()
        if job["status"] == JobStatus.SCHEDULED and job["send_at"] <= now:
            job["status"] = JobStatus.PENDING  # due: the next claim starts it
        job["senders"] = [
            r[0]
            for r in conn.execute(
                "SELECT sender FROM job_senders WHERE job_id = ? ORDER BY sender", (job_id,)
            )
        ]
        job["waiting"] = job_waiting(conn, self.rules, job, now)
        return job

    def list_jobs(self, active_only: bool = True, limit: int = 200, offset: int = 0) -> list[dict]:
        """Jobs newest first, by default only those not yet finished; one page of them."""
        where, params = _job_filter(active_only)
        with self.db.read() as conn:
            ids = [
                r["id"]
                for r in conn.execute(
                    f"SELECT id FROM jobs {where} ORDER BY created_at DESC, rowid DESC"
                    f" LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                )
            ]
            return [self._job_row(conn, i) for i in ids]

    def count_jobs(self, active_only: bool = True) -> int:
        """How many jobs `list_jobs` pages through."""
        where, params = _job_filter(active_only)
        with self.db.read() as conn:
            return conn.execute(f"SELECT count(*) FROM jobs {where}", params).fetchone()[0]

    def latest_job(self) -> dict | None:
        """The newest job, or None when there is none."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT id FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
            return self._job_row(conn, row["id"]) if row else None

    def pause_job(self, job_id: str) -> dict:
        """Stop handing out this job's messages until it is resumed."""
        return self._move(job_id, "pause", JobStatus.PAUSED)

    def resume_job(self, job_id: str) -> dict:
        """Hand out this job's messages again."""
        return self._move(job_id, "resume", None)

    def start_job(self, job_id: str) -> dict:
        """Start a scheduled job now instead of at its time."""
        return self._move(job_id, "start", JobStatus.PENDING)

    def stop_job(self, job_id: str) -> dict:
        """End the job for good: what is not yet being sent is cancelled."""
        return self._move(job_id, "stop", JobStatus.STOPPED)

    def stop_all(self) -> list[str]:
        """Stop every active job; the ids stopped."""
        with self.db.read() as conn:
            ids = [
                r["id"]
                for r in conn.execute(
                    f"SELECT id FROM jobs WHERE status IN ({_marks(JobStatus.ACTIVE)})",
                    JobStatus.ACTIVE,
                )
            ]
        stopped = []
        for job_id in ids:
            try:
                self.stop_job(job_id)
                stopped.append(job_id)
            except IllegalTransition:
                pass  # finished or stopped by someone else in the meantime
        return stopped

    def _move(self, job_id: str, move: str, target: str | None) -> dict:
        now = self.clock()
        with self.db.write() as conn:
            job = self._job_row(conn, job_id)
            if job["status"] not in USER_MOVES[move]:
                raise IllegalTransition(job_id, job["status"], move)
            if target is None:  # resume: back to where a job with its history belongs
                target = JobStatus.RUNNING if job["started_at"] else JobStatus.PENDING
            finished = now if target == JobStatus.STOPPED else None
            # A person's pause has no automatic reason; a resume judges failures afresh.
            judged_from = now if move == "resume" else None
            conn.execute(
                "UPDATE jobs SET status = ?, updated_at = ?, paused_reason = NULL,"
                " finished_at = COALESCE(?, finished_at),"
                " judged_from = COALESCE(?, judged_from) WHERE id = ?",
                (target, now, finished, judged_from, job_id),
            )
            if target in JobStatus.SENDABLE:
                self.db.notify(conn, job["channel"])
            if target == JobStatus.STOPPED:
                conn.execute(
                    "UPDATE messages SET status = 'cancelled', updated_at = ?"
                    " WHERE job_id = ? AND status IN ('pending', 'retrying')",
                    (now, job_id),
                )
            return self._job_row(conn, job_id)


_INSERT_MESSAGE = (
    "INSERT INTO messages (job_id, row, phone, name, text, channel, updated_at, zone)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _job_filter(active_only: bool) -> tuple[str, tuple]:
    if not active_only:
        return "", ()
    return f"WHERE status IN ({_marks(JobStatus.ACTIVE)})", JobStatus.ACTIVE


def _marks(values) -> str:
    return ", ".join("?" for _ in values)
