"""The WhatsApp transport: the session (browser), the chat sender and the inbox, behind the
small interfaces (Transport, ReceivesMessages).

Any WebDriver failure is sorted here into what it means for the message: if the browser
died, the session is dropped (the next check starts a fresh one with the same profile) and
the error says whether the send button had already been clicked.
"""

from __future__ import annotations

import logging
import threading

from selenium.common.exceptions import WebDriverException
from urllib3.exceptions import HTTPError as Urllib3Error

from message_queue.messages import ClaimedMessage

from .. import transport as t
from ..errors import RetryableSendError, TransportBroken, UncertainSendError
from .browser import is_hung
from .inbox import ChatInbox
from .locators import Locators
from .sender import ChatSender
from .session import WhatsAppSession

log = logging.getLogger("worker.whatsapp")
# Elements every chat page must offer; named in the log when none of their locators match.
# The chat list's are the inbox's to check (INBOX_CHECK), so a missing one is named once.
SELF_CHECK = ("compose_box", "attach_button", "outgoing_bubble")


class WhatsAppTransport:
    """Sends through WhatsApp Web in Chromium."""

    channel = "whatsapp"
    traits = t.WAITS_FOR_LOGIN

    def __init__(
        self,
        settings,
        abort: threading.Event | None = None,
        driver_factory=None,
        locators: Locators | None = None,
    ):
        self.settings, self.abort = settings, abort
        self.locators = locators or Locators.load(settings.selectors_file)
        self.session = WhatsAppSession(settings, self.locators, driver_factory)
        self.inbox = ChatInbox(self.locators)
        self._checked = False

    @property
    def wants_since(self) -> bool:
        """Never: the chat list itself says what is unread."""
        return False

    @property
    def inbound_problem(self) -> str | None:
        """Why replies cannot be read (the chat list is not found), or None."""
        return self.inbox.problem

    def poll_inbound(
        self, since: float | None = None, seen=None, stop: threading.Event | None = None
    ) -> list[t.Inbound]:
        """Replies in the open chat and in unread chats (a few per call); never sends.

        Called only between sends, so navigating to a chat never interrupts one. A browser
        error ends the poll with what was read so far: those chats are marked read now.
        `seen` says which bubbles are stored already, for a chat first read since start; once
        `stop` (or a second SIGTERM's abort) is set, no further chat is opened.
        """

        def stopping() -> bool:
            return any(e is not None and e.is_set() for e in (self.abort, stop))

        driver = self.session.driver
        if driver is None or stopping():
            return []
        found = self.inbox.poll(driver, self._open_for_reading, stopping, seen)
        if isinstance(self.inbox.error, (WebDriverException, Urllib3Error, OSError)):
            self._sort(self.inbox.error, False)  # drops a dead or hung browser
        return found

    def _open_for_reading(self, digits: str) -> None:
        self._sender().open_chat(digits, None)

    def check_session(self) -> t.SessionState:
        """Logged in, QR required (with its image) or unavailable."""
        return self.session.state()

    def send(self, message: ClaimedMessage) -> t.SendResult:
        """Open the chat, send, confirm by the tick."""
        sender = self._sender()
        try:
            result = sender.send(message)
        except (WebDriverException, Urllib3Error, OSError) as exc:
            raise self._sort(exc, sender.clicked) from exc
        self._self_check()
        self.session.count_send()
        return result

    def verify(self, message: ClaimedMessage) -> str:
        """After a crash: look among the chat's last outgoing bubbles for the message."""
        sender = self._sender()
        try:
            return sender.find_in_history(message)
        except (WebDriverException, Urllib3Error, OSError) as exc:
            raise self._sort(exc, True) from exc

    def close(self) -> None:
        """Quit the browser."""
        self.session.close()

    def _sender(self) -> ChatSender:
        self.session.start()
        return ChatSender(
            self.session.driver,
            self.locators,
            self.session.base_url,
            self.settings.send_timeout,
            self.abort,
        )

    def _sort(self, exc: Exception, clicked: bool) -> Exception:
        if is_hung(exc):
            log.warning("the browser stopped answering (%s); it will be restarted", exc)
            self.session.close(hung=True)
            return TransportBroken(f"browser hung: {exc}", may_have_sent=clicked)
        if not self.session.is_alive():
            log.warning("the browser died (%s); it will be restarted", exc)
            self.session.close()
            return TransportBroken(f"browser died: {exc}", may_have_sent=clicked)
        if clicked:
            return UncertainSendError(f"browser error after clicking send: {exc}")
        return RetryableSendError(f"browser error before sending: {exc}")

    def _self_check(self) -> None:
        """Once per browser, after a chat opened: name any element none of whose locators match."""
        if self._checked:
            return
        self._checked = True
        missing = self.locators.missing(self.session.driver, SELF_CHECK)
        if missing:
            log.warning(
                "selectors self-check: nothing matches %s; update SELECTORS_FILE",
                ", ".join(missing),
            )
