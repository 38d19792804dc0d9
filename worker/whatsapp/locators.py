"""Locators as data: each logical element is an ordered list of alternatives.

WhatsApp Web changes its markup several times a year; when the first alternative stops
matching, the next one still does, and the self-check names elements for which none does.

Lookups run inside the page (worker/whatsapp/page.js): every WebDriver command is a round trip to
ChromeDriver and into the browser, so trying four alternatives with find_elements could cost
four, and a wait that polls from Python sleeps between round trips. Here a lookup is one
script whatever the number of alternatives, and a wait polls in the page every 25 ms and
answers the moment its condition holds (docs/BENCHMARKS.md, "The browser path").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException
from selenium.webdriver.remote.webelement import WebElement

REQUIRED = (
    "qr_canvas",
    "app_shell",
    "compose_box",
    "send_button",
    "attach_button",
    "file_input_media",
    "file_input_document",
    "caption_box",
    "media_send_button",
    "invalid_modal",
    "modal_button",
    "use_here_button",
    "outgoing_bubble",
    "bubble_text",
    "tick_done",
    "tick_pending",
    "tick_error",
)

PAGE_JS = (Path(__file__).with_name("page.js")).read_text(encoding="utf-8")
# An in-page wait: run check() every POLL_MS until it returns something truthy or the time
# is up. Errors are caught and reported, or an exception in a timer would go unnoticed until
# the script timeout.
WAIT_JS = """
const done = ARGS.pop(), until = Date.now() + ARGS.shift();
function check() { %s }
(function look() {
  let result;
  try { result = check(); } catch (e) { return done(['error', String(e)]); }
  if (result) return done(['ok', result]);
  if (Date.now() >= until) return done(null);
  setTimeout(look, %d);
})();
"""
POLL_MS = 25
WAIT_SLICE = 1.0  # seconds one in-page wait runs before reporting back to Python
ANY_OF_JS = "for (const n of ARGS[0]) { const e = find(n); if (e) return [n, e]; } return null;"


class LocatorsError(ValueError):
    """The selectors file is missing, not JSON, or lacks an element."""


class Locators:
    """Finds logical page elements by trying their alternatives in order."""

    def __init__(self, table: dict[str, list[str]]):
        missing = [name for name in REQUIRED if not table.get(name)]
        if missing:
            raise LocatorsError(f"selectors file lacks: {', '.join(missing)}")
        self.table = table

    @classmethod
    def load(cls, path: str | Path) -> Locators:
        """Read a selectors JSON file (keys starting with `_` are comments)."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LocatorsError(f"cannot read SELECTORS_FILE {str(path)!r}: {exc}") from None
        if not isinstance(raw, dict):
            raise LocatorsError(f"SELECTORS_FILE {str(path)!r} must hold a JSON object")
        table = {}
        for name, alternatives in raw.items():
            if name.startswith("_"):
                continue
            if isinstance(alternatives, str):
                alternatives = [alternatives]
            if not isinstance(alternatives, list) or not all(
                isinstance(a, str) for a in alternatives
            ):
                raise LocatorsError(f"selector {name!r} must be a list of strings")
            table[name] = alternatives
        return cls(table)

    def run(self, driver, body: str, *args):
        """Run the JS `body` in the page with page.js's helpers; its ARGS are `args`."""
        return driver.execute_script(PAGE_JS + body, self.table, *args)

    def run_async(self, driver, body: str, *args):
        """Run the JS `body` as `run` does, for its answer passed to the callback `done`.

        The body must call `done(value)` (the last of ARGS: `const done = ARGS.pop()`)
        within the driver's script timeout; for work that waits for the page between steps.
        """
        return driver.execute_async_script(PAGE_JS + body, self.table, *args)

    def wait(self, driver, body: str, seconds: float, *args):
        """Run the JS `body` in the page every 25 ms until it returns something truthy.

        That value is returned, or None when `seconds` pass first. The body sees `args` as
        ARGS and page.js's find/findAll/read.
        """
        script = PAGE_JS + WAIT_JS % (body, POLL_MS)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                answer = driver.execute_async_script(
                    script, self.table, int(min(left, WAIT_SLICE) * 1000), *args
                )
            except (JavascriptException, TimeoutException) as exc:
                # The page navigated away mid-wait (ChromeDriver says "document unloaded" or,
                # in newer versions, "script timeout" at once): ask the page that replaced it.
                if isinstance(exc, JavascriptException) and "unloaded" not in str(exc.msg):
                    raise
                continue
            if answer is not None:
                kind, value = answer
                if kind == "error":
                    raise JavascriptException(f"in-page wait failed: {value}")
                return value
        return None

    def wait_for_any(self, driver, names, seconds: float) -> tuple[str, object] | None:
        """The first of `names` (checked in order) to be on the page within `seconds`."""
        found = self.wait(driver, ANY_OF_JS, seconds, list(names))
        return (found[0], found[1]) if found else None

    def find_all(self, root, name: str) -> list:
        """Elements of the first alternative that matches anything under `root`."""
        driver, element = _split(root)
        return self.run(driver, "return findAll(ARGS[0], ARGS[1]);", name, element) or []

    def find(self, root, name: str):
        """The first element of the first matching alternative, or None."""
        driver, element = _split(root)
        return self.run(driver, "return find(ARGS[0], ARGS[1]);", name, element)

    def missing(self, root, names) -> list[str]:
        """The names for which no alternative matches: the start-up self-check."""
        driver, element = _split(root)
        try:
            return self.run(
                driver, "return ARGS[0].filter((n) => !find(n, ARGS[1]));", list(names), element
            )
        except WebDriverException:
            return list(names)


def _split(root) -> tuple[object, WebElement | None]:
    """(driver, element) for a lookup under an element, (driver, None) for the whole page."""
    if isinstance(root, WebElement):
        return root.parent, root
    return root, None
