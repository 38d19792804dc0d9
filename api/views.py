"""The JSON shapes the API answers with, built from queue rows."""

from __future__ import annotations

from datetime import UTC, datetime

from message_queue import JobStatus, MessageStatus
from utils.pacing import Delays, Limits


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a Z, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_object(job: dict, settings, now: float | None = None) -> dict:
    """The contract's status object for one job."""
    counts = job["counts"]
    total = job["total"]
    finished = sum(counts[s] for s in MessageStatus.FINISHED)
    body = {
        "job_id": job["id"],
        "name": job["name"],
        "channel": job["channel"],
        "status": job["status"],
        "total": total,
        "counts": counts,
        # Rows built before replies existed (or by hand in a test) have none yet.
        "replies": job.get("replies", 0),
        "opted_out": job.get("opted_out", 0),
        "progress": round(finished / total, 4) if total else 1.0,
        "eta_seconds": _eta(job, total - finished, finished, settings, now),
        "waiting": _waiting(job.get("waiting")),
        "send_at": iso(job.get("send_at")),
        # The senders it may use when it names them; empty: every sender of its channel.
        "senders": job.get("senders", []),
        "last_error": job["last_error"],
        "attachment": job["attachment_name"],
        "created_at": iso(job["created_at"]),
        "started_at": iso(job["started_at"]),
        "finished_at": iso(job["finished_at"]),
        "updated_at": iso(job["updated_at"]),
    }
    if job.get("sms_parts") is not None:
        body["sms_parts"] = job["sms_parts"]
    return body


def _waiting(hold) -> dict | None:
    if hold is None:
        return None
    return {"reason": hold.reason, "until": iso(hold.until)}


def _eta(job, remaining, finished, settings, now) -> int | None:
    if job["status"] in JobStatus.FINAL or remaining == 0:
        return 0
    if job["status"] not in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SCHEDULED):
        return None  # paused or waiting for a login: nobody can say when it goes on
    paced = Delays.for_channel(settings, job["channel"]).seconds_per_message()
    limits = Limits.for_job(settings, job["channel"], job.get("daily_cap"), job.get("hourly_cap"))
    hold = job.get("waiting")
    wait = max((hold.until or 0.0) - now, 0.0) if hold is not None and now is not None else 0.0
    if limits.seconds(remaining, paced) > paced * remaining * 1.01:
        # Caps or the window set the pace: the time they allow, from when it may go on.
        return int(round(wait + limits.seconds(remaining, paced)))
    if job["started_at"] and finished >= 3 and now is not None:
        per_message = max(now - job["started_at"], 0.0) / finished
    else:
        # Before a rate can be measured: the job's own channel's pacing, as /preview said.
        per_message = paced
    return int(round(wait + per_message * remaining))


def message_object(m: dict) -> dict:
    """One recipient as /jobs/<id>/messages shows it."""
    return {
        "id": m["id"],
        "row": m["row"],
        "phone": m["phone"],
        "name": m["name"],
        "channel": m["channel"],
        "status": m["status"],
        "attempts": m["attempts"],
        "error": m["error"],
        "sent_at": iso(m["sent_at"]),
        "updated_at": iso(m["updated_at"]),
        "resent_to": m["resent_to"],
        # The sender (WORKER_ID) that holds or sent it; null while no sender has it.
        "sender": m["claimed_by"],
    }


def conversation_object(c: dict) -> dict:
    """One conversation as /conversations shows it."""
    return {
        "phone": c["phone"],
        "name": c["name"],
        "unread": c["unread"],
        "starred": bool(c["starred"]),
        "last_message_at": iso(c["last_message_at"]),
        "last_text": c["last_text"],
        "last_direction": c["last_direction"],
        "channel": c["channel"],
    }


def thread_message_object(m: dict) -> dict:
    """One bubble of a thread: sent by us (`out`, live status) or written by them (`in`)."""
    return {
        "id": m["id"],
        "direction": m["direction"],
        "channel": m["channel"],
        "text": m["text"],
        "status": m["status"],
        "at": iso(m["at"]),
        "job_id": m["job_id"],
        "sender": m["sender"],
    }
