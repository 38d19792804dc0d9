"""The HTTP API: `python app.py` serves it; `create_app()` builds it for gunicorn and tests.

The API is stateless: everything it knows lives in the SQLite queue, so it can be restarted
at any time while workers go on sending.
"""

from __future__ import annotations

import hashlib
import hmac
import sys

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from api import (
    auth,
    conversations,
    hooks,
    jobs,
    openapi,
    pages,
    preview,
    problems,
    send,
    session,
    suppressions,
)
from config import ConfigError, Settings
from message_queue import Queue, SendingRules
from utils.logs import setup_logging

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


class InContractOrder(DefaultJSONProvider):
    """JSON answers keep their fields in the order the contract lists them."""

    sort_keys = False


def derived_secret(api_key: str) -> str:
    """A session-signing key when SECRET_KEY is unset: the same in every gunicorn worker
    (a random one per process would sign users out at random), and new when the API key is."""
    return hmac.new(api_key.encode(), b"bulk-sender session signing", hashlib.sha256).hexdigest()


def create_app(settings: Settings | None = None, queue: Queue | None = None) -> Flask:
    """Build the Flask app on `settings` (read from the environment when not given)."""
    settings = settings or Settings.from_env()
    settings.require_api_key()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        QUEUE=queue or Queue(settings.database, rules=SendingRules.from_settings(settings)),
        API_KEY=settings.api_key,
        SECRET_KEY=settings.secret_key or derived_secret(settings.api_key),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # The session itself ends on the server (api/auth.py); a signed cookie older than a
        # session may live is refused before the database is even asked.
        PERMANENT_SESSION_LIFETIME=int(settings.session_max_age),
    )
    app.json = InContractOrder(app)
    problems.register(app)
    auth.register(app)
    app.url_map.converters["phone"] = suppressions.PhoneConverter
    app.register_blueprint(hooks.bp)  # the phone's webhook: signed, not keyed
    app.register_blueprint(conversations.bp)
    app.register_blueprint(suppressions.bp)
    for blueprint in (send.bp, preview.bp, jobs.bp, session.bp, pages.bp, openapi.bp):
        app.register_blueprint(blueprint)

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Every answer but the page's own files names contacts, jobs or keys: no cache (a
        # proxy's, or the browser's back button on a shared computer) may keep one.
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def main() -> int:
    """Serve the API with a threaded server on HOST:PORT (gunicorn is for systemd)."""
    try:
        settings = Settings.from_env()
        setup_logging(settings.log_level, settings.log_format)
        app = create_app(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app.logger.info("API listening on http://%s:%s", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
