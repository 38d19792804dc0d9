"""Replies by SMS: register our webhook on the phone, and read the phone's inbox.

The webhook (`POST /hooks/smsgate` on the API) is the fast way in; the inbox (`GET /inbox`, app
1.59+) is how nothing is lost: after a (re)connect it is read back over a catch-up window, and
then swept now and then (often when the phone refused the webhook, rarely when it took it).
Every copy is handed on, and storage keeps one (message_queue/inbound.py): this reader only
avoids handing on what it already handed on since it connected.

Time on the phone is the SMSC's and the phone's clock: sweeps start from the newest time the
phone itself wrote, less an overlap for SMS the network delivers late, never from our clock.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import quote

from utils.instants import InstantError, parse_instant

from .. import transport as t
from .gateway import GatewayError, GatewayRejected, SmsGateClient

log = logging.getLogger("worker.sms")

CATCH_UP = 24 * 3600.0  # read back after a (re)connect when the database has no reply yet
CATCH_UP_MAX = 7 * 24 * 3600.0  # never further back than this, however old the newest reply
OVERLAP = 3600.0  # an SMS may reach the phone well after its SMSC time
PAGE = 200
INBOX_SWEEP_EVERY = (5.0, 60.0)  # seconds between sweeps: without a webhook, with one
EVENT = "sms:received"


class InboxSweeper:
    """Registers our webhook on one phone and sweeps its inbox for the replies it holds."""

    def __init__(self, client: SmsGateClient, settings, clock=time.time, monotonic=time.monotonic):
        self.client, self.settings = client, settings
        self.clock, self.monotonic = clock, monotonic
        self.webhook_problem: str | None = None  # why replies do not come by webhook
        self.inbox_problem: str | None = None  # why the inbox cannot be read
        self.webhook_ok = False
        self.connected()

    def connected(self) -> None:
        """The phone answers again: register anew, catch up, forget what was handed on."""
        self.fresh = True
        self.cursor: float | None = None  # newest createdAt seen, in the phone's time
        self.sweep: dict | None = None  # a sweep cut short: where it stopped
        self.seen: dict[tuple, float] = {}
        self.next_sweep = 0.0

    def poll(self, since: float | None, deadline: float, stopping=lambda: False) -> list[t.Inbound]:
        """New replies on the phone, until the first error, `deadline` (monotonic) or `stopping()`.

        Stopping ends the read after the page it is in; a sweep cut short goes on next time.
        """
        if self.fresh:
            self.fresh = False
            self._register()
            self.cursor = self._catch_up_start(since)
        if self.sweep is None and self.monotonic() < self.next_sweep:
            return []
        try:
            return self._sweep(deadline, stopping)
        except GatewayRejected as exc:
            if self.inbox_problem is None:
                log.warning("cannot read the phone's inbox: %s", exc)
            self.inbox_problem = f"cannot read the phone's inbox (app 1.59+ has one): {exc}"
            self.sweep, self.next_sweep = None, self.monotonic() + INBOX_SWEEP_EVERY[1]
        except GatewayError as exc:
            log.info("inbox read stopped: %s", exc)
        return []

    def problem(self) -> str | None:
        """What keeps replies from coming in both ways, for /session; None when all is well."""
        found = [p for p in (self.webhook_problem, self.inbox_problem) if p]
        return "; ".join(found) or None

    def _catch_up_start(self, since: float | None) -> float:
        now = self.clock()
        if since is None:
            return now - CATCH_UP
        return max(since, now - CATCH_UP_MAX)

    def _sweep(self, deadline: float, stopping) -> list[t.Inbound]:
        sweep = self.sweep or {"from": (self.cursor or self.clock()) - OVERLAP, "offset": 0}
        self.sweep = sweep
        found: list[t.Inbound] = []
        while self.monotonic() < deadline and not stopping():
            total, page = self.client.inbox(_iso(sweep["from"]), PAGE, sweep["offset"])
            sweep["offset"] += len(page)
            found.extend(self._new(page))
            self.inbox_problem = None
            if len(page) < PAGE or sweep["offset"] >= total:
                self.sweep = None
                self._forget_before(sweep["from"])
                self.next_sweep = self.monotonic() + INBOX_SWEEP_EVERY[self.webhook_ok]
                break
        return found

    def _new(self, page: list) -> list[t.Inbound]:
        """Entries of one page not handed on before, as Inbound; the cursor moves on."""
        fresh = []
        for entry in page:
            item = _inbound(entry)
            if item is None:
                continue
            key = (item.phone, int(item.received_at), item.text)
            if key in self.seen:
                continue
            self.seen[key] = item.received_at
            self.cursor = max(self.cursor or 0.0, item.received_at)
            fresh.append(item)
        return fresh

    def _forget_before(self, moment: float) -> None:
        self.seen = {k: at for k, at in self.seen.items() if at >= moment}

    def _register(self) -> None:
        """Put our webhook (and signing key) on the phone; say why not when it refuses."""
        url, key = self.settings.sms_webhook_url, self.settings.sms_webhook_signing_key
        self.webhook_ok, self.webhook_problem = False, None
        if not url:
            self.webhook_problem = "SMS_WEBHOOK_URL is not set: replies come by reading the inbox"
            return
        if not key:
            self.webhook_problem = (
                "SMS_WEBHOOK_SIGNING_KEY is not set, so the API would refuse the phone's "
                "webhook: not registered; replies come by reading the inbox"
            )
            return
        try:
            self.client.set_webhook_settings({"signing_key": key})
            self.client.register_webhook(self._hook_id(), self._hook_url(url), EVENT)
        except GatewayRejected as exc:
            self.webhook_problem = f"the phone refused the webhook {url}: {exc}; reading the inbox"
        except GatewayError as exc:  # unreachable, or an answer that is not the API
            self.fresh = True  # try again at the next poll
            self.webhook_problem = f"could not register the webhook yet: {exc}"
        else:
            self.webhook_ok = True
            log.info("webhook %s registered on the phone", url)
        if self.webhook_problem:
            log.warning("%s", self.webhook_problem)

    def _hook_id(self) -> str:
        # A fixed id: registering again replaces our hook instead of adding another one.
        return ("bulk-sender-" + "".join(c for c in self._worker() if c.isalnum() or c in "-_"))[
            :64
        ]

    def _hook_url(self, url: str) -> str:
        # The API names the receiving account after this; the signature covers the body only,
        # so this is a label, never a credential.
        return f"{url}{'&' if '?' in url else '?'}worker={quote(self._worker(), safe='')}"

    def _worker(self) -> str:
        return self.settings.worker_id or "sms"


def _inbound(entry) -> t.Inbound | None:
    """An inbox entry as an Inbound; None for what is not a readable SMS."""
    if not isinstance(entry, dict) or entry.get("type", "SMS") != "SMS":
        return None
    sender, text = entry.get("sender"), entry.get("contentPreview")
    if not isinstance(sender, str) or not sender.strip() or not isinstance(text, str):
        return None
    try:
        at = parse_instant(entry.get("createdAt"))
    except InstantError:
        return None
    return t.Inbound(sender, text, at, _message_id(entry.get("id")))


def _message_id(inbox_id) -> str | None:
    """The webhook's messageId for an inbox id: "text:-123" is the same hash, signed decimal."""
    if not isinstance(inbox_id, str):
        return None
    prefix, _, number = inbox_id.partition(":")
    if prefix == "text" and number.lstrip("-").isdigit():
        return format(int(number) & 0xFFFFFFFF, "x")
    return inbox_id[:64]


def _iso(moment: float) -> str:
    """The app's DateTimeParser takes yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX: exactly that."""
    return datetime.fromtimestamp(max(moment, 0.0), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
