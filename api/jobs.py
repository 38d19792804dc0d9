"""Job routes: status, lists, per-recipient results, CSV export, pause / resume / stop, and
sending the failed, unknown or cancelled rows of a job again."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, request

from message_queue import MessageStatus

from .exports import csv_download, int_arg, safe_cell
from .payload import load_json_object, reject_unknown
from .problems import Problem, invalid
from .views import iso, message_object, status_object

bp = Blueprint("jobs", __name__)
# Spreadsheets run cells starting with these as formulas (CSV injection).


def _queue():
    return current_app.config["QUEUE"]


def _status(job) -> dict:
    return status_object(job, current_app.config["SETTINGS"], now=time.time())


@bp.get("/status/<job_id>")
def job_status(job_id):
    """The status object of one job."""
    return _status(_queue().get_job(job_id))


@bp.get("/status")
def latest_status():
    """Compatibility: the newest job's status, or idle."""
    job = _queue().latest_job()
    return _status(job) if job else {"status": "idle"}


@bp.post("/pause/<job_id>")
def pause(job_id):
    """Stop handing out this job's messages (takes effect between two messages)."""
    return _status(_queue().pause_job(job_id))


@bp.post("/resume/<job_id>")
def resume(job_id):
    """Go on sending a paused job."""
    return _status(_queue().resume_job(job_id))


@bp.post("/start/<job_id>")
def start(job_id):
    """Start a scheduled job now instead of at its time."""
    return _status(_queue().start_job(job_id))


@bp.post("/stop/<job_id>")
def stop(job_id):
    """End a job: what is not yet sent is cancelled."""
    return _status(_queue().stop_job(job_id))


@bp.post("/stop")
def stop_all():
    """Compatibility: stop every active job."""
    return {"stopped": _queue().stop_all()}


@bp.post("/jobs/<job_id>/resend")
def resend(job_id):
    """A new job with this job's rows in the given states, each copied once (202)."""
    body = load_json_object()
    reject_unknown(body, {"statuses"})
    statuses = body.get("statuses")
    allowed = MessageStatus.RESENDABLE
    if (
        not isinstance(statuses, list)
        or not statuses
        or not all(isinstance(s, str) and s in allowed for s in statuses)
    ):
        raise invalid(
            "statuses",
            f"statuses must be a non-empty list of {', '.join(allowed)}: "
            "the messages that did not arrive for sure.",
        )
    _check_attachment_kept(_queue().get_job(job_id))
    job = _queue().resend(job_id, statuses)
    return _status(job), 202, {"Location": f"/status/{job['id']}"}


def _check_attachment_kept(job: dict) -> None:
    """A 409 when retention deleted the job's attachment: a copy would fail every message."""
    if job["attachment_name"] and not job["attachment_path"]:
        days = current_app.config["SETTINGS"].attachment_retention_days
        raise Problem(
            409,
            f"This job's attachment {job['attachment_name']!r} was deleted "
            f"{days:g} days after the job finished (ATTACHMENT_RETENTION_DAYS), "
            "so its messages cannot be sent again; start a new job with the "
            "file attached.",
        )


@bp.get("/jobs")
def list_jobs():
    """Active jobs newest first; ?all=1 for every job; `limit` (200) and `offset` page them."""
    all_jobs = request.args.get("all", "").lower() in ("1", "true", "yes")
    limit = int_arg("limit", 200, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    queue = _queue()
    jobs = queue.list_jobs(active_only=not all_jobs, limit=limit, offset=offset)
    return {
        "jobs": [_status(j) for j in jobs],
        "total": queue.count_jobs(not all_jobs),
        "limit": limit,
        "offset": offset,
    }


@bp.get("/jobs/<job_id>/messages")
def list_messages(job_id):
    """A page of a job's recipients with their status, attempts and error."""
    status = request.args.get("status") or None
    if status is not None and status not in MessageStatus.ALL:
        raise invalid(
            "status", f"Unknown status {status!r}; use one of {', '.join(MessageStatus.ALL)}."
        )
    limit = int_arg("limit", 100, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    search = request.args.get("q", "").strip()[:100] or None
    rows, total = _queue().list_messages(job_id, status, limit, offset, search)
    return {
        "messages": [message_object(m) for m in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@bp.get("/jobs/<job_id>/activity")
def activity(job_id):
    """A job's totals, and its sends, deliveries, failures and replies per hour."""
    found = _queue().job_activity(job_id)
    return {
        "job_id": job_id,
        "bucket_seconds": found["bucket_seconds"],
        "buckets": [{**b, "at": iso(b["at"])} for b in found["buckets"]],
        "totals": found["totals"],
    }


@bp.get("/jobs/<job_id>/export.csv")
def export_csv(job_id):
    """Every recipient with status and error, as a spreadsheet-safe CSV download."""
    queue = _queue()
    queue.get_job(job_id)  # an unknown id is a 404 before the download starts
    header = ["row", "phone", "name", "channel", "status", "attempts", "error", "sent_at"]
    rows = (
        [
            m["row"],
            m["phone"],
            safe_cell(m["name"]),
            m["channel"],
            m["status"],
            m["attempts"],
            safe_cell(m["error"] or ""),
            iso(m["sent_at"]) or "",
            safe_cell(m["text"]),
        ]
        for m in queue.iter_messages(job_id)
    )
    return csv_download(f"{job_id}.csv", [*header, "message"], rows)
