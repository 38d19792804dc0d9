"""WhatsApp Web's chat list, as a page object: which chats are unread, and opening one by its row.

The list is virtualised: only about 20 rows exist in the page, the most recent first, so an
unread chat that a campaign's own sends have pushed further down is not in it. The Unread
filter chip above the list lists every unread chat; where the page has no such chip (an older
build, or its locators no longer match), the list pane is scrolled through instead, a pane
at a time, letting the page draw the rows of each. The All chip is selected again after
reading, so the page is left as the sender expects it.
"""

from __future__ import annotations

from selenium.common.exceptions import JavascriptException

from .locators import Locators

SHOW_WAIT = 2.0  # seconds a chip or an opened chat has to show that it took
SCAN_PANES = 10  # panes scrolled through, at most, when there is no Unread chip
SETTLE_MS = 60  # for the page to draw the rows of a pane just scrolled to

# [title, unread count] of each chat row (of those in the page) with an unread badge; null
# without a chat list.
CHATS_JS = """
const list = find('chat_list');
if (!list) return null;
const out = [];
for (const row of findAll('chat_row', list)) {
  const badge = find('unread_badge', row), title = find('chat_title', row);
  if (badge) out.push([title ? title.getAttribute('title') || title.textContent : '',
                       parseInt(badge.textContent, 10) || 1]);
}
return out;
"""
# Open a chat by its row, found and clicked in one script so a re-sorted list cannot make
# us click a row that moved.
CLICK_JS = """
const list = find('chat_list');
for (const row of list ? findAll('chat_row', list) : []) {
  const title = find('chat_title', row);
  if (title && (title.getAttribute('title') || title.textContent) === ARGS[0]) {
    title.click();
    return true;
  }
}
return false;
"""
HEADER_JS = """
const h = find('chat_header_title');
return !!h && (h.getAttribute('title') || h.textContent) === ARGS[0];
"""
# Whether the filter chip ARGS[0] (a locator name) is selected, clicking it first when ARGS[1]
# says so and it is not; null when the page has no such chip. Never clicks a selected chip:
# clicking one again may turn its filter off.
FILTER_JS = """
const chip = find(ARGS[0]);
if (!chip) return null;
const on = () => ['aria-selected', 'aria-pressed', 'aria-checked']
  .some((name) => chip.getAttribute(name) === 'true');
if (!on() && ARGS[1]) chip.click();
return on();
"""
# The list scrolled through from the top, a pane at a time (ARGS: title, want, panes,
# settle ms). With a title: click that chat's row, true; false when not found. With null:
# [title, unread count] of unread rows, until `want` are found. Then back to the top.
SCAN_JS = """
const done = ARGS.pop(), [title, want, panes, settle] = ARGS;
const list = find('chat_list');
if (!list) return done(null);
const pane = find('chat_list_pane') || list;
const out = [], names = new Set();
let left = panes;
function look() {
  try {
    for (const row of findAll('chat_row', list)) {
      const head = find('chat_title', row);
      const name = head ? head.getAttribute('title') || head.textContent : '';
      if (title !== null) {
        if (head && name === title) { head.click(); return done(true); }
      } else if (!names.has(name) && find('unread_badge', row)) {
        names.add(name);
        out.push([name, parseInt(find('unread_badge', row).textContent, 10) || 1]);
      }
    }
    const end = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 1;
    if (end || --left <= 0 || (title === null && out.length >= want)) {
      pane.scrollTop = 0;
      return done(title === null ? out : false);
    }
    pane.scrollTop += Math.max(pane.clientHeight * 0.8, 1);
    setTimeout(look, settle);
  } catch (e) {
    done({error: String(e)});  // a broken locator: said at once, not at the script timeout
  }
}
if (pane.scrollTop > 0) { pane.scrollTop = 0; setTimeout(look, settle); } else look();
"""


class ChatList:
    """The chat list of the page the driver shows.

    Filtering it (the Unread chip, or scrolling) makes the page draw the list anew, twice a
    read, so it is done only when asked (`sweep`); otherwise the unread rows the page draws
    anyway are read as they are, which costs the idle browser nothing.
    """

    def __init__(self, locators: Locators):
        self.locators = locators
        self.filtered = False

    def unread(self, driver, want: int, sweep: bool = True) -> list[list] | None:
        """[title, unread count] of unread chats, most recent first (at least `want` where
        there are as many, when `sweep`ing); None when the page shows no chat list."""
        self.filtered = sweep
        if not sweep:
            return self.locators.run(driver, CHATS_JS)
        if self._select(driver, "chat_filter_unread"):
            return self.locators.run(driver, CHATS_JS)
        return self._scan(driver, None, want)

    def open(self, driver, title: str) -> bool:
        """Open the chat whose row is titled `title`; True once the chat's header names it."""
        if self.filtered:
            self._select(driver, "chat_filter_unread")  # the page may have been reloaded since
        clicked = self.locators.run(driver, CLICK_JS, title) or self._scan(driver, title, 0)
        return bool(clicked) and bool(self.locators.wait(driver, HEADER_JS, SHOW_WAIT, title))

    def show_all(self, driver) -> None:
        """Back to the whole list (the All chip), as the page was before a sweep."""
        if self.filtered:
            self._select(driver, "chat_filter_all")
            self.filtered = False

    def _select(self, driver, chip: str) -> bool:
        """Select a filter chip; False when the page has none, or it does not take."""
        selected = self.locators.run(driver, FILTER_JS, chip, True)
        if selected is None:
            return False
        return bool(selected or self.locators.wait(driver, FILTER_JS, SHOW_WAIT, chip, False))

    def _scan(self, driver, title: str | None, want: int):
        answer = self.locators.run_async(driver, SCAN_JS, title, want, SCAN_PANES, SETTLE_MS)
        if isinstance(answer, dict):
            raise JavascriptException(f"scrolling the chat list failed: {answer.get('error')}")
        return answer
