"""Sending one message in an open WhatsApp Web session: a page object.

Steps are what the page offers (open a chat, put the text in, click send, confirm by the new
last outgoing bubble and its tick). Errors say whether anything could have left: before the
click nothing did; after it, only the chat itself can tell.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from selenium.webdriver.common.keys import Keys

from message_queue.messages import ClaimedMessage

from .. import transport as t
from ..errors import (
    NotOnWhatsApp,
    RetryableSendError,
    SessionLostError,
    TransportBroken,
    UncertainSendError,
)
from .locators import Locators

log = logging.getLogger("worker.sender")

MEDIA_EXTENSIONS = {"jpg", "jpeg", "png", "gif", "webp", "mp4", "3gp", "mov"}
HISTORY_DEPTH = 20  # outgoing bubbles looked at when checking whether a message went out

# After the chat opened, in one round trip: what the compose box shows (the URL's text, if the
# page took it), how many outgoing bubbles there are, and the send button if it is there.
PREPARE_JS = """
return [read(ARGS[0]), findAll('outgoing_bubble').length, find('send_button')];
"""
# Settled yet? A new last outgoing bubble with a tick (and its text), or logged out meanwhile.
SETTLED_JS = """
const bubbles = findAll('outgoing_bubble');
if (bubbles.length > ARGS[0]) {
  const last = bubbles[bubbles.length - 1];
  if (find('tick_error', last)) return ['error', ''];
  if (find('tick_done', last)) return ['done', read(find('bubble_text', last) || last)];
}
return find('qr_canvas') ? ['logged_out', ''] : null;
"""
# The chat's recent outgoing bubbles, oldest first: [text, failed] for each.
HISTORY_JS = """
return findAll('outgoing_bubble').slice(-ARGS[0]).map(
  (b) => [read(find('bubble_text', b) || b), !!find('tick_error', b)]);
"""
INSERT_TEXT_JS = """
const box = arguments[0]; box.focus();
document.execCommand('selectAll', false, null);
document.execCommand('insertText', false, arguments[1]);
"""


def same_text(a: str, b: str) -> bool:
    """Equal up to whitespace, which the page may reflow (NBSP, trailing newlines)."""
    return " ".join(a.split()) == " ".join(b.split())


class ChatSender:
    """Sends and looks up messages in one chat at a time, in the given browser."""

    def __init__(self, driver, locators: Locators, base_url: str, timeout: float, abort=None):
        self.driver, self.locators = driver, locators
        self.base_url, self.timeout, self.abort = base_url.rstrip("/"), timeout, abort
        self.clicked = False

    def send(self, message: ClaimedMessage) -> t.SendResult:
        """Send a text, or a file with the text as caption, and confirm it by its tick."""
        if message["attachment_path"]:
            return self._send_media(message, message["attachment_path"])
        box = self.open_chat(message["phone"], message["text"])
        shown, before, button = self.locators.run(self.driver, PREPARE_JS, box)
        if not same_text(shown, message["text"]):
            self.driver.execute_script(INSERT_TEXT_JS, box, message["text"])
            button = None  # the box changed: the button may come, go or be re-rendered
        self._check_abort()
        if button is None:
            button = self._wait_for("send_button", 5, required=False)
        self.clicked = True
        if button is not None:
            button.click()
        else:  # the send button moved or was renamed: Enter sends as well
            box.send_keys(Keys.ENTER)
        return self.confirm(before, message["text"])

    def _send_media(self, message: ClaimedMessage, path: str) -> t.SendResult:
        self.open_chat(message["phone"], None)
        attach = self._wait_for("attach_button", 5)
        attach.click()
        name = message["attachment_name"] or Path(path).name
        media = name.rsplit(".", 1)[-1].lower() in MEDIA_EXTENSIONS
        file_input = self._wait_for("file_input_media" if media else "file_input_document", 5)
        # The browser reads the file only when the message is sent, so the copy must outlive
        # the click until the send is confirmed.
        with tempfile.TemporaryDirectory() as folder:
            # Upload under the file's own name: the recipient sees a document's name.
            upload = Path(folder) / Path(name).name
            shutil.copyfile(path, upload)
            file_input.send_keys(str(upload))
            caption = self._wait_for("caption_box", self.timeout, code="attachment_failed")
            if message["text"]:
                self.driver.execute_script(INSERT_TEXT_JS, caption, message["text"])
            before = self._outgoing_count()
            button = self._wait_for("media_send_button", 5, code="attachment_failed")
            self._check_abort()
            self.clicked = True
            button.click()
            return self.confirm(before, message["text"])

    def open_chat(self, phone: str, text: str | None):
        """Open the chat by URL and return its compose box.

        Raises NotOnWhatsApp, SessionLostError or a retryable error when it does not open.
        """
        digits = "".join(ch for ch in phone if ch.isdigit())
        url = f"{self.base_url}/send?phone={digits}"
        if text:
            url += "&text=" + quote(text, safe="")
        self._check_abort()
        self.driver.get(url)
        found = self.locators.wait_for_any(
            self.driver, ("compose_box", "invalid_modal", "qr_canvas"), self.timeout
        )
        if found is None:
            raise RetryableSendError("the chat did not open in time")
        name, element = found
        if name == "invalid_modal":
            ok = self.locators.find_all(element, "modal_button")
            if ok:
                ok[-1].click()
            raise NotOnWhatsApp(f"{phone} is not on WhatsApp")
        if name == "qr_canvas":
            raise SessionLostError("WhatsApp Web logged out")
        return element

    def confirm(self, before: int, text: str) -> t.SendResult:
        """Wait for a new last outgoing bubble with our text and a done tick."""
        outcome = self.locators.wait(self.driver, SETTLED_JS, self.timeout, before)
        if outcome is None:
            raise UncertainSendError("clicked send but saw no tick in time")
        state, shown = outcome
        if state == "error":
            raise UncertainSendError("WhatsApp marked the message as failed")
        if state == "logged_out":
            raise UncertainSendError("logged out before the send was confirmed")
        if not same_text(shown, text):
            raise UncertainSendError("the last bubble does not carry our text")
        return t.SendResult()

    def find_in_history(self, message: ClaimedMessage) -> str:
        """Did this message go out? `sent` when a recent outgoing bubble carries its text."""
        self.open_chat(message["phone"], None)
        history = self.locators.run(self.driver, HISTORY_JS, HISTORY_DEPTH)
        for shown, failed in reversed(history):
            if same_text(shown, message["text"]) and not failed:
                return "sent"
        return "not_sent"

    def _outgoing_count(self) -> int:
        return len(self.locators.find_all(self.driver, "outgoing_bubble"))

    def _wait_for(self, name: str, seconds: float, required: bool = True, code: str | None = None):
        found = self.locators.wait_for_any(self.driver, (name,), seconds)
        if found is None:
            if not required:
                return None
            raise RetryableSendError(f"no {name} on the page", code=code)
        return found[1]

    def _check_abort(self) -> None:
        if self.abort is not None and self.abort.is_set():
            raise TransportBroken("aborted by a second SIGTERM", may_have_sent=self.clicked)
