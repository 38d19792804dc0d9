"""The floor of benchmark 3: a bare WSGI callable under the same gunicorn, answering every GET
with a fixed JSON body the size of a real /status answer. What is left of the latency here is
HTTP, gunicorn, loopback and the client: the part no change to the product can remove.
"""

from __future__ import annotations

import json

_COUNTS = {
    "pending": 61234,
    "retrying": 0,
    "sending": 1,
    "sent": 38765,
    "delivered": 0,
    "failed": 0,
    "cancelled": 0,
    "unknown": 0,
}
_STATUS = {
    "job_id": "j_0123456789abcdef",
    "name": "bench",
    "channel": "whatsapp",
    "status": "running",
    "total": 100000,
    "counts": _COUNTS,
    "progress": 0.3877,
    "eta_seconds": 123456,
    "last_error": None,
    "attachment": None,
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": "2026-01-01T00:00:01Z",
    "finished_at": None,
    "updated_at": "2026-01-01T00:10:00Z",
}
_BODIES = {"/jobs": json.dumps({"jobs": [_STATUS]}).encode()}
_DEFAULT = json.dumps(_STATUS).encode()


def app(environ, start_response):
    body = _BODIES.get(environ.get("PATH_INFO", ""), _DEFAULT)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
