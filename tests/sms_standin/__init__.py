"""A local stand-in for the phone gateway (SMS Gateway for Android, local-server mode).

``GatewayServer(**options)`` serves, on http://127.0.0.1:<free port>, the API in
shared/reference/smsgate-api.md, so an SMS sender written against the real phone runs on it:

- ``GET /health`` (no auth): 200 ``{"status": "pass" | "warn", "version", "releaseId", "checks"}``,
  500 with ``"status": "fail"``
- HTTP Basic auth everywhere else (``sms`` / ``secret`` unless set); a failure is a bodiless
  401 with ``WWW-Authenticate: Basic realm="Access to SMS Gateway", charset=UTF-8``
- ``POST /messages`` (and the old ``/message``; ``?skipPhoneValidation=true``): 202 + state,
  400 ``{"message"}``, 409 for an id already used
- ``GET /messages/{id}``: 200 state or a bodiless 404; states move Pending -> Processed -> Sent
  -> Delivered (Sent if ``withDeliveryReport`` is false), one step per ``step_delay`` seconds
- ``DELETE /messages/{id}``: 200 Cancelled while Pending, 400 after, 404 unknown

Faults for tests: ``refuse_connections``, ``fail_with``, ``fail_message``, ``hang``,
``lose_message``, ``stick_in_processed``; read back ``accepted()``, ``lost()``,
``request_log()``. All but ``refuse_connections`` are also ``/_standin/...`` HTTP endpoints.

Receiving (``inbox.py``): ``gw.inbox.receive(phone, text, at)`` is an SMS reaching the phone: it
is kept for ``GET /inbox`` and POSTed, signed, as ``sms:received`` to every webhook registered
with ``POST /webhooks``, retried like the app; ``PATCH /settings`` sets the signing key.
"""

from .app import GatewayServer, GatewayState, create_app

__all__ = ["GatewayServer", "GatewayState", "create_app"]
