"""What a channel is and can do: the small interface the worker loop knows, and nothing more.

Every channel implements `Transport` and declares its `Traits` (how it shows "cannot send
now"). Optional abilities are protocols of their own, declared by implementing them:
`ReportsDelivery` for channels whose provider says when a message arrived, and
`ReceivesMessages` for channels that can read replies. The loop asks `isinstance(transport,
ReportsDelivery)`, never a channel's name. A third channel is one module with a class of this
shape, plus its line in worker/channels.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from message_queue import JobStatus
from message_queue.messages import ClaimedMessage

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


@dataclass(frozen=True)
class Traits:
    """How a channel shows that it cannot send, on its jobs and on its worker."""

    # The job status while a person must act (log in, fix the phone).
    waiting_status: str
    # The worker state while the channel is unreachable.
    down_state: str
    # Whether an unreachable channel parks its jobs too, not only a logged-out one. A phone
    # that stops answering is the phone's problem, so its jobs show it; a browser that will
    # not start is the worker's, which /session shows.
    park_when_unavailable: bool


@dataclass(frozen=True)
class Inbound:
    """A message someone sent us, as a channel read it (room for replies: issue 13)."""

    phone: str
    text: str
    received_at: float
    provider_id: str | None = None
    kind: str = "text"  # or a media kind ("image", ...) whose caption is `text`


class Transport(Protocol):
    """A channel opens itself when first asked (and again after `close`)."""

    channel: str
    traits: Traits

    def check_session(self) -> SessionState:
        """Can we send now? Cheap enough to ask before every message."""

    def send(self, message: ClaimedMessage) -> SendResult:
        """Send one claimed message and confirm it, or raise a worker.errors.SendError."""

    def verify(self, message: ClaimedMessage) -> str:
        """After a crash: did this message go out? `sent`, `not_sent` or `unknown`."""

    def close(self) -> None:
        """Release the browser or connection."""


@runtime_checkable
class ReportsDelivery(Protocol):
    """A channel whose provider reports when a sent message reached the phone."""

    # Seconds after sending during which a report is still looked for.
    delivery_window: float

    def tracking_id(self, message: ClaimedMessage) -> str | None:
        """The id the provider knows `message` by, for a row settled without `send`."""

    def poll_deliveries(self, rows: list[dict]) -> list[int]:
        """Ids of `rows` (sent earlier, with their provider_id) now reported delivered."""


@runtime_checkable
class ReceivesMessages(Protocol):
    """A channel that can read what people wrote to us."""

    @property
    def wants_since(self) -> bool:
        """True when the next poll is a catch-up (after a (re)connect) that needs `since`."""

    @property
    def inbound_problem(self) -> str | None:
        """What keeps replies from coming in the usual way, for /session; None when fine."""

    def poll_inbound(
        self,
        since: float | None = None,
        seen: Callable[[str, list[str]], set[str]] | None = None,
        stop: threading.Event | None = None,
    ) -> list[Inbound]:
        """Messages received since the last call; never sends anything.

        `since`: when the newest reply already stored for this channel was received.
        `seen(phone, ids)`: which of these provider ids the queue already holds from `phone`
        (written as in Inbound), for a channel that must ask after a restart what it handed on.
        `stop`: the worker's stop Event; once set, the read ends after the step it is in
        (a chat, a page), with what it has read so far.
        """


WAITS_FOR_LOGIN = Traits(JobStatus.WAITING_FOR_LOGIN, "disconnected", park_when_unavailable=False)
WAITS_FOR_GATEWAY = Traits(
    JobStatus.WAITING_FOR_GATEWAY, "gateway_down", park_when_unavailable=True
)
