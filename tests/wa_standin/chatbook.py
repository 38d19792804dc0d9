"""Incoming messages of the WhatsApp Web stand-in: chats, unread counts, open pages.

Like the real site: a message from a contact lands in their chat, the chat moves to the top of
the list and counts one more unread message, unless a page shows that chat right now, in which
case it is shown at once and read. Opening a chat (by `/send?phone=` or its row) reads it.
"""

from __future__ import annotations

import re
import secrets
import time

MEDIA_KINDS = ("image", "video", "audio", "document")
# A page that has not polled for this long is gone (a browser that quits or is killed may
# send no pagehide); a page showing a chat polls at least once a second (standin.js).
PAGE_TTL = 2.5
# Emoji the real page draws as <img class="emoji" alt="…">: pictographs and their modifiers.
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff][\ufe0f\u200d\U0001f3fb-\U0001f3ff]*"
)


def segments(text: str) -> list[list[str]]:
    """The text as [["t", text] | ["e", emoji]] runs, as the page draws it."""
    out, at = [], 0
    for match in EMOJI.finditer(text):
        if match.start() > at:
            out.append(["t", text[at : match.start()]])
        out.append(["e", match.group()])
        at = match.end()
    if at < len(text):
        out.append(["t", text[at:]])
    return out


class ChatBook:
    """Incoming messages per chat; the caller (StandinState) holds its lock around every call."""

    def __init__(self):
        self.incoming: dict[str, list[dict]] = {}
        self.unread: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.pages: dict[str, tuple[str, float]] = {}  # page token -> (open chat, last seen)

    def add(self, phone, text="", media=None, caption=None, name=None, at=None) -> dict:
        """Drop one incoming message into `phone`'s chat; read at once if a page shows it."""
        if media is not None and media not in MEDIA_KINDS:
            raise ValueError(f"media must be one of {', '.join(MEDIA_KINDS)}")
        if name:
            self.names[phone] = name
        at = time.time() if at is None else at
        body = caption if media else text
        message = {
            "id": "3A" + secrets.token_hex(8).upper(),
            "phone": phone,
            "text": body or "",
            "media": media,
            "at": at,
            "stamp": time.strftime("[%H:%M, %d/%m/%Y] ", time.localtime(at)),
            "sender": self.title(phone),
        }
        message["segments"] = segments(message["text"])
        self.incoming.setdefault(phone, []).append(message)
        if not self.is_open(phone):
            self.unread[phone] = self.unread.get(phone, 0) + 1
        return message

    def title(self, phone: str) -> str:
        """What the chat list and header show: the saved name, else the number."""
        return self.names.get(phone) or f"+{phone}"

    def open_page(self, phone: str | None) -> str:
        """A page was rendered (showing `phone`'s chat, or none): it reads that chat."""
        token = secrets.token_hex(8)
        self.pages[token] = (phone or "", time.monotonic())
        if phone:
            self.unread.pop(phone, None)
        return token

    def touch(self, token: str | None) -> None:
        if token in self.pages:
            self.pages[token] = (self.pages[token][0], time.monotonic())

    def close_page(self, token: str | None) -> None:
        self.pages.pop(token or "", None)

    def is_open(self, phone: str) -> bool:
        now = time.monotonic()
        return any(p == phone and now - seen < PAGE_TTL for p, seen in self.pages.values())

    def rows(self, outgoing: list[dict]) -> list[dict]:
        """The chat list, most recent activity first: title, preview, unread count."""
        last: dict[str, tuple[float, str]] = {}
        for m in outgoing:
            last[m["phone"]] = max(last.get(m["phone"], (0.0, "")), (m["at"], m["text"] or ""))
        for phone, messages in self.incoming.items():
            m = messages[-1]
            last[phone] = max(last.get(phone, (0.0, "")), (m["at"], m["text"] or m["media"]))
        order = sorted(last.items(), key=lambda item: item[1][0], reverse=True)
        return [
            {
                "phone": phone,
                "title": self.title(phone),
                "preview": preview,
                "unread": self.unread.get(phone, 0),
            }
            for phone, (_, preview) in order
        ]

    def history(self, phone: str, outgoing: list[dict]) -> list[dict]:
        """A chat's bubbles in time order: outgoing (with their 1-based index) and incoming."""
        items = [{**m, "dir": "out", "index": i} for i, m in enumerate(outgoing, 1)]
        items += [{**m, "dir": "in"} for m in self.incoming.get(phone, [])]
        return sorted(items, key=lambda m: m["at"])
