"""The WhatsApp Web session: one Chromium with a persistent profile, and what state it is in.

The profile keeps the login across restarts, so a crashed or recycled browser comes back
logged in without a new QR scan. The QR, when shown, is captured as PNG for /app.
"""

from __future__ import annotations

import logging

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver
from urllib3.exceptions import HTTPError as Urllib3Error

from .. import transport as t
from .browser import BrowserUnavailable, build_driver, is_hung, kill_tree, process_tree
from .locators import Locators

log = logging.getLogger("worker.session")

# How long to give a freshly opened page to show either the QR or the app.
BOOT_WAIT = 20.0
LOGGED_OUT_MARK = "post_logout=1"
# Seconds a browser that answers nothing is given to quit, or to prove it is alive.
QUICK_ANSWER = 5.0


class WhatsAppSession:
    """Owns the browser: starts it, tells the session state, restarts and recycles it."""

    def __init__(self, settings, locators: Locators, driver_factory=None):
        self.settings, self.locators = settings, locators
        self.base_url = settings.whatsapp_web_url.rstrip("/")
        self.driver_factory = driver_factory or self._build
        self.driver: WebDriver | None = None
        self.loaded = False
        self.sends = 0
        self._qr_ref, self._qr_png = None, None

    def _build(self):
        s = self.settings
        return build_driver(
            chrome_binary=s.chrome_binary,
            chromedriver_path=s.chromedriver_path,
            profile_dir=s.chrome_profile_dir,
            headless=s.headless,
        )

    def start(self) -> None:
        """Open Chromium on WhatsApp Web (no-op when it is already open)."""
        if self.driver is not None:
            return
        log.info("starting Chromium with profile %s", self.settings.chrome_profile_dir)
        self.driver = driver = self.driver_factory()
        page_load = max(self.settings.send_timeout, 10)
        driver.set_page_load_timeout(page_load)
        # A browser that stops answering (frozen, out of memory, stopped) would hold any
        # command forever: Selenium waits on ChromeDriver without a limit of its own. No
        # command of ours takes longer than a page load, so twice that means it is hung.
        _set_command_timeout(driver, 2 * page_load)
        self.sends = 0
        self.loaded = False

    def state(self) -> t.SessionState:
        """Logged in, QR required (with the QR image), or unavailable (with why)."""
        try:
            self.start()
        except BrowserUnavailable as exc:
            return t.SessionState(t.UNAVAILABLE, str(exc))
        except WebDriverException as exc:
            self.close()
            return t.SessionState(t.UNAVAILABLE, f"Chromium did not start: {exc.msg or exc}")
        try:
            if not self.loaded:
                self.browser.get(self.base_url)
                self.loaded = True
        except WebDriverException as exc:
            # No network path to WhatsApp: keep the browser, say so, try the page again later.
            return t.SessionState(
                t.UNAVAILABLE,
                f"cannot reach {self.base_url}: {(exc.msg or str(exc)).splitlines()[0]}",
            )
        except (Urllib3Error, OSError) as exc:
            return self._restart(exc)
        try:
            return self._read_state()
        except (WebDriverException, Urllib3Error, OSError) as exc:
            return self._restart(exc)

    def _restart(self, exc: Exception) -> t.SessionState:
        # A dead or hung browser: drop it; the next check starts a fresh one.
        log.warning(
            "browser is not answering (%s); restarting it", getattr(exc, "msg", None) or exc
        )
        self.close(hung=is_hung(exc))
        return t.SessionState(t.UNAVAILABLE, "browser restarted")

    def _read_state(self) -> t.SessionState:
        driver = self.browser
        self._take_over_if_asked()
        found = self._wait_for_page(BOOT_WAIT if self.sends == 0 else 5.0)
        if found is None:
            return t.SessionState(t.UNAVAILABLE, "WhatsApp Web did not load (no network path?)")
        name, element = found
        if name == "qr_canvas":
            return t.SessionState(
                t.QR_REQUIRED,
                "Scan the QR code with WhatsApp on your phone: Settings → Linked devices",
                self._qr_image(element),
            )
        if LOGGED_OUT_MARK in driver.current_url:
            driver.get(self.base_url)  # logged out but the page still shows the old shell
            return t.SessionState(t.UNAVAILABLE, "logged out; reloading")
        return t.SessionState(t.LOGGED_IN)

    def _wait_for_page(self, seconds: float):
        return self.locators.wait_for_any(self.browser, ("qr_canvas", "app_shell"), seconds)

    def _qr_image(self, canvas) -> bytes | None:
        """PNG of the QR canvas, taken again only when its payload (data-ref) rotates."""
        ref = self.browser.execute_script(
            "const h = arguments[0].closest('[data-ref]'); return h ? h.dataset.ref : null;", canvas
        )
        if ref is None or ref != self._qr_ref or self._qr_png is None:
            self._qr_png = canvas.screenshot_as_png
            self._qr_ref = ref
        return self._qr_png

    def _take_over_if_asked(self) -> None:
        # "WhatsApp is open in another window": this worker is the account's sender, so it
        # takes the session back rather than sit idle with a queue full of messages.
        button = self.locators.find(self.browser, "use_here_button")
        if button is not None:
            log.warning("WhatsApp was opened elsewhere; clicking 'Use here' to take it back")
            button.click()
            if not self.locators.wait(self.browser, "return !find('use_here_button');", 5):
                log.warning("the 'Use here' prompt did not go away")

    @property
    def browser(self) -> WebDriver:
        """The open browser; only asked for after `start`, which opens one or raises."""
        if self.driver is None:
            raise BrowserUnavailable("the browser is not open")
        return self.driver

    def is_alive(self) -> bool:
        """True when the browser still answers commands."""
        if self.driver is None:
            return False
        timeout = _set_command_timeout(self.driver, QUICK_ANSWER)
        try:
            self.driver.current_url  # noqa: B018 - any round trip proves it is alive
            return True
        except Exception:  # dead driver: connection refused, invalid session, timeout, ...
            return False
        finally:
            _set_command_timeout(self.driver, timeout)

    def count_send(self) -> None:
        """One more message through this browser; recycle it when it has sent its share."""
        self.sends += 1
        if (
            self.settings.browser_recycle_after
            and self.sends >= self.settings.browser_recycle_after
        ):
            log.info("recycling Chromium after %d messages to keep memory flat", self.sends)
            self.close()

    def close(self, hung: bool = False) -> None:
        """Quit the browser (the profile, and so the login, stays on disk).

        `hung`: it stopped answering, so asking it to quit would only wait; it is killed.
        """
        driver, self.driver = self.driver, None
        self._qr_ref = self._qr_png = None
        if driver is None:
            return
        service = getattr(driver, "service", None)
        process = getattr(service, "process", None)
        tree = process_tree(process.pid) if process is not None else []
        if not hung:
            _set_command_timeout(driver, QUICK_ANSWER)
            try:
                driver.quit()
            except Exception:  # already dead: nothing left to quit
                log.debug("browser was already gone")
        # A hung or stopped Chromium ignores quit. Left alive it would keep the profile
        # locked, and no new Chromium could open it: the login would be lost until a reboot.
        killed = kill_tree(tree, grace=0 if hung else QUICK_ANSWER)
        if killed:
            log.warning("killed %d browser process(es) that did not quit", killed)


def _set_command_timeout(driver, seconds: float | None) -> float | None:
    """Limit how long one WebDriver command may take; the limit it had before."""
    config = getattr(getattr(driver, "command_executor", None), "client_config", None)
    if config is None:  # not a Selenium driver (a test double): nothing to limit
        return None
    before, config.timeout = config.timeout, seconds
    return before
