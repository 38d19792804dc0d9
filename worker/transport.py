"""The one small interface every channel implements; the worker loop knows only this.

A third channel is one new module with a class of this shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

LOGGED_IN = "logged_in"
QR_REQUIRED = "qr_required"
UNAVAILABLE = "unavailable"  # browser or phone not reachable right now
REFUSED = "refused"  # the channel refuses our credentials: a person must act


@dataclass(frozen=True)
class SessionState:
    """Whether the channel can send now; a QR image when a login is needed."""
    state: str
    detail: str = ""
    qr_png: bytes | None = None


@dataclass(frozen=True)
class SendResult:
    """A confirmed send: the channel's id for it, and whether it is already delivered."""
    provider_id: str | None = None
    delivered: bool = False


class Transport(Protocol):
    """A channel opens itself when first asked (and again after `close`)."""
    channel: str

    def check_session(self) -> SessionState:
        """Can we send now? Cheap enough to ask before every message."""

    def send(self, message: dict) -> SendResult:
        """Send one claimed message and confirm it, or raise a worker.errors.SendError."""

    def verify(self, message: dict) -> str:
        """After a crash: did this message go out? `sent`, `not_sent` or `unknown`."""

    def close(self) -> None:
        """Release the browser or connection."""
