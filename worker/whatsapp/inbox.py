"""Reading replies in WhatsApp Web: the chat list says which chats are unread; read each once.

The chat list is a page object of its own (chatlist.py): it finds unread chats also where the
list is too long for the page to draw them all.

Opening a chat marks it read, so a chat is opened once per batch of replies and what it shows
is handed on at once. A reply in the chat that is already open (the one a send just used) is
shown there without a badge, so that chat is read first, without navigating. Each chat
remembers the newest bubble handed on; after a restart the queue says which bubbles (by their
`data-id`) are stored already. Replies are keyed by the number in the bubble's `data-id`, never
by the chat's title, which may be a saved name.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from selenium.common.exceptions import WebDriverException
from urllib3.exceptions import HTTPError as Urllib3Error

from .. import transport as t
from ..errors import SendError
from .chatlist import ChatList
from .locators import Locators

log = logging.getLogger("worker.inbox")

MAX_CHATS = 5  # unread chats opened per poll; the rest wait for the next one
# Unread chats below the rows the page draws are found by filtering the list, every this many
# seconds (and at every poll while such a sweep leaves some unread behind).
FILTER_EVERY = 20.0
BUDGET = 2.0  # seconds a poll may spend opening chats, so the pacing barely notices
OPEN_WAIT = 2.0  # seconds an opened unread chat has to show its incoming bubbles
# A chat read for the first time hands on what is newer than this, not years of history
# (an old STOP read as new would suppress a number that has long since written START).
HORIZON = 2 * 86400.0
MEDIA_KINDS = ["video", "audio", "document", "image"]  # a video also shows an image
INBOX_CHECK = ("chat_list", "chat_row", "chat_title")
# The names of INBOX_CHECK that match nothing in a chat list that shows something (rows are
# looked for inside it); null while there is no list or it is empty, so not yet checkable.
CHECK_JS = """
const list = find('chat_list');
if (!list || !list.firstElementChild) return null;
return ARGS[0].filter((name) => !find(name, name === 'chat_list' ? null : list));
"""
# What ends a poll early; what it read before stays read (those chats are marked read now).
READ_ERRORS = (WebDriverException, Urllib3Error, OSError, SendError)

# [data-id, text, data-pre-plain-text, kind] of each incoming bubble of the open chat, oldest
# first. Emoji are images: the text is rebuilt from text nodes plus each emoji's alt text.
BUBBLES_JS = """
function plain(node, emoji) {
  if (node.nodeType === 3) return node.nodeValue;
  if (node.nodeName === 'IMG') return emoji.has(node) ? node.alt || '' : '';
  if (node.nodeName === 'BR') return '\\n';
  let out = '';
  node.childNodes.forEach((child) => {
    const block = child.nodeType === 1 && ['DIV', 'P'].includes(child.nodeName);
    if (block && out && !out.endsWith('\\n')) out += '\\n';
    out += plain(child, emoji);
  });
  return out;
}
const out = [];
for (const bubble of findAll('incoming_bubble')) {
  const holder = bubble.closest('[data-id]'), id = holder ? holder.getAttribute('data-id') : '';
  if (!id || id.startsWith('true_') || (out.length && out[out.length - 1][0] === id)) continue;
  const text = find('bubble_text', bubble), pre = find('pre_plain_text', bubble);
  out.push([id, text ? plain(text, new Set(findAll('emoji_img', bubble))) : '',
            pre ? pre.getAttribute('data-pre-plain-text') : '',
            ARGS[0].find((kind) => find('media_' + kind, bubble)) || 'text']);
}
return out.length || !ARGS[1] ? out : null;
"""
CHAT_ID = re.compile(r"^false_(\d+)@c\.us_")
NUMBER_TITLE = re.compile(r"^\+?[\d\s\-().\u00a0\u202f]{7,}$")
STAMP = re.compile(
    r"\[(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?\s*[Mm]\.?)?,\s*(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})\]"
)


@dataclass(frozen=True)
class Bubble:
    """One incoming bubble as the page shows it."""

    id: str
    text: str
    stamp: str
    kind: str

    def number(self) -> str | None:
        """The chat's number from the bubble's `data-id` (`false_<digits>@c.us_<id>`)."""
        match = CHAT_ID.match(self.id)
        return match.group(1) if match else None


def stamp_time(pre: str, now: float) -> float | None:
    """The minute in `[10:54 PM, 12/9/2025] Ana: ` as local epoch seconds, or None.

    The date's order depends on the locale (M/D/Y, D/M/Y, Y-M-D): the reading nearest to
    `now` (and not a day ahead of it) wins, since the bubbles read are recent.
    """
    match = STAMP.search(pre or "")
    if not match:
        return None
    hour, minute, half, a, b, c = match.groups()
    hour = int(hour) % 12 + (12 if half in ("p", "P") else 0) if half else int(hour)
    if len(a) == 4:
        dates = [(int(a), int(b), int(c))]
    else:
        year = int(c) + (2000 if len(c) <= 2 else 0)
        dates = [(year, int(b), int(a)), (year, int(a), int(b))]
    times = []
    for year, month, day in dates:
        try:
            at = time.mktime((year, month, day, hour, int(minute), 0, 0, 0, -1))
        except (OverflowError, ValueError):
            continue
        if 1 <= month <= 12 and 1 <= day <= 31 and at <= now + 86400:
            times.append(at)
    return min(times, key=lambda at: abs(now - at)) if times else None


def received_times(bubbles: list[Bubble], now: float) -> list[float]:
    """When each new bubble came, in whole seconds, distinct and in order.

    The page gives the minute only; within it, the moment we first saw the bubble. Two
    equal texts read together must not fall in one second, or the queue would keep one.
    """
    times = []
    for bubble in bubbles:
        minute = stamp_time(bubble.stamp, now)
        at = now if minute is None else (min(now, minute + 59) if minute <= now else minute)
        times.append(float(int(at)))
    for i in range(len(times) - 2, -1, -1):
        times[i] = min(times[i], times[i + 1] - 1)
    return times


def title_number(title: str) -> str | None:
    """The digits of a chat title that is a number (an unsaved contact), else None."""
    return re.sub(r"\D", "", title) if NUMBER_TITLE.match(title.strip()) else None


def nothing_stored(phone: str, ids: list[str]) -> set[str]:
    """The `seen` of a caller without a queue: every bubble is new to it."""
    return set()


class ChatInbox:
    """Finds unread chats, opens each once, and turns their new bubbles into `Inbound`s."""

    def __init__(self, locators: Locators, clock=time.time, monotonic=time.monotonic):
        self.locators, self.chats = locators, ChatList(locators)
        self.clock, self.monotonic = clock, monotonic
        self.newest: dict[str, str] = {}  # chat number -> newest bubble id handed on
        self.seen = nothing_stored  # the current poll's lookup of stored bubbles
        self.problem: str | None = None
        self.error: Exception | None = None  # what ended the last poll early
        self.checked = False
        self.next_sweep = 0.0  # monotonic time of the next filtered read of the list

    def poll(self, driver, open_chat, stopping, seen=None) -> list[t.Inbound]:
        """What arrived since the last poll: the open chat first, then up to MAX_CHATS unread.

        `open_chat(digits)` opens a chat by URL, as the sender does; `stopping()` says when to
        open no further chat; `seen(phone, ids)` says which bubble ids the queue already holds
        from `phone` (E.164). An error ends the poll with what was read so far (see `error`).
        """
        found: list[t.Inbound] = []
        self.error = None
        self.seen = seen or nothing_stored
        try:
            self._poll(driver, open_chat, stopping, found)
        except READ_ERRORS as exc:
            log.warning("reading replies stopped early: %s", exc)
            self.error = exc
        return found

    def _poll(self, driver, open_chat, stopping, found: list[t.Inbound]) -> None:
        deadline = self.monotonic() + BUDGET
        found += self._take(self._bubbles(driver, wait=False), None)
        self._self_check(driver)  # on the list as the page shows it, before it is filtered
        sweep = self.monotonic() >= self.next_sweep
        try:
            rows = self.chats.unread(driver, MAX_CHATS, sweep)
            if rows is None:
                self.problem = "cannot read the chat list (nothing matches chat_list)"
                return
            self.problem = None
            read = 0
            for title, _count in rows[:MAX_CHATS]:
                if stopping() or self.monotonic() > deadline:
                    break
                found += self._read_chat(driver, open_chat, title)
                read += 1
            if sweep:  # again at the next poll while it left unread chats behind
                self.next_sweep = self.monotonic() + (FILTER_EVERY if read == len(rows) else 0)
        finally:
            self.chats.show_all(driver)  # as the sender left it: the list unfiltered

    def _read_chat(self, driver, open_chat, title: str) -> list[t.Inbound]:
        digits = title_number(title)
        if digits:
            open_chat(digits)
        elif not self.chats.open(driver, title):
            log.warning("could not open the unread chat %r", title)
            return []
        bubbles = self._bubbles(driver, wait=True)
        if not bubbles:
            log.warning("unread chat %r shows no incoming bubble: check incoming_bubble", title)
        return self._take(bubbles, digits)

    def _bubbles(self, driver, wait: bool) -> list[Bubble]:
        if wait:
            rows = self.locators.wait(driver, BUBBLES_JS, OPEN_WAIT, MEDIA_KINDS, True)
        else:
            rows = self.locators.run(driver, BUBBLES_JS, MEDIA_KINDS, False)
        return [Bubble(*row) for row in rows or []]

    def _take(self, bubbles: list[Bubble], opened: str | None) -> list[t.Inbound]:
        """The bubbles of one chat not handed on before, as Inbound, oldest first."""
        if not bubbles:
            return []
        number = bubbles[-1].number() or opened
        if number is None:  # an @lid chat opened by its row: no number to key it by
            log.warning("a chat's messages carry no number (%s); not read", bubbles[-1].id)
            return []
        ids = [b.id for b in bubbles]
        last = self.newest.get(number)
        if last in ids:
            new = bubbles[ids.index(last) + 1 :]
        else:  # first look at this chat since start: the queue knows what is stored
            now = self.clock()
            recent = [b for b in bubbles if (stamp_time(b.stamp, now) or now) >= now - HORIZON]
            stored = self.seen(f"+{number}", [b.id for b in recent])
            new = [b for b in recent if b.id not in stored]
        self.newest[number] = ids[-1]
        times = received_times(new, self.clock())
        return [
            t.Inbound(f"+{number}", b.text, at, provider_id=b.id, kind=b.kind)
            for b, at in zip(new, times, strict=True)
        ]

    def _self_check(self, driver) -> None:
        """Once chats are listed: name the chat-list elements none of whose locators match."""
        if self.checked:
            return
        missing = self.locators.run(driver, CHECK_JS, list(INBOX_CHECK))
        if missing is None:  # no chat yet: an empty list proves nothing either way
            return
        self.checked = True
        if missing:
            log.warning(
                "selectors self-check: nothing matches %s in the chat list; update SELECTORS_FILE",
                ", ".join(missing),
            )
