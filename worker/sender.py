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

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from . import transport as t
from .errors import (NotOnWhatsApp, RetryableSendError, SessionLostError, TransportBroken,
                     UncertainSendError)
from .locators import Locators

log = logging.getLogger("worker.sender")

MEDIA_EXTENSIONS = {"jpg", "jpeg", "png", "gif", "webp", "mp4", "3gp", "mov"}
HISTORY_DEPTH = 20  # outgoing bubbles looked at when checking whether a message went out

# The text a bubble or box shows: text nodes, emoji images by their alt text, <br> as newline.
READ_TEXT_JS = """
function read(node) {
  if (node.nodeType === 3) return node.nodeValue;
  if (node.nodeName === 'IMG') return node.alt || '';
  if (node.nodeName === 'BR') return '\\n';
  let out = '';
  node.childNodes.forEach((child, i) => {
    const block = child.nodeType === 1 && ['DIV', 'P'].includes(child.nodeName);
    if (block && i > 0 && out && !out.endsWith('\\n')) out += '\\n';
    out += read(child);
  });
  return out;
}
return read(arguments[0]);
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

    def send(self, message: dict) -> t.SendResult:
        """Send a text, or a file with the text as caption, and confirm it by its tick."""
        if message.get("attachment_path"):
            return self._send_media(message)
        self.open_chat(message["phone"], message["text"])
        box = self.locators.find(self.driver, "compose_box")
        if not same_text(self.read_text(box), message["text"]):
            self.driver.execute_script(INSERT_TEXT_JS, box, message["text"])
        before = self._outgoing_count()
        self._before_click()
        button = self._wait_for("send_button", 5, required=False)
        self.clicked = True
        if button is not None:
            button.click()
        else:  # the send button moved or was renamed: Enter sends as well
            box.send_keys(Keys.ENTER)
        return self.confirm(before, message["text"])

    def _send_media(self, message: dict) -> t.SendResult:
        self.open_chat(message["phone"], None)
        attach = self._wait_for("attach_button", 5)
        attach.click()
        name = message.get("attachment_name") or Path(message["attachment_path"]).name
        media = name.rsplit(".", 1)[-1].lower() in MEDIA_EXTENSIONS
        file_input = self._wait_for("file_input_media" if media else "file_input_document", 5)
        # The browser reads the file only when the message is sent, so the copy must outlive
        # the click until the send is confirmed.
        with tempfile.TemporaryDirectory() as folder:
            # Upload under the file's own name: the recipient sees a document's name.
            upload = Path(folder) / Path(name).name
            shutil.copyfile(message["attachment_path"], upload)
            file_input.send_keys(str(upload))
            caption = self._wait_for("caption_box", self.timeout, code="attachment_failed")
            if message["text"]:
                self.driver.execute_script(INSERT_TEXT_JS, caption, message["text"])
            before = self._outgoing_count()
            button = self._wait_for("media_send_button", 5, code="attachment_failed")
            self._before_click()
            self.clicked = True
            button.click()
            return self.confirm(before, message["text"])

    def open_chat(self, phone: str, text: str | None) -> None:
        """Open the chat by URL; raise NotOnWhatsApp, SessionLostError or a retryable error."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        url = f"{self.base_url}/send?phone={digits}"
        if text:
            url += "&text=" + quote(text, safe="")
        self._check_abort()
        self.driver.get(url)
        found = self._race(("compose_box", "invalid_modal", "qr_canvas"), self.timeout)
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

    def confirm(self, before: int, text: str) -> t.SendResult:
        """Wait for a new last outgoing bubble with our text and a done tick."""
        def settled(driver):
            bubbles = self.locators.find_all(driver, "outgoing_bubble")
            if len(bubbles) > before:
                last = bubbles[-1]
                if self.locators.find(last, "tick_error") is not None:
                    return "error"
                if self.locators.find(last, "tick_done") is not None:
                    return "done"
            # Logged out meanwhile: the page went to the QR and no tick can come any more.
            return "logged_out" if self.locators.find(driver, "qr_canvas") is not None else False

        try:
            outcome = WebDriverWait(self.driver, self.timeout, poll_frequency=0.1).until(settled)
        except TimeoutException:
            raise UncertainSendError("clicked send but saw no tick in time") from None
        if outcome == "error":
            raise UncertainSendError("WhatsApp marked the message as failed")
        if outcome == "logged_out":
            raise UncertainSendError("logged out before the send was confirmed")
        if not same_text(self._bubble_text(self.locators.find_all(self.driver,
                                                                  "outgoing_bubble")[-1]), text):
            raise UncertainSendError("the last bubble does not carry our text")
        return t.SendResult()

    def find_in_history(self, message: dict) -> str:
        """Did this message go out? `sent` when a recent outgoing bubble carries its text."""
        self.open_chat(message["phone"], None)
        bubbles = self.locators.find_all(self.driver, "outgoing_bubble")[-HISTORY_DEPTH:]
        for bubble in reversed(bubbles):
            if same_text(self._bubble_text(bubble), message["text"]) and \
                    self.locators.find(bubble, "tick_error") is None:
                return "sent"
        return "not_sent"

    def read_text(self, element) -> str:
        """What a box or bubble shows, emoji included."""
        return self.driver.execute_script(READ_TEXT_JS, element) or ""

    def _bubble_text(self, bubble) -> str:
        inner = self.locators.find(bubble, "bubble_text")
        return self.read_text(inner if inner is not None else bubble)

    def _outgoing_count(self) -> int:
        return len(self.locators.find_all(self.driver, "outgoing_bubble"))

    def _race(self, names, seconds: float):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(
                lambda d: self.locators.first_present(d, names))
        except TimeoutException:
            return None

    def _wait_for(self, name: str, seconds: float, required: bool = True,
                  code: str | None = None):
        found = self._race((name,), seconds)
        if found is None:
            if not required:
                return None
            raise RetryableSendError(f"no {name} on the page", code=code)
        return found[1]

    def _check_abort(self) -> None:
        if self.abort is not None and self.abort.is_set():
            raise TransportBroken("aborted by a second SIGTERM", may_have_sent=self.clicked)

    def _before_click(self) -> None:
        self._check_abort()
