"""What can go wrong with one send, by what it means for the message.

Transports raise these; `decide()` turns one into what the queue records. The class says
whether anything may have left: only errors that certainly sent nothing are ever retried.
"""

from __future__ import annotations

from dataclasses import dataclass


class SendError(Exception):
    """Base: a send did not end in a confirmed message. `code` is the contract's error code."""

    code = "send_failed"

    def __init__(self, detail: str = "", code: str | None = None):
        super().__init__(detail or self.code)
        if code:
            self.code = code


class RetryableSendError(SendError):
    """Nothing was sent (chat did not open, compose box missing): try again later."""


class PermanentSendError(SendError):
    """This message can never go out as it is (number not on WhatsApp, rejected by the gateway)."""


class NotOnWhatsApp(PermanentSendError):
    code = "not_on_whatsapp"


class SessionLostError(SendError):
    """The channel itself is gone (logged out, phone unreachable); nothing was sent.

    The message goes back to the queue without burning an attempt and the channel waits.
    """

    code = "session_lost"


class GatewayDownError(SessionLostError):
    code = "gateway_down"


class ConfigurationError(SessionLostError):
    """The channel refuses us (wrong password): sending stops until a person fixes it."""

    code = "gateway_unauthorized"


class UncertainSendError(SendError):
    """The send may have gone out but was not confirmed: verify, never blindly resend."""

    code = "send_not_confirmed"


class TransportBroken(SendError):
    """The browser or the connection died mid-way; `may_have_sent` says if the click happened."""

    code = "session_lost"

    def __init__(self, detail: str = "", may_have_sent: bool = False):
        super().__init__(detail)
        self.may_have_sent = may_have_sent


@dataclass(frozen=True)
class Outcome:
    """What to record for a failed send: `action` is retry, fail, release or verify."""

    action: str
    code: str
    at: float | None = None


def decide(
    error: SendError, attempts: int, max_attempts: int, now: float, backoff: float
) -> Outcome:
    """Turn a send error into what the queue records, from its class and the attempts so far."""
    if isinstance(error, PermanentSendError):
        return Outcome("fail", error.code)
    if isinstance(error, UncertainSendError) or (
        isinstance(error, TransportBroken) and error.may_have_sent
    ):
        return Outcome("verify", error.code)
    if isinstance(error, (SessionLostError, TransportBroken)):
        return Outcome("release", error.code)
    if isinstance(error, RetryableSendError) or type(error) is SendError:
        if attempts >= max_attempts:
            return Outcome("fail", error.code)
        # Exponential backoff: backoff, 2×, 4×, ... so a flaky chat gets time to recover.
        return Outcome("retry", error.code, now + backoff * 2 ** max(attempts - 1, 0))
    return Outcome("verify", error.code)
