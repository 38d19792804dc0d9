"""Why a sender or a job may not send right now, and until when (contract section 8).

Caps count the queue's own rows, so a restart or a second worker never resets them. A cap of
C in a rolling window W is reached when the C-th newest send is inside the window, and it
frees a place when that send leaves it: one seek into a partial index and C steps, however
many rows a sender ever sent.
"""

from __future__ import annotations

from typing import NamedTuple

from .channels import job_channel
from .rules import DAY, HOUR, SendingRules
from .states import DISCONNECTED_AFTER, JobStatus

# The partial indexes' own WHERE terms, written exactly as in schema.sql: SQLite only uses a
# partial index when the query repeats its condition.
_SENT = "status IN ('sent', 'delivered', 'unknown')"
_TRIED = "status IN ('sent', 'delivered', 'unknown', 'failed')"


class Hold(NamedTuple):
    """Nothing may go now because of `reason`; it may again at `until` (epoch seconds)."""

    reason: str
    until: float | None


def _cap_hold(conn, where: str, params: tuple, cap: int, span: float, now: float, taken=()):
    """When a cap of `cap` in `span` seconds frees a place, or None when it is not reached.

    `taken`: claim times (newest first, inside the span) of rows in flight, claimed and not yet
    marked, which hold a place each. With k of them the cap is reached once the (cap - k)-th
    newest send is inside the span; it frees a place when that send leaves it, or sooner if
    a row in flight fails (the claim asks again now and then: message_queue/claim.py).
    """
    if len(taken) >= cap:
        return taken[cap - 1] + span
    row = conn.execute(
        f"SELECT claimed_at FROM messages WHERE {where} AND claimed_at > ?"
        " ORDER BY claimed_at DESC LIMIT 1 OFFSET ?",
        (*params, now - span, max(cap - len(taken) - 1, 0)),
    ).fetchone()
    return None if row is None else row[0] + span


def first_send_at(conn, sender: str) -> float | None:
    row = conn.execute("SELECT first_send_at FROM senders WHERE id = ?", (sender,)).fetchone()
    return None if row is None else row[0]


def sender_hold(conn, rules: SendingRules, sender: str, channel: str, now: float) -> Hold | None:
    """Why `sender` may not send on `channel` now (hourly cap, daily cap or warm-up)."""
    caps = rules.caps_for(channel)
    by_sender = f"claimed_by = ? AND {_SENT}"
    if caps.hourly:
        until = _cap_hold(conn, by_sender, (sender,), caps.hourly, HOUR, now)
        if until is not None:
            return Hold("hourly_cap", until)
    if caps.daily:
        first = first_send_at(conn, sender)
        allowance = rules.daily_allowance(channel, first, now)
        until = _cap_hold(conn, by_sender, (sender,), allowance, DAY, now)
        if until is not None:
            if allowance >= caps.daily:
                return Hold("daily_cap", until)
            # In warm-up, tomorrow's allowance is larger: it may go on at the day's turn.
            day = rules.warmup_day(first, now) or 1
            turn = (first if first is not None else now) + day * DAY
            return Hold("warmup", min(until, turn))
    return None


def job_hold(conn, job_id: str, daily: int | None, hourly: int | None, now: float):
    """Why a job with its own caps may not send now, counting only its own sends.

    Its rows in flight count too: several senders share a job, and each one's claim would
    otherwise see a place that another sender's claim has already taken.
    """
    if not (hourly or daily):
        return None
    by_job = f"job_id = ? AND {_TRIED} AND status <> 'failed'"
    in_flight = [
        r[0]
        for r in conn.execute(
            "SELECT claimed_at FROM messages WHERE job_id = ? AND status = 'sending'"
            " AND claimed_at > ? ORDER BY claimed_at DESC",
            (job_id, now - DAY),
        )
    ]
    if hourly:
        taken = [at for at in in_flight if at > now - HOUR]
        until = _cap_hold(conn, by_job, (job_id,), hourly, HOUR, now, taken)
        if until is not None:
            return Hold("hourly_cap", until)
    if daily:
        until = _cap_hold(conn, by_job, (job_id,), daily, DAY, now, in_flight)
        if until is not None:
            return Hold("daily_cap", until)
    return None


def sent_since(conn, sender: str, since: float) -> int:
    """How many `sender` sent since `since` (for /session and the /app page)."""
    return conn.execute(
        f"SELECT count(*) FROM messages WHERE claimed_by = ? AND {_SENT} AND claimed_at > ?",
        (sender, since),
    ).fetchone()[0]


def too_many_failures(conn, rules: SendingRules, job_id: str, judged_from: float | None) -> bool:
    """True when more than the allowed share of the job's last sends failed.

    Judged only once the window is full, over sends since `judged_from` (a resume starts a
    fresh window, so a person who fixed the list is not paused again by the old failures).
    """
    if not rules.failure_rate:
        return False
    outcomes = [
        r[0]
        for r in conn.execute(
            f"SELECT status FROM messages WHERE job_id = ? AND {_TRIED} AND claimed_at >= ?"
            " ORDER BY claimed_at DESC LIMIT ?",
            (job_id, judged_from or 0.0, rules.failure_window),
        )
    ]
    if len(outcomes) < rules.failure_window:
        return False
    return outcomes.count("failed") / len(outcomes) > rules.failure_rate


def job_waiting(conn, rules: SendingRules, job: dict, now: float) -> Hold | None:
    """Why none of a job's remaining rows may go now, with the earliest time one may.

    None when something may go (or the job is finished, paused by a person, or waiting for
    a login, which its status already says).
    """
    status = job["status"]
    if status == JobStatus.SCHEDULED:
        return Hold("scheduled", job["send_at"])
    if status == JobStatus.PAUSED:
        return Hold("too_many_failures", None) if job["paused_reason"] else None
    counts = job["counts"]
    if status not in JobStatus.SENDABLE or not (counts["pending"] or counts["retrying"]):
        return None
    holds = [
        h
        for h in (
            job_hold(conn, job["id"], job["daily_cap"], job["hourly_cap"], now),
            _window_hold(conn, rules, job["id"], now),
            _senders_hold(conn, rules, job["channel"], job.get("senders") or (), now),
        )
        if h is not None
    ]
    # Each hold must lift before anything goes: the latest of them says when.
    return max(holds, key=lambda h: h.until or 0.0) if holds else None


def _window_hold(conn, rules: SendingRules, job_id: str, now: float) -> Hold | None:
    """Every zone that still has waiting rows is outside the send window."""
    window = rules.window
    if window is None:
        return None
    opens = []
    for (zone,) in conn.execute("SELECT zone FROM job_zones WHERE job_id = ?", (job_id,)):
        waiting = conn.execute(
            "SELECT 1 FROM messages WHERE job_id = ? AND zone = ?"
            " AND status IN ('pending', 'retrying') LIMIT 1",
            (job_id, zone),
        ).fetchone()
        if waiting is None:
            continue
        at = window.next_open(rules.zone(zone), now)
        if at <= now:
            return None
        opens.append(at)
    return Hold("send_window", min(opens)) if opens else None


def _senders_hold(
    conn, rules: SendingRules, job_channel_name: str, named, now: float
) -> Hold | None:
    """Every live sender the job may use (`named`, else all of its first channel's) is at a
    cap or in warm-up."""
    transport = job_channel(job_channel_name).first
    senders = [
        s[0]
        for s in conn.execute(
            "SELECT id FROM workers WHERE channel = ? AND heartbeat_at >= ?"
            " AND state IN ('logged_in', 'sending')",
            (transport, now - DISCONNECTED_AFTER),
        )
        if not named or s[0] in named
    ]
    holds = [sender_hold(conn, rules, s, transport, now) for s in senders]
    if not holds or None in holds:
        return None
    return min(holds, key=lambda h: h.until or 0.0)  # type: ignore[union-attr]


def sender_usage(conn, rules: SendingRules, sender: str, channel: str, now: float) -> dict:
    """What a sender sent lately against its caps, its warm-up day, and what holds it."""
    first = first_send_at(conn, sender)
    caps = rules.caps_for(channel)
    return {
        "sent_last_hour": sent_since(conn, sender, now - HOUR),
        "sent_last_24h": sent_since(conn, sender, now - DAY),
        "hourly_cap": caps.hourly or None,
        "daily_cap": rules.daily_allowance(channel, first, now) or None,
        "warmup_day": rules.warmup_day(first, now),
        "first_send_at": first,
        "held": sender_hold(conn, rules, sender, channel, now),
    }
