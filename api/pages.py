"""The /app page: sign in once with the API key, then a browser UI over the same JSON API.

Pages are rendered here (Jinja, autoescaped); the scripts in static/ call the API with the
session cookie and the session's CSRF token in `X-CSRF-Token` (see api/auth.py). Every view
of the page is the one endpoint `app_page`, so that it is public: signed out, it shows the
sign-in form instead of answering 401 JSON to a person.
"""

from __future__ import annotations

import re
import secrets
import time

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from message_queue import JOB_CHANNELS, JobNotFound, JobStatus, MessageStatus
from message_queue.states import USER_MOVES
from utils.pacing import Delays

from .auth import (
    THROTTLED,
    end_page_session,
    key_matches,
    key_wait,
    page_session,
    start_page_session,
    try_key,
)
from .problems import Problem
from .views import status_object

bp = Blueprint("pages", __name__)
CHANNEL_LABELS = {name: channel.label for name, channel in JOB_CHANNELS.items()}
# Where sign-in may lead: /app or a path under it, in printable ASCII without spaces (no
# CR/LF to split the Location header, no other site), and not absurdly long.
PAGE_PATH = re.compile(r"/app(?:[/?#][!-~]*)?")
NEXT_MAX = 300


@bp.get("/")
def index():
    """The root is the page."""
    return redirect(url_for("pages.app_page"))


# Decorators apply bottom-up: "/app" is the first rule, the one url_for builds by default.
@bp.get("/app/conversations/<phone>", defaults={"view": "conversation", "job_id": None})
@bp.get("/app/conversations", defaults={"view": "conversations", "job_id": None})
@bp.get("/app/opt-outs", defaults={"view": "opt_outs", "job_id": None})
@bp.get("/app/jobs/<job_id>", defaults={"view": "job"})
@bp.get("/app/new", defaults={"view": "new", "job_id": None})
@bp.get("/app", defaults={"view": "campaigns", "job_id": None})
def app_page(view: str, job_id: str | None, phone: str | None = None):
    """Campaigns, new campaign, one campaign, the opt-outs or the conversations (one thread
    open, or none); the sign-in form when signed out."""
    if page_session() is None:
        return _sign_in_form(next_url=request.path)
    queue = current_app.config["QUEUE"]
    settings = current_app.config["SETTINGS"]
    context = {
        "view": view,
        "waiting": _waiting_statuses(queue),
        "unread_threads": _unread_threads(queue),
    }
    if view == "job":
        try:
            row = queue.get_job(job_id)
        except JobNotFound:
            return render_template("not_found.html", job_id=job_id, **context), 404
        context.update(job=status_object(row, settings, now=time.time()), template=row["template"])
    elif view == "new":
        context.update(
            pacing={c: Delays.for_channel(settings, c).describe() for c in JOB_CHANNELS},
            default_country=settings.default_country,
            # The WhatsApp caps a job may lower (SMS ones are checked by /send), the window.
            caps={"daily": settings.whatsapp_daily_cap, "hourly": settings.whatsapp_hourly_cap},
            send_window=settings.send_window,
        )
    elif view.startswith("conversation"):
        # One template for both: the list, and the thread the URL names (the script asks the
        # API for it, so an unknown number is the API's own 404 words, shown in the thread).
        return render_template("conversations.html", phone=phone or "", **context)
    return render_template(f"{view}.html", **context)


@bp.post("/app/sign-in")
def sign_in():
    """Check the API key once; the browser then holds a cookie naming a server-side session."""
    next_url = _local_next(request.form.get("next"))
    if not key_matches(request.form.get("csrf"), _csrf_token()):
        return _refuse(
            400, "This form was open too long or cookies are blocked: try again.", next_url
        )
    wait = key_wait()
    if wait:
        return _refuse(429, THROTTLED.format(wait=wait), next_url, {"Retry-After": str(wait)})
    if not try_key(request.form.get("api_key", "").strip()):
        return _refuse(
            401,
            "That is not the API key. It is the API_KEY line in the .env file next to app.py.",
            next_url,
            {"WWW-Authenticate": 'Bearer realm="bulk-sender"'},
        )
    start_page_session()
    return redirect(next_url, code=303)


@bp.post("/app/sign-out")
def sign_out():
    """End the session (the form carries the CSRF token, so no other site can do it)."""
    token = request.form.get("csrf") or request.headers.get("X-CSRF-Token")
    found = page_session()
    if found is not None and not key_matches(token, found["csrf"]):
        raise Problem(403, "Missing or wrong CSRF token; reload the page.")
    end_page_session()
    return redirect(url_for("pages.app_page"), code=303)


@bp.after_request
def _no_store(response):
    # Pages carry the CSRF token and campaign names: no shared or back-button cache keeps them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def _page_context() -> dict:
    """What every template may use."""
    return {
        "csrf_token": _csrf_token,
        "signed_in": page_session() is not None,
        "channel_labels": CHANNEL_LABELS,
        "user_moves": USER_MOVES,
        "message_statuses": MessageStatus.ALL,
        "resendable": MessageStatus.RESENDABLE,
        "waiting_statuses": JobStatus.WAITING,
    }


def _csrf_token() -> str:
    """The signed-in session's CSRF token; signed out, the sign-in form's, made on first use
    and kept in the cookie (there is no server-side session yet to keep it in)."""
    found = page_session()
    if found is not None:
        return found["csrf"]
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _sign_in_form(
    next_url: str = "/app", error: str | None = None, status: int = 200, headers: dict | None = None
):
    settings = current_app.config["SETTINGS"]
    return (
        render_template(
            "sign_in.html",
            error=error,
            next_url=_local_next(next_url),
            idle=_duration(settings.session_idle_timeout),
            max_age=_duration(settings.session_max_age),
        ),
        status,
        headers or {},
    )


def _duration(seconds: float) -> str:
    """`45 minutes`, `12 hours`: how long a session may last, in the sign-in form's words."""
    minutes = max(round(seconds / 60), 1)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{round(minutes / 60, 1):g} hours"


def _refuse(status: int, message: str, next_url: str, headers: dict | None = None):
    """A refused sign-in: the form again with the reason, or problem+json for a script."""
    # Browsers ask for text/html by name; curl (*/*) and scripts get problem+json.
    if any(kind == "text/html" for kind, _ in request.accept_mimetypes):
        return _sign_in_form(next_url, message, status, headers)
    raise Problem(status, message, headers=headers)


def _local_next(target: str | None) -> str:
    """Only a plain path of this page may follow sign-in (no open redirect, no header split)."""
    if (
        isinstance(target, str)
        and len(target) <= NEXT_MAX
        and PAGE_PATH.fullmatch(target)
        and "//" not in target
        and "\\" not in target
    ):
        return target
    return url_for("pages.app_page")


def _unread_threads(queue) -> int:
    """How many conversations wait to be read, for the badge on the nav's Conversations link
    (a count over the small summary table, not over the messages)."""
    return queue.list_conversations("unread", None, 1, 0)[1]


def _waiting_statuses(queue) -> set[str]:
    """Which waiting states active jobs are in, for the banner on every page."""
    return {
        j["status"] for j in queue.list_jobs(active_only=True) if j["status"] in JobStatus.WAITING
    }
