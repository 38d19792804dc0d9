"""API-key authentication for every private route.

The key comes in `X-API-Key` or `Authorization: Bearer`; it is compared in constant time on
bytes (hmac.compare_digest on a str with non-ASCII characters raises, which would be a 500).
"""
from __future__ import annotations

import hashlib
import hmac

from flask import Flask, current_app, request, session

from .problems import Problem

# Endpoints anyone may reach: liveness, the sign-in page and its files.
PUBLIC_ENDPOINTS = {"session.health", "static", "pages.app_page", "pages.sign_in",
                    "pages.sign_out", "pages.index"}


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


def key_fingerprint() -> str:
    """Names the current API key without revealing it; a session remembers it at sign-in."""
    return hashlib.sha256(current_app.config["API_KEY"].encode()).hexdigest()[:16]


def session_signed_in() -> bool:
    """Signed in on the page, with the key that is still in force (a changed key signs out)."""
    return bool(session.get("signed_in")) and session.get("key") == key_fingerprint()


def require_key() -> None:
    """before_request hook: refuse private routes without the right key or a signed-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if key_matches(presented_key(), current_app.config["API_KEY"]):
        return None
    if session_signed_in() and request.endpoint is not None:
        # The /app page calls the same API with its session cookie; a cookie alone must not
        # be enough to change anything, so writes also need the page's CSRF token.
        if request.method in ("GET", "HEAD", "OPTIONS") or key_matches(
                request.headers.get("X-CSRF-Token"), session.get("csrf", "")):
            return None
        raise Problem(403, "Missing or wrong CSRF token; reload the page.")
    raise Problem(401, "Send the API key in the X-API-Key header or as Authorization: Bearer.",
                  headers={"WWW-Authenticate": 'Bearer realm="bulk-sender"'})


def register(app: Flask) -> None:
    """Guard every request of `app`."""
    app.before_request(require_key)
