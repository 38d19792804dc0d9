"""Health, worker states and the WhatsApp login QR code."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .payload import check_text
from .problems import Problem
from .views import iso

bp = Blueprint("session", __name__)
# States in which a worker does its job; anything else makes /health say degraded.
HEALTHY_STATES = {"starting", "logged_in", "sending"}


@bp.get("/health")
def health():
    """Liveness for monitors: 200 ok/degraded, 503 when the database is unusable."""
    queue = current_app.config["QUEUE"]
    database = queue.check()
    if database != "ok":
        # Anyone may call /health: the reason (it names the database file) goes to the log.
        current_app.logger.error("health: the database is unusable: %s", database)
        return {"status": "down", "database": "unavailable", "workers": []}, 503
    workers = [
        {
            "worker_id": w["id"],
            "channel": w["channel"],
            "state": w["state"],
            "heartbeat_age_s": w["heartbeat_age_s"],
        }
        for w in queue.list_workers()
        if w["state"] != "stopped"
    ]
    ok = bool(workers) and all(w["state"] in HEALTHY_STATES for w in workers)
    return {"status": "ok" if ok else "degraded", "database": "ok", "workers": workers}


@bp.get("/session")
def session_state():
    """Every worker's state, so a person knows whether WhatsApp or the phone needs them."""
    workers = current_app.config["QUEUE"].list_workers(usage=True)
    return {
        "workers": [
            {
                "worker_id": w["id"],
                "channel": w["channel"],
                "state": w["state"],
                "detail": w["detail"],
                "qr_available": w["qr_available"],
                "heartbeat_at": iso(w["heartbeat_at"]),
                "current_job_id": w["current_job_id"],
                "limits": _limits(w["usage"]),
            }
            for w in workers
        ]
    }


def _limits(usage: dict) -> dict:
    """A sender's caps and warm-up, and why it sends nothing now (contract section 8)."""
    held = usage["held"]
    return {
        "sent_last_hour": usage["sent_last_hour"],
        "sent_last_24h": usage["sent_last_24h"],
        "hourly_cap": usage["hourly_cap"],
        "daily_cap": usage["daily_cap"],
        "warmup_day": usage["warmup_day"],
        "first_send_at": iso(usage["first_send_at"]),
        "waiting": None if held is None else {"reason": held.reason, "until": iso(held.until)},
    }


@bp.get("/session/qr.png")
def qr_png():
    """The newest login QR code a WhatsApp worker captured (`?worker_id=`: that account's)."""
    worker_id = check_text("worker_id", request.args.get("worker_id", ""))[:200] or None
    qr = current_app.config["QUEUE"].latest_qr(worker_id)
    if qr is None:
        raise Problem(404, "No login QR code right now: the worker is logged in or not running.")
    png, taken_at = qr
    return Response(
        png,
        mimetype="image/png",
        headers={"Cache-Control": "no-store", "X-QR-Taken-At": iso(taken_at) or ""},
    )
