"""Claiming the next message a sender may send now: pacing aside, every rule of section 8.

A claim is one write transaction of a few small reads and one UPDATE:

1. The sendable jobs this sender may use, oldest first, with the zones their rows are in, and
   whether a scheduled job has come due (then it becomes pending first).
2. Whether the sender may send one more: its caps are counted in its rows now and then, and
   kept as a budget between (see Claimer).
3. Python drops jobs at their own caps and zones outside the send window (a zone's window
   only changes on a minute, so that answer is kept for the minute).
4. For the first job left, one UPDATE takes its first waiting row in an open zone: a seek per
   zone on messages_ready, and RETURNING hands back the row, so nothing is read twice.

The job list is read inside the same transaction as the UPDATE, so a pause or stop that
committed before the claim is always seen. On PostgreSQL, claims run side by side (they hold
the queue's write lock shared, message_queue/pg.py): each row is taken `FOR UPDATE SKIP
LOCKED`, so two senders never wait on, or take, the same row.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter
from typing import TypedDict

from .holds import _SENT, job_hold
from .rules import DAY, HOUR, SendingRules
from .states import JobStatus

UNLIMITED = 1 << 30
# A job held at its own cap is asked again after this many seconds at the latest.
HELD_RECHECK = 15.0


class ClaimedMessage(TypedDict):
    """A row a worker holds `sending`: the same shape from a claim and from crash recovery."""

    id: int
    job_id: str
    row: int | None
    phone: str
    name: str
    text: str
    channel: str
    attempts: int
    provider_id: str | None
    attachment_path: str | None
    attachment_name: str | None
    job_channel: str


# 1. Whether a scheduled job has come due (its start is a write, so it is asked first).
_DUE = "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'scheduled' AND send_at <= ?)"
# A sender's sends since a time, counted no further than a cap (the index range stops there).
_SENT_SINCE = (
    f"SELECT count(*) FROM (SELECT 1 FROM messages WHERE claimed_by = ? AND {_SENT}"
    " AND claimed_at > ? LIMIT ?) AS recent"
)
# 2. The sendable jobs and their zones, oldest job first (and whether a scheduled one is due).
_JOBS = (
    "SELECT j.id, j.status, j.daily_cap, j.hourly_cap, j.channel, j.attachment_path,"
    " j.attachment_name, z.zone, (" + _DUE + ") FROM jobs j JOIN job_zones z ON z.job_id = j.id"
    f" WHERE j.status IN ('{JobStatus.PENDING}', '{JobStatus.RUNNING}')"
    # A job that names its senders is left to them.
    " AND (NOT EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id)"
    "      OR EXISTS (SELECT 1 FROM job_senders s WHERE s.job_id = j.id AND s.sender = ?))"
    " ORDER BY j.created_at, j.rowid"
)
# 4. The first waiting row of one job in one zone whose retry time has come.
_FIRST_IN_ZONE = (
    "(SELECT m.id FROM messages m WHERE m.job_id = :job AND m.zone = :z{i} AND m.channel = :channel"
    " AND m.status IN ('pending', 'retrying') AND m.next_attempt_at <= :now"
    " ORDER BY {order} LIMIT 1{lock})"
)
_RETURNED = ("id", "job_id", "row", "phone", "name", "text", "channel", "attempts", "provider_id")
_TAKE = (
    "UPDATE messages SET status = 'sending', attempts = attempts + 1, claimed_by = :worker,"
    " claimed_at = :now, updated_at = :now WHERE id = {first}"
    f" AND status IN ('pending', 'retrying') RETURNING {', '.join(_RETURNED)}"
)


class Claimer:
    """The claim of one queue: its rules, and what it may keep between two claims.

    A sender's caps are counted in the queue's rows, then kept as a budget: how many more it
    may claim before its caps could be reached. Only this process sends as this WORKER_ID,
    and places only free up as time passes, so the budget is never too generous; at zero the
    rows are counted again. A claim thus reads its caps once in a while, not every time.
    """

    def __init__(self, rules: SendingRules, dialect: str = "sqlite"):
        self.rules = rules
        # SQLite has one writer at a time; PostgreSQL's claims skip each other's rows.
        self._lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
        # PostgreSQL's messages_ready orders by `id + 0`, an order the primary key cannot give:
        # after ANALYZE its planner would otherwise walk the primary key past every row already
        # sent (it assumes the waiting rows are spread evenly), a scan that grows with the job.
        self._order = "m.id + 0" if dialect == "postgresql" else "m.id"
        self._open: dict[tuple[str, int], bool] = {}  # (zone, minute) -> window open
        self._budget: dict[tuple[str, str], int] = {}  # (sender, channel) -> claims left
        self._held_until: dict[str, float] = {}  # job at its own cap -> when a place frees
        self._take_sql: dict[int, str] = {}

    def claim(self, conn, channel: str, worker: str, now: float) -> ClaimedMessage | None:
        """Take the next message `worker` may send on `channel` now, inside `conn`'s write."""
        jobs = conn.execute(_JOBS, (now, worker)).fetchall()
        # Whether a scheduled job came due rides on the job list; with no sendable job at
        # all there is no row to carry it, so it is asked on its own.
        due = jobs[0][-1] if jobs else conn.execute(_DUE, (now,)).fetchone()[0]
        if due:
            conn.execute(
                "UPDATE jobs SET status = 'pending', updated_at = ? WHERE status = 'scheduled'"
                " AND send_at <= ?",
                (now, now),
            )
            jobs = conn.execute(_JOBS, (now, worker)).fetchall()
        sender = (worker, channel)
        budget = self._budget.get(sender)
        if budget is None or budget <= 0:
            budget = self._budget[sender] = self._sender_budget(conn, channel, worker, now)
            if budget <= 0:
                return None
        for job, zones in self._jobs(conn, jobs, now):
            params = {"worker": worker, "now": now, "channel": channel, "job": job[0]}
            row = conn.execute(self._take(len(zones)), self._bind(zones, params)).fetchone()
            if row is None:
                continue
            self._budget[sender] = budget - 1
            if job[1] == JobStatus.PENDING:
                conn.execute(
                    "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?),"
                    " updated_at = ? WHERE id = ? AND status = 'pending'",
                    (now, now, job[0]),
                )
            claimed = dict(zip(_RETURNED, row, strict=True))
            claimed.update(attachment_path=job[5], attachment_name=job[6], job_channel=job[4])
            return ClaimedMessage(**claimed)  # type: ignore[typeddict-item]
        return None

    # -- the sender -----------------------------------------------------------------------

    def _sender_budget(self, conn, channel: str, worker: str, now: float) -> int:
        """How many more `worker` may claim now before a cap of its could be reached."""
        rules = self.rules
        caps = rules.caps_for(channel)
        left = UNLIMITED
        if caps.hourly:
            left = (
                caps.hourly
                - conn.execute(_SENT_SINCE, (worker, now - HOUR, caps.hourly)).fetchone()[0]
            )
        if caps.daily and left > 0:
            row = conn.execute(
                "SELECT first_send_at FROM senders WHERE id = ?", (worker,)
            ).fetchone()
            allowance = rules.daily_allowance(channel, row[0] if row else None, now)
            sent = conn.execute(_SENT_SINCE, (worker, now - DAY, allowance)).fetchone()[0]
            left = min(left, allowance - sent)
        return left

    # -- the jobs -------------------------------------------------------------------------

    def _jobs(self, conn, jobs: list, now: float):
        """(job row, its open zones) for each sendable job not at its own caps, oldest first."""
        for _, group in groupby(jobs, key=itemgetter(0)):
            rows = list(group)
            job = rows[0]
            if (job[2] or job[3]) and self._job_held(conn, job, now):
                continue  # at its own cap: its rows wait, other jobs' go
            zones = [r[7] for r in rows if self._zone_open(r[7], now)]
            if zones:
                yield job, zones

    def _job_held(self, conn, job, now: float) -> bool:
        """A job at one of its own caps. Held until a time, it stays held until then whoever
        sends (places free up as time passes, or when a row in flight fails), so that answer
        is kept a while; a job under its caps is asked again at every claim, since other
        senders may fill them."""
        if now < self._held_until.get(job[0], 0.0):
            return True
        hold = job_hold(conn, job[0], job[2], job[3], now)
        if hold is None:
            return False
        if len(self._held_until) > 4096:
            self._held_until.clear()
        # Asked again within HELD_RECHECK at the latest: a row in flight that fails frees
        # its place before its time.
        self._held_until[job[0]] = min(hold.until or now, now + HELD_RECHECK)
        return True

    def _zone_open(self, zone: str, now: float) -> bool:
        window = self.rules.window
        if window is None:
            return True
        key = (zone, int(now // 60))
        is_open = self._open.get(key)
        if is_open is None:
            if len(self._open) > 4096:
                self._open.clear()
            is_open = self._open[key] = window.is_open(self.rules.zone(zone), now)
        return is_open

    def _take(self, zones: int) -> str:
        sql = self._take_sql.get(zones)
        if sql is None:
            if zones == 1:
                first = _FIRST_IN_ZONE.format(i=0, lock=self._lock, order=self._order)
            else:
                each = " UNION ALL ".join(
                    f"SELECT {_FIRST_IN_ZONE.format(i=i, lock=self._lock, order=self._order)} AS id"
                    for i in range(zones)
                )
                first = f"(SELECT min(id) FROM ({each}) AS firsts)"
            sql = self._take_sql[zones] = _TAKE.format(first=first)
        return sql

    @staticmethod
    def _bind(zones: list[str], params: dict) -> dict:
        return params | {f"z{i}": z for i, z in enumerate(zones)}
