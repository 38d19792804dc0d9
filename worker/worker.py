"""The worker loop: make sure the channel can send, wait its turn, claim, send, record.

It reads like the contract: recover what a crash left in `sending`, then while not stopping,
`run_once()` takes one step. Every wait is on the stop Event, so SIGTERM, pause and stop act
within a second. One broad `except` sits at the message boundary: a failing message never
kills the daemon. Nor does a database that went away (a PostgreSQL restart, a dropped
connection): the worker waits, retries, and once the database is back checks in its channel
whatever it left `sending` before it claims anything new.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading

from message_queue import DatabaseUnavailable, Queue, fallback_transport
from message_queue.messages import ClaimedMessage
from utils.pacing import Delays, Pacer

from . import transport as t
from .delay import wait
from .deliveries import DELIVERY_POLL_EVERY, DeliveryTracker
from .errors import (
    ConfigurationError,
    NotOnWhatsApp,
    RetryableSendError,
    SendError,
    SessionLostError,
    TransportBroken,
    UncertainSendError,
    decide,
)
from .heartbeat import Heartbeat
from .housekeeping import Housekeeping
from .inbox import InboxReader
from .recovery import Recovery
from .systemd import Notifier

log = logging.getLogger("worker")

MAX_PROBE_WAIT = 30.0
MAX_DATABASE_WAIT = 10.0
# A logged-in channel is asked again at most this often while messages flow or it idles.
SESSION_RECHECK = 5.0


class Worker:
    """Sends the queue's messages of one channel through one transport."""

    def __init__(
        self,
        settings,
        queue: Queue,
        transport: t.Transport,
        stop: threading.Event,
        *,
        clock=None,
        rng: random.Random | None = None,
        notifier: Notifier | None = None,
        idle_poll: float = 1.0,
        session_poll: float = 2.0,
        delivery_poll: float = DELIVERY_POLL_EVERY,
    ):
        self.settings, self.queue, self.transport, self.stop = settings, queue, transport, stop
        self.channel, self.worker_id = transport.channel, settings.worker_id
        self.traits = transport.traits
        # The queue's clock (on PostgreSQL the server's), so retry times written by one
        # machine mean the same on another.
        clock = clock or queue.clock
        self.clock, self.notifier = clock, notifier or Notifier(None)
        self.pacer = Pacer(Delays.for_channel(settings, self.channel), rng)
        self.idle_poll, self.session_poll = idle_poll, session_poll
        self.deliveries = DeliveryTracker(queue, transport, clock, delivery_poll, self._ctx())
        self.inbox = InboxReader(queue, settings, transport, clock, stop=stop)
        self.recovery = Recovery(
            queue, transport, self.worker_id, self.deliveries, self._ctx, self.record_failure
        )
        self.housekeeping = Housekeeping(queue, settings, clock)
        self.next_send_at = 0.0
        self.logged_in = False
        self.ready_sent = False
        # (state, job, detail, when) of the last heartbeat written; run() writes `starting`.
        self.heartbeat = Heartbeat(queue, self.worker_id, self.channel, clock)
        self._last_qr: bytes | None = None
        self._down_streak = 0
        self._session_checked_at = float("-inf")

    def run(self) -> int:
        """Run until stopped; 0 on a clean stop."""
        self.notifier.status("starting the channel")
        outage, started = 0, False
        try:
            while not self.stop.is_set():
                try:
                    if not started:  # inside: a database down at start is waited for too
                        self.heartbeat.write("starting", force=True)
                        started = True
                    self.run_once()
                    outage = 0
                except DatabaseUnavailable as exc:
                    outage += 1
                    self.on_database_down(exc, outage)
        finally:
            self.shutdown()
        return 0

    def run_once(self) -> bool:
        """One turn of the loop; True when a message was handed to the transport."""
        self.notifier.watchdog()
        if not self.ensure_session() or not self.wait_for_turn():
            return False
        message = self.queue.claim_next(self.channel, self.worker_id)
        if message is None:
            self.heartbeat.write("logged_in", detail=self.inbox.problem())
            self.deliveries.poll_if_due()  # idle: ask about delivery, where the channel can tell
            self.inbox.read_if_due()  # and read replies, where it can
            self.housekeeping.run_if_due()
            self.queue.wait_for_work(self.stop, self.idle_poll)
            return False
        self.heartbeat.write("sending", message["job_id"], self.inbox.problem())
        self.notifier.status(f"sending message {message['id']} of job {message['job_id']}")
        self.deliver(message)
        self.inbox.unfollowed = True
        return True

    # --- the session -------------------------------------------------------------------

    def ensure_session(self) -> bool:
        """True when the channel can send now; otherwise show why, wait a little, False."""
        if self.logged_in and self.clock() - self._session_checked_at < SESSION_RECHECK:
            # Looked a moment ago: a logout since then still surfaces in the send itself
            # (SessionLostError), so asking the browser before every message is wasted work.
            return True
        try:
            state = self.transport.check_session()
        except Exception as exc:  # a dead browser or an unreachable phone is a state, not a crash
            log.warning("channel check failed: %s", exc, extra=self._ctx())
            state = t.SessionState(t.UNAVAILABLE, str(exc))
        if state.state == t.LOGGED_IN:
            self._down_streak = 0
            self._session_checked_at = self.clock()
            if not self.logged_in and not self.on_login():
                # Gone again while the leftovers were checked: they stay `sending`, ours, and
                # are checked again before anything new is sent.
                self.stop.wait(self.session_poll)
                return False
            return True
        self.on_session_down(state)
        # A QR is re-read often (it rotates); an unreachable channel is probed with backoff.
        self._down_streak = 0 if state.state == t.QR_REQUIRED else self._down_streak + 1
        self.stop.wait(min(self.session_poll * 2 ** min(self._down_streak, 6), MAX_PROBE_WAIT))
        return False

    def on_login(self) -> bool:
        """The channel is (back) up: forget the QR, verify leftovers, resume waiting jobs.

        False when the channel went away during the verification: still not logged in.
        """
        log.info("%s channel is ready", self.channel, extra=self._ctx())
        self.queue.clear_qr(self.worker_id)
        self._last_qr = None
        if not self.recovery.settle_leftovers():
            return False
        resumed = self.queue.end_channel_waiting(
            self.channel, self.traits.waiting_status, self.worker_id
        )
        if resumed:
            log.info("resumed jobs %s", ", ".join(resumed), extra=self._ctx())
        self.logged_in = True
        self.heartbeat.write("logged_in", detail=self.inbox.problem(), force=True)
        self._ready("logged in, sending")
        return True

    def on_session_down(self, state: t.SessionState) -> None:
        """Nothing may be sent: park this channel's jobs and say what a person must do."""
        if self.logged_in or self.heartbeat.state == "starting":
            log.warning(
                "%s channel cannot send: %s %s",
                self.channel,
                state.state,
                state.detail,
                extra=self._ctx(),
            )
        self.logged_in = False
        if state.state == t.QR_REQUIRED:
            self.queue.set_channel_waiting(self.channel, self.traits.waiting_status, self.worker_id)
            if state.qr_png and state.qr_png != self._last_qr:
                self.queue.save_qr(self.worker_id, state.qr_png)
                self._last_qr = state.qr_png
            self.heartbeat.write(
                "qr_required", detail=state.detail or "scan the QR code", force=True
            )
        else:
            if self.traits.park_when_unavailable:
                self.queue.set_channel_waiting(
                    self.channel, self.traits.waiting_status, self.worker_id
                )
            self.heartbeat.write(self.traits.down_state, detail=state.detail or state.state)
        self._ready(f"waiting: {state.state} {state.detail}".strip())

    def on_database_down(self, exc: DatabaseUnavailable, outage: int) -> None:
        """The database is unreachable: wait (longer each time) and try again. What this
        worker left `sending` meanwhile (a send whose mark never arrived) is checked in the
        channel, as after a crash, before anything new is claimed."""
        if outage == 1:
            log.warning("database unavailable, waiting: %s", exc, extra=self._ctx())
        self.logged_in = False
        self.stop.wait(min(self.session_poll * 2 ** min(outage - 1, 6), MAX_DATABASE_WAIT))

    # --- one message ---------------------------------------------------------------------

    def wait_for_turn(self) -> bool:
        """Keep the pause between two messages; False when stopped meanwhile."""
        return wait(self.stop, self.next_send_at - self.clock(), self._while_waiting)

    def _while_waiting(self) -> bool:
        # A long pause must not make us look dead to /session or to other workers' recovery.
        self.heartbeat.again()
        # It is also when to ask the phone what it delivered (a job of hours would otherwise
        # show its rows `sent` until it ends) and what people replied (within 60 s, also
        # while a job sends).
        self.deliveries.poll_if_due()
        self.inbox.read_if_due()
        return True

    def deliver(self, message: ClaimedMessage) -> None:
        """Send one claimed message and record what happened: the message boundary."""
        try:
            result = self.transport.send(message)
        except SendError as exc:
            self.record_failure(message, exc)
        except Exception as exc:  # an unforeseen error: the message may or may not be out
            log.exception(
                "unexpected error sending message %s", message["id"], extra=self._ctx(message)
            )
            self.record_failure(message, UncertainSendError(repr(exc)))
        else:
            self.queue.mark_sent(message["id"], self.worker_id, result.provider_id)
            if result.delivered:
                self.queue.mark_delivered(message["id"])
            log.info("sent message %s", message["id"], extra=self._ctx(message))
            self._schedule_next()

    def record_failure(self, message: ClaimedMessage, error: SendError) -> None:
        """Retry, fail, release or verify the message, as the error's class decides."""
        now = self.clock()
        outcome = decide(
            error, message["attempts"], self.settings.max_attempts, now, self.settings.retry_backoff
        )
        log.warning(
            "message %s: %s (%s) -> %s",
            message["id"],
            error.code,
            error,
            outcome.action,
            extra=self._ctx(message),
        )
        mid, me = message["id"], self.worker_id
        if outcome.action == "fail":
            fallback = fallback_transport(message["job_channel"], outcome.code)
            if fallback and fallback != self.channel:
                self.queue.reroute(mid, me, fallback, outcome.code)
            else:
                self.queue.mark_failed(mid, me, outcome.code)
        elif outcome.action == "retry":
            self.queue.retry_later(mid, me, outcome.code, outcome.at or now)
        elif outcome.action == "release":
            self.queue.release(mid, me, outcome.code)
            if isinstance(error, TransportBroken):
                self._close_transport()
            self.logged_in = False  # look at the session again before the next claim
        else:
            self._settle_uncertain(message, error)
        if isinstance(error, ConfigurationError):
            self.heartbeat.write(self.traits.down_state, detail=str(error), force=True)
        if not isinstance(error, SessionLostError):
            self._schedule_next()

    def _settle_uncertain(self, message: ClaimedMessage, error: SendError) -> None:
        if isinstance(error, TransportBroken):
            # The browser died after the click. The row stays `sending`, claimed by us: the
            # recovery that runs once the channel is back up looks in the chat for it.
            self._close_transport()
            return
        try:
            verdict = self.recovery.verify(message)
        except SessionLostError:
            self.logged_in = False  # left `sending`: the recovery after the next login settles it
            return
        except NotOnWhatsApp as exc:
            self.record_failure(message, exc)  # nothing went: it falls back to SMS, or fails
            return
        if verdict == "sent":
            self.recovery.mark_sent(message)
        elif verdict == "not_sent":
            self.record_failure(message, RetryableSendError(str(error), code=error.code))
        else:
            self.queue.mark_unknown(message["id"], self.worker_id, error.code)

    def _close_transport(self) -> None:
        """Drop a broken browser or connection; the next session check opens a fresh one."""
        try:
            self.transport.close()
        except Exception:  # the old browser is gone anyway
            pass
        self.logged_in = False

    def _schedule_next(self) -> None:
        self.next_send_at = self.clock() + self.pacer.next_delay()

    # --- bookkeeping ---------------------------------------------------------------------

    def _ready(self, status: str) -> None:
        if not self.ready_sent:
            self.notifier.ready()
            self.ready_sent = True
        self.notifier.status(status)

    def shutdown(self) -> None:
        """Say we are stopping, close the channel, leave a `stopped` heartbeat."""
        self.notifier.stopping()
        try:
            with contextlib.suppress(DatabaseUnavailable):  # the database may be why we stop
                self.queue.follow_sent(self.worker_id)  # the inbox's list shows the last sends
            self.transport.close()
        finally:
            self.heartbeat.stopped()
            log.info("worker %s stopped", self.worker_id, extra=self._ctx())

    def _ctx(self, message: ClaimedMessage | None = None) -> dict:
        ctx = {"worker_id": self.worker_id, "channel": self.channel}
        if message:
            ctx.update(job_id=message["job_id"], message_id=message["id"])
        return ctx
