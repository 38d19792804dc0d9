"""The SMS transport: an Android phone running SMS Gateway for Android, behind the small interface.

Our id is the gateway's id (`<job>-<message>-<attempt>`): a POST that timed out is repeated
with the same id, and 409 means the phone already has it, so it is never sent twice. After a
crash the row left `sending` is simply looked up on the phone by that id.
"""

from __future__ import annotations

import logging
import threading
import time

from message_queue.messages import ClaimedMessage

from .. import transport as t
from ..errors import (
    ConfigurationError,
    GatewayDownError,
    PermanentSendError,
    RetryableSendError,
    TransportBroken,
    UncertainSendError,
)
from .gateway import (
    FINAL_STATES,
    GatewayAuthError,
    GatewayConflict,
    GatewayError,
    GatewayRejected,
    GatewayUnreachable,
    SmsGateClient,
    recipient_error,
)
from .inbound import InboxSweeper

log = logging.getLogger("worker.sms")

# Failures the phone or network may get over by itself; the rest are final.
RETRYABLE_REASONS = {
    "RESULT_ERROR_LIMIT_EXCEEDED",
    "RESULT_ERROR_GENERIC_FAILURE",
    "RESULT_ERROR_NO_SERVICE",
    "RESULT_ERROR_RADIO_OFF",
}
POST_TRIES = 3  # same id each time: a timed-out POST may have reached the phone
FOLLOW_POLL_EVERY = 0.3  # seconds between two questions about one message in flight
# Unanswered questions in a row after which the phone counts as gone while a message is in
# flight: one may be a Wi-Fi blip, two (each up to the connect timeout) are an outage.
FOLLOW_MISSES = 2


def gateway_id(message: ClaimedMessage) -> str:
    """The id this attempt of this message carries on the phone."""
    return f"{message['job_id']}-{message['id']}-{message['attempts']}"


class SmsTransport:
    """Sends SMS through the phone's local REST server; the phone reports deliveries."""

    channel = "sms"
    traits = t.WAITS_FOR_GATEWAY

    def __init__(
        self,
        settings,
        abort: threading.Event | None = None,
        client: SmsGateClient | None = None,
        clock=time.monotonic,
    ):
        self.settings, self.clock = settings, clock
        self.abort = abort or threading.Event()
        timeout = settings.sms_gateway_timeout
        self.client = client or SmsGateClient(
            settings.sms_gateway_url,
            settings.sms_gateway_username,
            settings.sms_gateway_password,
            timeout=(min(5.0, timeout), timeout),
        )
        self.refused: str | None = None
        self.checked_auth = False
        self.inbox = InboxSweeper(self.client, settings)
        self.up = False

    def check_session(self) -> t.SessionState:
        """Up when /health answers and our credentials are accepted."""
        state = self._check_session()
        if state.state == t.LOGGED_IN and not self.up:
            self.inbox.connected()  # a (re)connect: register the webhook again and catch up
        self.up = state.state == t.LOGGED_IN
        return state

    @property
    def inbound_problem(self) -> str | None:
        """Why replies do not reach us by webhook (or the inbox cannot be read); None: fine."""
        return self.inbox.problem()

    @property
    def wants_since(self) -> bool:
        """Whether the next poll_inbound is a catch-up that uses `since` (else it is ignored)."""
        return self.inbox.fresh

    def poll_inbound(
        self, since: float | None = None, seen=None, stop: threading.Event | None = None
    ) -> list[t.Inbound]:
        """Replies on the phone not handed on before; after a (re)connect, a catch-up.

        `since`: when the newest stored SMS reply was received (the catch-up starts there,
        within a week), None for the last 24 hours. Reads only; gives up at the first error
        or after one gateway timeout, so a send never waits longer than that, and ends after
        the page it is reading once `stop` is set. `seen` is not asked: a copy handed on twice
        is stored once anyway (message_queue/inbound.py).
        """

        def stopping() -> bool:
            return self.abort.is_set() or (stop is not None and stop.is_set())

        if stopping():
            return []
        deadline = time.monotonic() + self.settings.sms_gateway_timeout
        return self.inbox.poll(since, deadline, stopping)

    def _check_session(self) -> t.SessionState:
        try:
            health = self.client.health()
            if not self.checked_auth or self.refused:
                self.client.get("auth-check")  # 404 when the password is right, 401 when not
                self.checked_auth, self.refused = True, None
        except GatewayAuthError as exc:
            self.refused = f"{exc}: fix SMS_GATEWAY_USERNAME / SMS_GATEWAY_PASSWORD"
            return t.SessionState(t.REFUSED, self.refused)
        except GatewayUnreachable as exc:
            return t.SessionState(t.UNAVAILABLE, f"phone unreachable: {exc}")
        failing = [
            name
            for name, check in (health.get("checks") or {}).items()
            if isinstance(check, dict) and check.get("status") == "fail"
        ]
        # A phone without internet still sends SMS: only non-connection failures stop us.
        blocking = [name for name in failing if not name.startswith("connection")]
        if health.get("status") == "fail" and (blocking or not failing):
            return t.SessionState(
                t.UNAVAILABLE, "gateway health fails: " + (", ".join(blocking) or "no details")
            )
        return t.SessionState(t.LOGGED_IN)

    def send(self, message: ClaimedMessage) -> t.SendResult:
        """Hand the message to the phone and follow it until Sent, Delivered or Failed."""
        gid = gateway_id(message)
        state = self._post(gid, message)
        try:
            return self._outcome(self._follow(gid, state))
        except GatewayError as exc:
            # The phone has the message and went away (or refused us) while we followed or
            # tried to cancel it: whether it goes out is not known, so verify, never resend.
            raise UncertainSendError(f"lost track of it on the phone: {exc}") from exc

    def verify(self, message: ClaimedMessage) -> str:
        """Ask the phone about a message a crash left `sending`."""
        gid = gateway_id(message)
        try:
            state = self.client.get(gid)
            if state is None:
                return "not_sent"
            # A Pending message is on its way: follow it like a fresh send. Cancelling it at
            # once would burn its id, so the resend would meet 409 Cancelled and cost an attempt.
            state = self._follow(gid, state)
            if state.get("state") == "Pending" and self.client.cancel(gid):
                return "not_sent"
        except (GatewayUnreachable, TransportBroken) as exc:
            raise GatewayDownError(str(exc)) from exc
        except GatewayAuthError as exc:
            raise ConfigurationError(str(exc)) from exc
        name = state.get("state")
        if name in ("Sent", "Delivered"):
            return "sent"
        if name in ("Failed", "Cancelled"):
            return "not_sent"
        return "unknown"

    @property
    def delivery_window(self) -> float:
        """Seconds after sending during which a delivery report is still looked for."""
        return float(self.settings.sms_ttl)

    def tracking_id(self, message: ClaimedMessage) -> str:
        """The id the phone knows this attempt of `message` by, as `send` returns it."""
        return gateway_id(message)

    def poll_deliveries(self, rows: list[dict]) -> list[int]:
        """Ids of `rows` (sent earlier) that the phone now reports Delivered.

        Stops at the first sign the phone is away or refuses us: an idle worker must never
        hang on delivery reports, and the next session check says what is wrong.
        """
        delivered = []
        for row in rows:
            if self.abort.is_set():
                break
            try:
                state = self.client.get(row["provider_id"])
            except GatewayError:
                break
            if state is not None and state.get("state") == "Delivered":
                delivered.append(row["id"])
        return delivered

    def close(self) -> None:
        """Nothing to hold open between requests but the HTTP session."""
        self.client.http.close()

    def _post(self, gid: str, message: ClaimedMessage) -> dict:
        last: Exception | None = None
        for _ in range(POST_TRIES):
            try:
                return self.client.send(
                    gid, message["phone"], message["text"], self.settings.sms_ttl
                )
            except GatewayConflict:
                state = self.client.get(gid)  # it is there already: follow it, never resend
                if state is not None:
                    return state
            except GatewayUnreachable as exc:
                last = exc
                if self.abort.wait(1.0):
                    break
            except GatewayAuthError as exc:
                raise ConfigurationError(str(exc)) from exc
            except GatewayRejected as exc:
                raise PermanentSendError(str(exc), code="gateway_rejected") from exc
        # The phone may have it (a timed-out POST); the same id next time makes that safe.
        raise GatewayDownError(f"phone unreachable: {last}")

    def _follow(self, gid: str, state: dict) -> dict:
        """Poll the message until a final state or the send timeout.

        A phone that stops answering meanwhile is an outage to show at once, not a slow
        send: TransportBroken leaves the row `sending`, the worker shows `gateway_down` and
        parks the jobs, and once the phone answers again the recovery asks it by this id.
        """
        deadline = self.clock() + self.settings.send_timeout
        misses = 0
        while state.get("state") not in FINAL_STATES:
            if self.clock() >= deadline or self.abort.wait(FOLLOW_POLL_EVERY):
                return state
            try:
                fresh = self.client.get(gid)
            except GatewayUnreachable as exc:
                misses += 1
                if misses >= FOLLOW_MISSES:
                    raise TransportBroken(
                        f"the phone stopped answering: {exc}", may_have_sent=True
                    ) from exc
                continue
            misses = 0
            if fresh is None:
                return {"state": "Lost"}
            state = fresh
        return state

    def _outcome(self, state: dict) -> t.SendResult:
        name = state.get("state")
        if name == "Delivered":
            return t.SendResult(provider_id=state.get("id"), delivered=True)
        if name == "Sent":
            return t.SendResult(provider_id=state.get("id"))
        if name == "Failed":
            reason = recipient_error(state)
            code = f"gateway_failed:{reason}"
            if reason in RETRYABLE_REASONS:
                raise RetryableSendError(reason, code=code)
            raise PermanentSendError(reason, code=code)
        if name == "Cancelled":
            raise RetryableSendError("cancelled on the phone", code="gateway_failed:cancelled")
        if name == "Lost":
            raise UncertainSendError("the phone no longer knows the message")
        if name == "Pending" and self.client.cancel(state.get("id") or ""):
            raise RetryableSendError("the phone did not pick it up in time; cancelled")
        # Processed (or Pending and no longer cancellable): it may be on its way. Never resend.
        raise UncertainSendError(f"still {name} after {self.settings.send_timeout:.0f} s")
