"""The stand-in phone's receiving side: its inbox, its webhooks, its signing key.

Shaped after the app's source (capcom6/android-sms-gateway, see shared/reference/smsgate-api.md
"Receiving SMS"): ``receive()`` is an SMS reaching the phone. It goes into the inbox that
``GET /inbox`` serves, and one ``sms:received`` event per registered webhook is queued and
POSTed, signed, retried on any answer outside 2xx with the same event id and a fresh
``X-Timestamp``, up to ``retry_count`` attempts, ``retry_delay`` doubling between them.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests

EVENTS = {
    "sms:received", "sms:sent", "sms:delivered", "sms:failed", "sms:cancelled",
    "sms:data-received", "mms:received", "mms:downloaded", "system:ping", "app:started",
}  # fmt: skip
INBOX_TYPES = {"SMS", "DATA_SMS", "MMS", "MMS_DOWNLOADED"}
INBOX_OPTIONS = {  # option -> default; GatewayServer(**options) takes these too
    "webhook_retry_delay": 0.05,  # the app: 5 s, doubling
    "webhook_timeout": 5.0,  # the app: 5 s connect and socket, 30 s in all
    "time_zone": "-03:00",  # the phone's zone: times are written in it, as the app does
    "insecure_build": False,  # app-insecure.apk takes plain http to any host
}
# Gson escapes these for HTML safety; a receiver must verify the raw bytes, not a re-dump.
GSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "=": "\\u003d", "'": "\\u0027"}


class Refused(Exception):
    """A request the app answers 400 {"message": str(exc)}."""


def sign(body: bytes, key: str, timestamp: int | str) -> str:
    """X-Signature as the app computes it: hex HMAC-SHA256 of body + timestamp."""
    return hmac.new(key.encode(), body + str(timestamp).encode(), hashlib.sha256).hexdigest()


def gson_dumps(value) -> bytes:
    """JSON as the app's Gson writes it: compact, non-ASCII as is, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in GSON_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def java_time(wall_ms: int, zone: str) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` in the phone's zone (Java writes +00:00 as Z)."""
    sign_, hours, minutes = zone[0], int(zone[1:3]), int(zone[4:6])
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if sign_ == "-" else 1)
    moment = datetime.fromtimestamp(wall_ms / 1000, timezone(offset))
    text = moment.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_java_time(text: str) -> float | None:
    """``yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX`` (the app's DateTimeParser) as epoch seconds."""
    body = text[:-1] + "+00:00" if text.endswith("Z") else text
    if len(body) not in (25, 29) or body[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(body)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.timestamp()


def check_url(url: str, insecure: bool) -> None:
    """WebHooksService.replace(): https, or http only to 127.0.0.1 (any host when insecure)."""
    low = url.lower()
    https, http = low.startswith("https://") and len(url) > 8, low.startswith("http://")
    if https or (http and (insecure or urlsplit(url).hostname == "127.0.0.1")):
        return
    raise Refused("url must start with https:// or http://127.0.0.1")


class PhoneInbox:
    """Received SMS, webhooks and their delivery queue; every access holds ``self.lock``."""

    def __init__(self, device_id, **options):
        self.device_id = device_id  # a callable: the device id may change at run time
        self.lock = threading.Condition(threading.RLock())
        self._initial = {**INBOX_OPTIONS, **options}
        self._closed = False
        self._counter = itertools.count()
        self._thread = threading.Thread(target=self._deliver_forever, daemon=True, name="inbox")
        self.reset()
        self._thread.start()

    def reset(self) -> None:
        """Empty inbox, no webhooks, nothing queued, a new random signing key."""
        with self.lock:
            self.options = dict(self._initial)
            self.messages: list[dict] = []
            self.hooks: dict[str, dict] = {}
            self.pending: list[tuple[float, int, dict]] = []
            self.attempts: list[dict] = []
            self._busy = getattr(self, "_busy", 0)  # a delivery in flight survives a reset
            self.signing_key = secrets.token_urlsafe(6)[:8]
            self.settings = {"internet_required": True, "retry_count": 15}
            self.lock.notify_all()

    def close(self) -> None:
        """Stop delivering (the thread ends at its next wake-up)."""
        with self.lock:
            self._closed = True
            self.lock.notify_all()

    # --- the phone receives ------------------------------------------------------------
    def receive(self, phone: str, text: str, at: float | None = None) -> dict:
        """An SMS from ``phone`` reaches the phone at ``at`` (whole seconds, as the SMSC's)."""
        wall_ms = int(time.time() if at is None else at) * 1000
        digest = hashlib.sha256(f"{phone}\x1f{wall_ms}\x1f{text}".encode()).digest()
        number = int.from_bytes(digest[:4], "big", signed=True)
        zone = self.options["time_zone"]
        with self.lock:
            entry = {
                "id": f"text:{number}",
                "type": "SMS",
                "sender": phone,
                "contentPreview": text,
                "createdAt": java_time(wall_ms, zone),
                "attachments": [],
            }
            self.messages.append({**entry, "_ms": wall_ms})
            payload = {
                "message": text,
                "receivedAt": entry["createdAt"],
                "messageId": format(number & 0xFFFFFFFF, "x"),
                "sender": phone,
                "simNumber": 1,
                "phoneNumber": phone,
            }
            events = [self._emit(hook, "sms:received", payload) for hook in self._hooks_for()]
        return {**entry, "events": events}

    def _hooks_for(self, event: str = "sms:received") -> list[dict]:
        return [h for h in self.hooks.values() if h["event"] == event]

    def _emit(self, hook: dict, event: str, payload: dict) -> str:
        envelope = {
            "id": secrets.token_urlsafe(16)[:21],
            "webhookId": hook["id"],
            "event": event,
            "deviceId": self.device_id(),
            "payload": payload,
        }
        item = {"url": hook["url"], "body": gson_dumps(envelope), "id": envelope["id"], "n": 0}
        heapq.heappush(self.pending, (time.monotonic(), next(self._counter), item))
        self.lock.notify_all()
        return envelope["id"]

    # --- delivery ------------------------------------------------------------------------
    def _deliver_forever(self) -> None:
        while True:
            with self.lock:
                while not self._closed and not self._due():
                    wait = self.pending[0][0] - time.monotonic() if self.pending else None
                    self.lock.wait(wait)
                if self._closed:
                    return
                _, _, item = heapq.heappop(self.pending)
                self._busy += 1
                key, timeout = self.signing_key, float(self.options["webhook_timeout"])
            status = _post(item, key, timeout)
            self._settle(item, status)

    def _due(self) -> bool:
        return bool(self.pending) and self.pending[0][0] <= time.monotonic()

    def _settle(self, item: dict, status: int | str) -> None:
        with self.lock:
            self._busy -= 1
            item["n"] += 1
            self.attempts.append({"event": item["id"], "url": item["url"], "status": status})
            ok = isinstance(status, int) and 200 <= status < 300
            if ok or item["n"] >= int(self.settings["retry_count"]):
                return
            delay = float(self.options["webhook_retry_delay"]) * 2 ** (item["n"] - 1)
            heapq.heappush(self.pending, (time.monotonic() + delay, next(self._counter), item))

    def idle(self) -> bool:
        """Whether every queued webhook has been delivered or given up on."""
        with self.lock:
            return not self.pending and not self._busy

    # --- the API ------------------------------------------------------------------------
    def list_inbox(self, args) -> tuple[int, list[dict]]:
        """GET /inbox (InboxRoutes.kt): (total, page, newest first), or Refused."""
        kind = args.get("type") or None
        if kind is not None and kind not in INBOX_TYPES:
            raise Refused("Invalid type")
        if args.get("includeAttachments") not in (None, "true", "false"):
            raise Refused("includeAttachments must be true or false")
        limit, offset = _int_or(args.get("limit"), 50), _int_or(args.get("offset"), 0)
        if not 1 <= limit <= 500:
            raise Refused("limit must be between 1 and 500")
        if offset < 0:
            raise Refused("offset must be >= 0")
        low, high = 0.0, time.time()
        for name in ("from", "to"):
            if args.get(name) is not None:
                value = parse_java_time(args[name])
                if value is None:
                    raise Refused(f"Invalid {name} datetime")
                low, high = (value, high) if name == "from" else (low, value)
        if args.get("deviceId") not in (None, self.device_id()):
            raise Refused("Invalid device ID")
        if low > high:
            raise Refused("Start date cannot be after end date")
        with self.lock:
            found = [
                m
                for m in self.messages
                if (kind in (None, "SMS")) and low * 1000 <= m["_ms"] <= high * 1000
            ]
        found.sort(key=lambda m: (m["_ms"], m["id"]), reverse=True)
        page = [{k: v for k, v in m.items() if k != "_ms"} for m in found[offset : offset + limit]]
        return len(found), page

    def register(self, body) -> dict:
        """POST /webhooks: upsert by id (a new id when none), URL rule and event checked."""
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise Refused("Failed to convert request body to class WebHookDTO")
        check_url(body["url"], bool(self.options["insecure_build"]))
        if body.get("event") not in EVENTS:
            raise Refused("Unsupported event")
        if body.get("deviceId") not in (None, self.device_id()):
            raise Refused("Device ID mismatch")
        hook_id = body.get("id") if isinstance(body.get("id"), str) else None
        hook = {
            "id": hook_id or secrets.token_urlsafe(16)[:21],
            "url": body["url"],
            "event": body["event"],
            "source": "Local",
        }
        with self.lock:
            self.hooks[hook["id"]] = hook
        return hook

    def list_hooks(self) -> list[dict]:
        """GET /webhooks."""
        with self.lock:
            return [dict(h) for h in self.hooks.values()]

    def delete_hook(self, hook_id: str) -> None:
        """DELETE /webhooks/{id}: 204 whether or not it existed."""
        with self.lock:
            self.hooks.pop(hook_id, None)

    def patch_settings(self, body) -> None:
        """PATCH /settings {"webhooks": {...}}: signing_key, retry_count, internet_required."""
        if not isinstance(body, dict):
            raise Refused("Invalid request: not an object")
        hooks = body.get("webhooks")
        if hooks is None:
            return
        if not isinstance(hooks, dict):
            raise Refused("Invalid request: Failed to import webhooks")
        with self.lock:
            if "retry_count" in hooks:
                value = hooks["retry_count"]
                count = 15 if value is None else int(float(value))
                if count < 1:
                    raise Refused(
                        "Invalid request: Failed to import webhooks: Retry count must be >= 1"
                    )
                self.settings["retry_count"] = count
            if "internet_required" in hooks:
                self.settings["internet_required"] = (
                    str(hooks["internet_required"]).lower() != "false"
                )
            if "signing_key" in hooks:
                key = hooks["signing_key"]
                self.signing_key = str(key) if key is not None else secrets.token_urlsafe(6)[:8]

    def settings_view(self) -> dict:
        """GET /settings (the signing key is never exported)."""
        with self.lock:
            return {"webhooks": dict(self.settings)}


def _post(item: dict, key: str, timeout: float) -> int | str:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=UTF-8",
        "User-Agent": "me.capcom.smsgateway/1.67.0",
        "X-Timestamp": stamp,
        "X-Signature": sign(item["body"], key, stamp),
    }
    try:
        response = requests.post(item["url"], data=item["body"], headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return type(exc).__name__
    return response.status_code


def _int_or(value, default: int) -> int:
    """Kotlin's ``toIntOrNull() ?: default``: anything not an int is the default."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
