"""POST /hooks/smsgate: the phone's webhook (SMS Gateway for Android), outside the API key.

The phone signs each attempt: `X-Signature` is the hex HMAC-SHA256, with the phone's signing
key, of the raw body followed by `X-Timestamp` (Unix seconds). Nothing is parsed before that
checks out, so a stranger's request costs one HMAC of at most BODY_LIMIT bytes.

The phone retries every answer outside 2xx for about two days (a 401 or 400 too), so what we
can never use is answered 2xx: a duplicate, and events we do not act on. Only requests that
are not the phone's (bad signature, malformed) get a 4xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from flask import Blueprint, current_app, request

from utils.instants import InstantError, parse_instant
from utils.replies import take_inbound

from .problems import Problem

bp = Blueprint("hooks", __name__)

# One SMS is at most 255 parts of 153 characters (~40 KB as JSON escapes go); nothing the
# phone sends comes near this, and a bigger body is refused before its signature is computed.
BODY_LIMIT = 64 * 1024
MAX_SKEW = 300  # seconds between X-Timestamp and our clock, as the app's docs advise
# Events we know and do not act on (yet): answered 2xx so the phone does not retry them.
# Delivery reports come by polling GET /messages/{id} (worker/sms), so these are not needed.
IGNORED_EVENTS = {"sms:sent", "sms:delivered", "sms:failed", "sms:cancelled", "system:ping"}
WORKER_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")


@bp.post("/hooks/smsgate")
def smsgate():
    """Take one webhook call from the phone: store an `sms:received` once, ignore the rest."""
    settings = current_app.config["SETTINGS"]
    queue = current_app.config["QUEUE"]
    body = _read_body()
    _check_signature(body, settings.sms_webhook_signing_key, queue.clock())
    event = _parse(body)
    name = event.get("event")
    if name != "sms:received":
        # An unknown event is still the phone's (a newer app, a hook added by hand): a 4xx
        # would only make it retry for two days.
        known = name in IGNORED_EVENTS
        return {"status": "ignored", "event": name, "known": known}, 200
    fields = _received_fields(event.get("payload"))
    created = take_inbound(
        queue,
        settings,
        phone=fields["phone"],
        channel="sms",
        sender=_receiving_account(event),
        text=fields["text"],
        received_at=fields["received_at"],
        provider_id=fields["provider_id"],
    )
    return {"status": "stored" if created else "duplicate", "event": name}, 200


def _read_body() -> bytes:
    """The raw body, refused with 413 above BODY_LIMIT without reading the rest."""
    if (request.content_length or 0) > BODY_LIMIT:
        raise Problem(413, f"A webhook body is at most {BODY_LIMIT // 1024} KB.")
    body = request.stream.read(BODY_LIMIT + 1)
    if len(body) > BODY_LIMIT:
        raise Problem(413, f"A webhook body is at most {BODY_LIMIT // 1024} KB.")
    return body


def _check_signature(body: bytes, key: str, now: float) -> None:
    """401 unless X-Signature is the phone's HMAC of body + X-Timestamp, and it is recent."""
    if not key:
        raise _refused(
            "SMS_WEBHOOK_SIGNING_KEY is not set, so no webhook can be trusted: set it to the "
            "phone's Settings > Webhooks > Signing Key (the SMS worker can set it on the phone)."
        )
    stamp = request.headers.get("X-Timestamp", "").strip()
    given = request.headers.get("X-Signature", "").strip().lower()
    if not stamp or not given:
        raise _refused("X-Signature and X-Timestamp are required.")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise _refused("X-Timestamp must be Unix seconds.")
    expected = hmac.new(key.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise _refused("The signature does not match: check SMS_WEBHOOK_SIGNING_KEY.")
    if abs(now - int(stamp)) > MAX_SKEW:
        raise _refused(
            f"X-Timestamp is more than {MAX_SKEW // 60} minutes off our clock: a replay, "
            "or the phone's clock is wrong."
        )


def _refused(detail: str) -> Problem:
    return Problem(401, detail)


def _parse(body: bytes) -> dict:
    try:
        event = json.loads(body)
    except ValueError:
        raise Problem(400, "The body is not JSON.") from None
    if not isinstance(event, dict):
        raise Problem(400, "The body must be a JSON object.")
    if not isinstance(event.get("event"), str):
        raise Problem(422, "The body has no event name.")
    return event


def _received_fields(payload) -> dict:
    """The sender's number, text, time and id of an `sms:received` payload, or 422."""
    if not isinstance(payload, dict):
        raise Problem(422, "sms:received needs a payload object.")
    phone = payload.get("sender") or payload.get("phoneNumber")  # phoneNumber: apps < 1.66
    text, at = payload.get("message"), payload.get("receivedAt")
    if not isinstance(phone, str) or not phone.strip():
        raise Problem(422, "payload.sender must be the number the SMS came from.")
    if not isinstance(text, str):
        raise Problem(422, "payload.message must be the text.")
    message_id = payload.get("messageId")
    return {
        "phone": phone,
        "text": text,
        "received_at": _received_at(at),
        "provider_id": message_id[:64] if isinstance(message_id, str) else None,
    }


def _received_at(value) -> float:
    """payload.receivedAt in seconds since the epoch, or 422 saying what is wrong with it."""
    try:
        return parse_instant(value)
    except InstantError as exc:
        raise Problem(422, f"payload.receivedAt {exc}.") from None


def _receiving_account(event: dict) -> str:
    """The SMS worker that registered this hook (its id rides in the URL), else the phone."""
    worker = request.args.get("worker", "")
    if WORKER_ID.fullmatch(worker):
        return worker
    device = event.get("deviceId")
    return device[:64] if isinstance(device, str) else ""
