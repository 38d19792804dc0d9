"""The /app page: sign in once with the API key, then a browser UI over the same JSON API.

Pages are rendered here (Jinja, autoescaped); the scripts in static/ call the API with the
session cookie and the session's CSRF token in `X-CSRF-Token` (see api/auth.py). Every view
of the page is the one endpoint `app_page`, so that it is public: signed out, it shows the
sign-in form instead of answering 401 JSON to a person.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import deque

from flask import (Blueprint, current_app, redirect, render_template, request, session,
                   url_for)

from message_queue import JOB_CHANNELS, JobNotFound, JobStatus, MessageStatus
from message_queue.states import USER_MOVES

from .auth import key_fingerprint, key_matches, session_signed_in
from .preview import pacing
from .problems import Problem
from .views import status_object

bp = Blueprint("pages", __name__)
SIGN_IN_LIMIT = 5  # failed tries per client address...
SIGN_IN_WINDOW = 60.0  # ...in this many seconds
CHANNEL_LABELS = {"whatsapp": "WhatsApp", "sms": "SMS", "whatsapp_then_sms": "WhatsApp, then SMS"}


class SignInLimiter:
    """At most `limit` failed sign-ins per client address in a sliding `window` of seconds.

    The count lives in this process's memory: a restart forgets it, and each gunicorn worker
    process counts for itself (so the real limit is `limit` x workers). That is enough to make
    guessing a 32-character key hopeless; a shared store would add a dependency for nothing.
    The address is the TCP peer: behind a reverse proxy every client shares the proxy's.
    """

    MAX_ADDRESSES = 10_000  # beyond this, forget the stalest, so memory stays bounded

    def __init__(self, limit: int = SIGN_IN_LIMIT, window: float = SIGN_IN_WINDOW,
                 clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        with self._lock:
            tries = self._recent(address)
            if len(tries) < self.limit:
                return 0
            return max(1, int(tries[0] + self.window - self.clock() + 0.999))

    def failed(self, address: str) -> None:
        """Count one wrong key from `address`."""
        with self._lock:
            self._recent(address).append(self.clock())
            if len(self._failures) > self.MAX_ADDRESSES:
                stalest = min(self._failures, key=lambda a: self._failures[a][-1])
                del self._failures[stalest]

    def _recent(self, address: str) -> deque:
        tries = self._failures.setdefault(address, deque())
        while tries and tries[0] <= self.clock() - self.window:
            tries.popleft()
        return tries


@bp.record_once
def _install_limiter(state) -> None:
    state.app.extensions["sign_in_limiter"] = SignInLimiter()


@bp.get("/")
def index():
    """The root is the page."""
    return redirect(url_for("pages.app_page"))


# Decorators apply bottom-up: "/app" is the first rule, the one url_for builds by default.
@bp.get("/app/jobs/<job_id>", defaults={"view": "job"})
@bp.get("/app/new", defaults={"view": "new", "job_id": None})
@bp.get("/app", defaults={"view": "campaigns", "job_id": None})
def app_page(view: str, job_id: str | None):
    """Campaigns, new campaign or one campaign's detail; the sign-in form when signed out."""
    if not session_signed_in():
        return _sign_in_form(next_url=request.path)
    queue = current_app.config["QUEUE"]
    settings = current_app.config["SETTINGS"]
    context = {"view": view, "waiting": _waiting_statuses(queue)}
    if view == "job":
        try:
            row = queue.get_job(job_id)
        except JobNotFound:
            return render_template("not_found.html", job_id=job_id, **context), 404
        context.update(job=status_object(row, settings, now=time.time()),
                       template=row["template"])
    elif view == "new":
        context.update(pacing={c: pacing(settings, c) for c in JOB_CHANNELS},
                       default_country=settings.default_country)
    return render_template(f"{view}.html", **context)


@bp.post("/app/sign-in")
def sign_in():
    """Check the API key once; the browser then holds a signed session cookie."""
    next_url = _local_next(request.form.get("next"))
    if not key_matches(request.form.get("csrf"), session.get("csrf", "")):
        return _refuse(400, "This form was open too long or cookies are blocked: try again.",
                       next_url)
    limiter: SignInLimiter = current_app.extensions["sign_in_limiter"]
    address = request.remote_addr or "unknown"
    wait = limiter.retry_after(address)
    if wait:
        return _refuse(429, f"Too many wrong keys from your address. Wait {wait} seconds, "
                            "then try again.", next_url, {"Retry-After": str(wait)})
    if not key_matches(request.form.get("api_key", "").strip(), current_app.config["API_KEY"]):
        limiter.failed(address)
        return _refuse(401, "That is not the API key. It is the API_KEY line in the .env file "
                            "next to app.py.", next_url,
                       {"WWW-Authenticate": 'Bearer realm="bulk-sender"'})
    session.clear()  # a fresh session and CSRF token: nothing from before sign-in carries over
    session["signed_in"] = True
    session["key"] = key_fingerprint()
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(next_url, code=303)


@bp.post("/app/sign-out")
def sign_out():
    """Forget the session (the form carries the CSRF token, so no other site can do it)."""
    token = request.form.get("csrf") or request.headers.get("X-CSRF-Token")
    if session.get("signed_in") and not key_matches(token, session.get("csrf", "")):
        raise Problem(403, "Missing or wrong CSRF token; reload the page.")
    session.clear()
    return redirect(url_for("pages.app_page"), code=303)


@bp.after_request
def _no_store(response):
    # Pages carry the CSRF token and campaign names: no shared or back-button cache keeps them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def _page_context() -> dict:
    """What every template may use."""
    return {"csrf_token": _csrf_token, "channel_labels": CHANNEL_LABELS,
            "user_moves": USER_MOVES, "message_statuses": MessageStatus.ALL,
            "resendable": MessageStatus.RESENDABLE,
            "waiting_statuses": JobStatus.WAITING}


def _csrf_token() -> str:
    """The session's CSRF token, made on first use (the sign-in form needs one too)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _sign_in_form(next_url: str = "/app", error: str | None = None, status: int = 200,
                  headers: dict | None = None):
    return render_template("sign_in.html", error=error, next_url=_local_next(next_url)), \
        status, headers or {}


def _refuse(status: int, message: str, next_url: str, headers: dict | None = None):
    """A refused sign-in: the form again with the reason, or problem+json for a script."""
    # Browsers ask for text/html by name; curl (*/*) and scripts get problem+json.
    if any(kind == "text/html" for kind, _ in request.accept_mimetypes):
        return _sign_in_form(next_url, message, status, headers)
    raise Problem(status, message, headers=headers)


def _local_next(target: str | None) -> str:
    """Only a path of this page may follow sign-in (no open redirect to another site)."""
    if target and target.startswith("/app") and "//" not in target and "\\" not in target:
        return target
    return url_for("pages.app_page")


def _waiting_statuses(queue) -> set[str]:
    """Which waiting states active jobs are in, for the banner on every page."""
    return {j["status"] for j in queue.list_jobs(active_only=True)
            if j["status"] in JobStatus.WAITING}
