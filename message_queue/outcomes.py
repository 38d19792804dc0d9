"""What a row's end means for its job: the job's tally, the failure judge, and completion.

A mark reads its job's counts once (`tally_of`) and hands them to both: the judge pauses a job
whose recent sends mostly failed, and a job with no open row left is completed.
"""

from __future__ import annotations

from typing import NamedTuple

from .holds import too_many_failures
from .rules import SendingRules
from .states import JobStatus

_SENDABLE = f"status IN ('{JobStatus.PENDING}', '{JobStatus.RUNNING}')"

# A job's failed rows, its open ones (pending, retrying, sending) and of those the ones not yet
# handed out (pending, retrying), from job_counts (kept by the trigger): one statement, one
# row, for both the failure judge and completion.
_TALLY = (
    "SELECT coalesce(sum(CASE WHEN status = 'failed' THEN n END), 0),"
    " coalesce(sum(CASE WHEN status IN ('pending', 'retrying', 'sending') THEN n END), 0),"
    " coalesce(sum(CASE WHEN status IN ('pending', 'retrying') THEN n END), 0)"
    " FROM job_counts WHERE job_id = ?"
)


class Tally(NamedTuple):
    failed: int
    open: int
    waiting: int


def tally_of(conn, job_id: str) -> Tally:
    return Tally(*(int(n) for n in conn.execute(_TALLY, (job_id,)).fetchone()))


def needs_follow_up(rules: SendingRules, tally: Tally) -> bool:
    """After a shared mark: whether the judge or the job's completion must look again.

    Under a shared lock two marks of one job can commit side by side, each counting the
    other's row as still open, so neither would complete the job. Only marks and claims share
    the lock, and claims only move waiting rows to `sending`, so while rows wait the job is not
    done whatever the others do; once none waits, the last row's mark cannot tell whether it
    is the last, and an exclusive write, which sees every commit, asks.
    """
    return may_fail_job(rules, tally.failed) or (tally.open > 0 and tally.waiting == 0)


def may_fail_job(rules: SendingRules, failed: int) -> bool:
    """Whether a job with `failed` rows in all could be at the failure rate at all."""
    return bool(rules.failure_rate) and failed > rules.failure_rate * rules.failure_window


def judge_failures(conn, rules: SendingRules, job_id: str, now: float, failed: int) -> None:
    """Pause a sendable job whose recent sends mostly failed: a bad list burns a number.

    Judged after every outcome, since the window may fill on a success; a job with too few
    failures in all to reach the rate is passed over with one lookup of its counts.
    """
    if not may_fail_job(rules, failed):
        return
    job = conn.execute(
        f"SELECT judged_from FROM jobs WHERE id = ? AND {_SENDABLE}", (job_id,)
    ).fetchone()
    if job is not None and too_many_failures(conn, rules, job_id, job[0]):
        conn.execute(
            "UPDATE jobs SET status = 'paused', paused_reason = 'too_many_failures',"
            " updated_at = ? WHERE id = ?",
            (now, job_id),
        )


def complete_if_done(conn, job_id: str, now: float, tally: Tally | None = None) -> None:
    """Complete the job when no row is open; `tally` when the caller read it already (in this
    transaction, after its own change)."""
    if (tally or tally_of(conn, job_id)).open == 0:
        conn.execute(
            "UPDATE jobs SET status = 'completed', finished_at = ?, updated_at = ?"
            " WHERE id = ? AND status NOT IN ('completed', 'stopped')",
            (now, now, job_id),
        )
