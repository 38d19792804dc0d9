"""Errors as `application/problem+json` (RFC 9457), for every failure the API answers."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from message_queue import (
    DatabaseUnavailable,
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    NothingToResend,
)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a view to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list | None = None,
        title: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}


def invalid(field: str, message: str, status: int = 422) -> Problem:
    """A validation problem about one request field."""
    return Problem(status, message, errors=[{"field": field, "message": message}])


def problem_response(p: Problem):
    """The Flask response for a Problem."""
    body = {"type": "about:blank", "title": p.title, "status": p.status, "detail": p.detail}
    if p.errors is not None:
        body["errors"] = p.errors
    response = jsonify(body)
    response.status_code = p.status
    response.mimetype = "application/problem+json"
    response.headers.update(p.headers)
    return response


def register(app: Flask) -> None:
    """Turn every error the app can meet into problem+json."""
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(
        JobNotFound, lambda e: problem_response(Problem(404, f"No job with id {e.args[0]!r}."))
    )
    app.register_error_handler(
        IllegalTransition, lambda e: problem_response(Problem(409, str(e).capitalize() + "."))
    )
    app.register_error_handler(
        NothingToResend, lambda e: problem_response(Problem(409, str(e).capitalize() + "."))
    )
    app.register_error_handler(
        IdempotencyConflict,
        lambda e: problem_response(
            Problem(
                422,
                "This Idempotency-Key was already used for a different request.",
                errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
            )
        ),
    )
    app.register_error_handler(
        DatabaseUnavailable,
        lambda e: problem_response(Problem(503, "The database is not available right now.")),
    )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        detail = exc.description or TITLES.get(exc.code or 500, "Error")
        if exc.code == 413:
            # The setting as written: a cap under 1 MB must not read "0 MB".
            detail = (
                f"The request is larger than the limit of "
                f"{app.config['SETTINGS'].max_upload_mb:g} MB (MAX_UPLOAD_MB)."
            )
        # Keep what the exception says in headers (Allow on a 405, Retry-After, ...).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return problem_response(Problem(exc.code or 500, detail, headers=headers))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return problem_response(Problem(500, "Something went wrong on our side; it was logged."))
