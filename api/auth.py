"""Who may call the API: the key in a header, or a signed-in /app page session.

The key comes in `X-API-Key` or `Authorization: Bearer`; it is compared in constant time on
bytes (hmac.compare_digest on a str with non-ASCII characters raises, which would be a 500).
Wrong keys are throttled per client address (api/limiter.py), in a header as in the form.

A page session lives in the queue's database; the browser's cookie (Flask's, signed with
SECRET_KEY, HttpOnly, SameSite=Strict) carries only a random id whose sha256 names the row.
Signing out deletes the row, so a kept copy of the cookie is worth nothing afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, current_app, g, request, session

from .limiter import WrongKeyLimiter
from .problems import Problem

# Endpoints anyone may reach: liveness, the sign-in page and its files.
PUBLIC_ENDPOINTS = {
    "session.health",
    "static",
    "pages.app_page",
    "pages.sign_in",
    "pages.sign_out",
    "pages.index",
    "hooks.smsgate",  # the phone cannot send our key: it signs each call instead
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSION_ID_MAX = 64  # token_urlsafe(32) is 43 characters: anything longer is not ours
THROTTLED = (
    "Too many wrong keys from your address. Wait {wait} seconds, then try again: "
    "until then every key from it is refused, even the right key."
)


def key_matches(given: str | None, expected: str) -> bool:
    """True when `given` is the API key; constant time, never raises."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def presented_key() -> str | None:
    """The key the request carries in a header, if any."""
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_wait() -> int:
    """Seconds this client address must wait before any key it presents is looked at."""
    return _limiter().retry_after(_address())


def try_key(key: str) -> bool:
    """True when `key` is the API key; a wrong one counts against this client address."""
    if key_matches(key, current_app.config["API_KEY"]):
        return True
    if key:  # an empty form field guesses nothing
        _limiter().failed(_address(), key)
    return False


def key_mac() -> str:
    """The API key in force, keyed by SECRET_KEY: a session stores this, so a new key ends
    every session while neither the cookie nor the database says anything about the key."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret if isinstance(secret, bytes) else secret.encode()
    return hmac.new(
        secret, b"api key " + current_app.config["API_KEY"].encode(), hashlib.sha256
    ).hexdigest()


def page_session() -> dict | None:
    """This request's live /app session (its row: csrf, created_at, ...), or None."""
    if "page_session" not in g:
        g.page_session = _look_up_session()
    return g.page_session


def start_page_session() -> None:
    """Sign this browser in: a new server-side session, and a cookie holding its random id."""
    end_page_session()  # signing in again replaces the session, never adds a second one
    queue, settings = current_app.config["QUEUE"], current_app.config["SETTINGS"]
    # Sign-ins are rare, so this is where ended sessions are swept away.
    queue.purge_expired_sessions(key_mac(), settings.session_idle_timeout, settings.session_max_age)
    sid = secrets.token_urlsafe(32)
    queue.create_session(_hash(sid), key_mac(), secrets.token_urlsafe(32))
    session.clear()  # nothing from before sign-in (its form token) carries over
    session["sid"] = sid
    g.pop("page_session", None)


def end_page_session() -> None:
    """Sign this browser out: the session's row goes, so no copy of the cookie works again."""
    found = page_session()
    if found is not None:
        current_app.config["QUEUE"].end_session(found["id_hash"])
    session.clear()
    g.page_session = None


def require_key() -> None:
    """before_request hook: refuse private routes without the right key or a signed-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    key = presented_key()
    if key is not None:
        wait = key_wait()
        if wait:
            raise Problem(429, THROTTLED.format(wait=wait), headers={"Retry-After": str(wait)})
        if try_key(key):
            return None
        raise _unauthorized()
    found = page_session() if request.endpoint is not None else None
    if found is not None:
        # The /app page calls the same API with its session cookie; a cookie alone must not
        # be enough to change anything, so writes also need the session's CSRF token.
        if request.method in SAFE_METHODS or key_matches(
            request.headers.get("X-CSRF-Token"), found["csrf"]
        ):
            return None
        raise Problem(403, "Missing or wrong CSRF token; reload the page.")
    raise _unauthorized()


def register(app: Flask) -> None:
    """Guard every request of `app`, with one wrong-key count for the header and the form."""
    app.extensions["key_limiter"] = WrongKeyLimiter()
    app.before_request(require_key)


def _look_up_session() -> dict | None:
    sid = session.get("sid")
    if sid is None:
        return None
    found = None
    if isinstance(sid, str) and 0 < len(sid) <= SESSION_ID_MAX:
        settings = current_app.config["SETTINGS"]
        found = current_app.config["QUEUE"].touch_session(
            _hash(sid), key_mac(), settings.session_idle_timeout, settings.session_max_age
        )
    if found is None:
        session.pop("sid", None)  # ended: the browser may forget it too
    return found


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _address() -> str:
    return request.remote_addr or "unknown"


def _limiter() -> WrongKeyLimiter:
    return current_app.extensions["key_limiter"]


def _unauthorized() -> Problem:
    return Problem(
        401,
        "Send the API key in the X-API-Key header or as Authorization: Bearer.",
        headers={"WWW-Authenticate": 'Bearer realm="bulk-sender"'},
    )
