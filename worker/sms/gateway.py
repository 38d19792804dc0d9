"""A small client for the SMSGate REST API of *SMS Gateway for Android* (local server mode).

Each HTTP outcome becomes one exception class, so the SMS transport can decide what it means
for the message. Tolerant of older apps (`/message` path, `message` body field) and of
fields and states it does not know. Every call has a timeout.
"""

from __future__ import annotations

import requests

FINAL_STATES = {"Sent", "Delivered", "Failed", "Cancelled"}


class GatewayError(Exception):
    """Base of everything the gateway client raises."""


class GatewayUnreachable(GatewayError):
    """Connection refused, timeout, 5xx or an answer that is not the API.

    The phone's problem, not the message's.
    """


class GatewayAuthError(GatewayError):
    """401/403: wrong username or password."""


class GatewayRejected(GatewayError):
    """400: the gateway refuses this message; the text says why."""


class GatewayConflict(GatewayError):
    """409: a message with this id is already on the phone."""


class SmsGateClient:
    """Talks to one phone. `timeout` is (connect, read) seconds for every request."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        timeout: tuple[float, float] = (5.0, 15.0),
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.auth = (username, password)
        self.messages_path = "/messages"

    def health(self) -> dict:
        """The /health body, whatever the code: {"status": "pass" | "warn" | "fail", "checks"}."""
        response = self._request("GET", "/health", auth=False)
        body = _json(response)
        if not isinstance(body, dict) or "status" not in body:
            raise GatewayUnreachable(f"/health answered {response.status_code} without a status")
        return body

    def send(self, message_id: str, phone: str, text: str, ttl: int) -> dict:
        """POST one message for one recipient; its state. GatewayConflict when the id is taken."""
        body = {
            "id": message_id,
            "textMessage": {"text": text},
            "phoneNumbers": [phone],
            "withDeliveryReport": True,
            "ttl": ttl,
        }
        response = self._request(
            "POST", self.messages_path, json=body, params={"skipPhoneValidation": "true"}
        )
        if response.status_code == 404 and self.messages_path == "/messages":
            self.messages_path = "/message"  # an app older than 1.28
            return self.send(message_id, phone, text, ttl)
        if response.status_code == 400 and "textMessage" in body and _asks_for_message(response):
            legacy = {k: v for k, v in body.items() if k != "textMessage"} | {"message": text}
            response = self._request(
                "POST", self.messages_path, json=legacy, params={"skipPhoneValidation": "true"}
            )
        return self._state(response, accept=(200, 201, 202))

    def get(self, message_id: str) -> dict | None:
        """The message's state, or None when the phone does not know the id."""
        response = self._request("GET", f"{self.messages_path}/{message_id}")
        if response.status_code == 404:
            return None
        return self._state(response, accept=(200,))

    def cancel(self, message_id: str) -> bool:
        """Cancel a message still `Pending` on the phone; False when it is past that."""
        response = self._request("DELETE", f"{self.messages_path}/{message_id}")
        if response.status_code in (400, 404, 405):
            return False
        self._state(response, accept=(200, 202, 204))
        return True

    def inbox(self, since: str | None, limit: int, offset: int) -> tuple[int, list]:
        """One page of GET /inbox (app 1.59+), newest first: (X-Total-Count, entries).

        GatewayRejected when the phone refuses the query or has no inbox (an older app: 404).
        """
        params = {"type": "SMS", "limit": str(limit), "offset": str(offset)}
        if since is not None:
            params["from"] = since
        response = self._request("GET", "/inbox", params=params)
        if response.status_code in (400, 404, 405):
            raise GatewayRejected(f"GET /inbox answered {response.status_code}: {_text(response)}")
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, list):
            raise GatewayUnreachable(f"GET /inbox answered {response.status_code} without a list")
        try:
            total = int(response.headers.get("X-Total-Count", len(body)))
        except ValueError:
            total = len(body)
        return total, body

    def register_webhook(self, hook_id: str, url: str, event: str) -> dict:
        """POST /webhooks with our fixed id (the same id replaces, no id would add another)."""
        body = {"id": hook_id, "url": url, "event": event}
        response = self._request("POST", "/webhooks", json=body)
        if response.status_code not in (200, 201):
            raise GatewayRejected(_text(response))
        return _json(response) or {}

    def set_webhook_settings(self, values: dict) -> None:
        """PATCH /settings {"webhooks": values}; GatewayRejected when the phone refuses it."""
        response = self._request("PATCH", "/settings", json={"webhooks": values})
        if response.status_code not in (200, 204):
            raise GatewayRejected(
                f"PATCH /settings answered {response.status_code}: {_text(response)}"
            )

    def _request(self, method: str, path: str, auth: bool = True, **kwargs) -> requests.Response:
        try:
            response = self.http.request(
                method,
                self.base_url + path,
                timeout=self.timeout,
                auth=None if auth else _NoAuth(),
                **kwargs,
            )
        except requests.RequestException as exc:
            raise GatewayUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise GatewayAuthError(
                f"the gateway refused the username or password ({response.status_code})"
            )
        if response.status_code >= 500 and path != "/health":
            raise GatewayUnreachable(f"the gateway answered {response.status_code}")
        return response

    def _state(self, response: requests.Response, accept) -> dict:
        if response.status_code == 409:
            raise GatewayConflict(_text(response))
        if response.status_code == 400:
            raise GatewayRejected(_text(response))
        body = _json(response)
        if response.status_code not in accept or not isinstance(body, dict) or "state" not in body:
            raise GatewayUnreachable(
                f"unexpected answer {response.status_code}: {response.text[:200]!r}"
            )
        return body


class _NoAuth(requests.auth.AuthBase):
    """/health is public: send it without credentials."""

    def __call__(self, request):
        return request


def recipient_error(state: dict) -> str:
    """The failure reason of a `Failed` message, e.g. RESULT_ERROR_NO_SERVICE."""
    for recipient in state.get("recipients") or []:
        error = (recipient or {}).get("error")
        if error:
            return str(error).replace("Send result:", "").strip() or "unknown"
    return "unknown"


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _text(response: requests.Response) -> str:
    body = _json(response)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:300] or f"HTTP {response.status_code}"


def _asks_for_message(response: requests.Response) -> bool:
    text = _text(response).lower()
    return "message" in text and "textmessage" not in text and "required" in text
