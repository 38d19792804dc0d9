"""Test doubles for what varies: a transport scripted per phone number, and a movable clock."""

from __future__ import annotations

from worker import transport as t


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTransport:
    """Records what it was asked to send; `script[phone]` is a list of errors to raise first."""

    def __init__(self, channel: str = "whatsapp", state: str = t.LOGGED_IN):
        self.channel = channel
        # As the real channel of that name shows that it cannot send.
        self.traits = t.WAITS_FOR_GATEWAY if channel == "sms" else t.WAITS_FOR_LOGIN
        self.session = t.SessionState(state)
        self.script: dict[str, list[Exception]] = {}
        self.sent: list[tuple[str, str]] = []
        self.verdicts: dict[int, str] = {}
        self.verified: list[int] = []
        self.closed = 0
        self.on_send = None

    def check_session(self) -> t.SessionState:
        return self.session

    def send(self, message: dict) -> t.SendResult:
        if self.on_send:
            self.on_send(message)
        errors = self.script.get(message["phone"])
        if errors:
            raise errors.pop(0)
        self.sent.append((message["phone"], message["text"]))
        return t.SendResult(provider_id=f"p{message['id']}")

    def verify(self, message: dict) -> str:
        self.verified.append(message["id"])
        return self.verdicts.get(message["id"], "not_sent")

    def close(self) -> None:
        self.closed += 1


class ReportingTransport(FakeTransport):
    """A FakeTransport that also declares delivery reports (t.ReportsDelivery), as SMS does.

    `delivered` says which rows the provider reports delivered; by default none.
    """

    delivery_window = 3600.0

    def __init__(self, channel: str = "sms", state: str = t.LOGGED_IN):
        super().__init__(channel, state)
        self.delivered = lambda rows: []

    def tracking_id(self, message) -> str | None:
        return f"t{message['id']}"

    def poll_deliveries(self, rows: list[dict]) -> list[int]:
        return self.delivered(rows)


def send_next(
    queue, clock, at: float, fail: str | None = None, channel: str = "whatsapp", worker: str = "w-1"
) -> int:
    """Act as a worker at time `at`: claim the next row of `channel`, mark it sent (or failed
    with the error `fail`), then bring the inbox's list up to it as a worker does between two
    sends (`follow_sent`); its id."""
    clock.now = at
    message = queue.claim_next(channel, worker)
    assert message is not None
    if fail:
        assert queue.mark_failed(message["id"], worker, fail)
    else:
        assert queue.mark_sent(message["id"], worker)
    queue.follow_sent(worker)
    return message["id"]
