"""4a. The browser path: messages per minute through the real worker vs a bare Selenium script.

Both drive the same Chromium build with the same flags
(worker.whatsapp.browser.build_driver) against
the WhatsApp Web stand-in, which runs in a process of its own with ticks at once (tick_delay
0) and every pacing delay at 0. The rate is taken from the stand-in's own arrival times, first
message to last, so the browser's start-up is left out of both. Runs alternate.

Product: an in-process Worker + WhatsAppTransport on a real queue. Floor: open the chat by URL,
wait for the send button, click, wait for the tick; once polling every 10 ms, once every 0.1 s
(WebDriverWait's usual interval). The faster of the two in each repeat is that repeat's floor.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from .common import API_KEY, ROOT, median, say, wait_for
from .procs import Standin
from .queue_contestants import product_fill

GOAL_RATIO = 1.2
WORKER_DIR = str(ROOT / "worker")
TEXT = "message {i}"


class CountingDriver:
    """Builds drivers as the worker does; counts and times every WebDriver command they run.

    Each command is also charged to the product function that issued it (the innermost frame
    in worker/ outside the generic locators.py), which is the profile of the browser path.
    """

    def __init__(self, profile_dir: str):
        self.profile_dir = profile_dir
        self.commands: Counter = Counter()
        self.sites: Counter = Counter()
        self.site_seconds: Counter = Counter()
        self.drivers = []

    def __call__(self):
        from worker.whatsapp.browser import build_driver

        driver = build_driver(profile_dir=self.profile_dir)
        inner = driver.execute

        def execute(command, params=None):
            start = time.perf_counter()
            try:
                return inner(command, params)
            finally:
                site = f"{_caller()} {command}"
                self.commands[command] += 1
                self.sites[site] += 1
                self.site_seconds[site] += time.perf_counter() - start

        driver.execute = execute  # elements call their parent's execute: they are counted too
        self.drivers.append(driver)
        return driver


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(WORKER_DIR) and not path.endswith("locators.py"):
            return f"{Path(path).stem}.{frame.f_code.co_qualname}"
        frame = frame.f_back
    return "bench"


def rate_per_minute(messages: list[dict], n: int) -> float:
    """Messages a minute between the first and the last arrival at the stand-in."""
    if len(messages) != n:
        raise RuntimeError(f"the stand-in received {len(messages)} messages, not {n}")
    times = sorted(m["at"] for m in messages)
    return (n - 1) / (times[-1] - times[0]) * 60


def product_run(standin: Standin, n: int) -> dict:
    from config import Settings
    from message_queue import Queue
    from worker.whatsapp import WhatsAppTransport
    from worker.worker import Worker

    standin.reset()
    with tempfile.TemporaryDirectory(prefix="bench-wa-") as tmp:
        product_fill(Path(tmp), n)
        settings = Settings(
            api_key=API_KEY,
            database_path=str(Path(tmp) / "queue.db"),
            whatsapp_web_url=standin.url,
            chrome_profile_dir=f"{tmp}/profile",
            selectors_file=str(ROOT / "worker" / "selectors.json"),
            min_delay=0,
            max_delay=0,
            long_pause_every=0,
            long_pause_min=0,
            long_pause_max=0,
            send_timeout=10,
            worker_id="bench-wa",
        )
        factory = CountingDriver(settings.chrome_profile_dir)
        queue, stop = Queue(settings.database_path), threading.Event()
        worker = Worker(
            settings,
            queue,
            WhatsAppTransport(settings, driver_factory=factory),
            stop,
            idle_poll=0.2,
            session_poll=0.2,
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: standin.count() >= 1, 60, "the first message", 0.02)
            at_first = sum(factory.commands.values())
            wait_for(lambda: standin.count() >= n, 30 + n * 2, f"{n} messages", 0.1)
            per_message = (sum(factory.commands.values()) - at_first) / (n - 1)
            sites = {
                k: (c / n, factory.site_seconds[k] / n * 1000)
                for k, c in factory.sites.most_common()
            }
        finally:
            stop.set()
            thread.join(30)
            queue.close()
    return {
        "rate": rate_per_minute(standin.messages(), n),
        "commands": per_message,
        "sites": sites,
        "command_ms": _ms_per_command(factory),
    }


def floor_run(standin: Standin, n: int, poll: float) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    standin.reset()
    with tempfile.TemporaryDirectory(prefix="bench-floor-wa-") as tmp:
        factory = CountingDriver(f"{tmp}/profile")
        driver = factory()
        try:
            driver.get(standin.url)
            WebDriverWait(driver, 30, poll).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#pane-side")
            )
            at_first = None
            for i in range(n):
                phone = f"55119{60_000_000 + i}"
                driver.get(f"{standin.url}/send?phone={phone}&text={quote(TEXT.format(i=i))}")
                button = WebDriverWait(driver, 10, poll).until(
                    lambda d: d.find_elements(
                        By.CSS_SELECTOR, "#main footer button[aria-label='Send']"
                    )
                )[0]
                button.click()
                WebDriverWait(driver, 10, poll).until(
                    lambda d: d.find_elements(
                        By.CSS_SELECTOR, "div.message-out span[data-icon='msg-check']"
                    )
                )
                if i == 0:
                    at_first = sum(factory.commands.values())
            per_message = (sum(factory.commands.values()) - at_first) / (n - 1)
        finally:
            driver.quit()
    return {
        "rate": rate_per_minute(standin.messages(), n),
        "commands": per_message,
        "command_ms": _ms_per_command(factory),
    }


def _ms_per_command(factory: CountingDriver) -> float:
    """Mean round trip of one WebDriver command, page loads and clicks left out."""

    def plain(site: str) -> bool:
        return not site.endswith((" get", " clickElement"))

    calls = sum(c for k, c in factory.sites.items() if plain(k))
    seconds = sum(s for k, s in factory.site_seconds.items() if plain(k))
    return seconds / calls * 1000 if calls else 0.0


def run(quick: bool) -> dict:
    n = 12 if quick else 60
    repeats = 3
    runs = {"product": [], "floor": [], "floor_slow": []}
    with Standin(logged_in=True, tick_delay=0) as standin:
        for rep in range(repeats):
            say(f"browser: repeat {rep + 1}/{repeats} ({n} messages each)")
            runs["product"].append(product_run(standin, n))
            runs["floor"].append(floor_run(standin, n, 0.01))
            runs["floor_slow"].append(floor_run(standin, n, 0.1))
    summary = {
        k: {"rate": median([r["rate"] for r in v]), "commands": median([r["commands"] for r in v])}
        for k, v in runs.items()
        if v
    }
    # The floor of a repeat is the faster bare script: under load, polling every 10 ms can
    # take enough CPU from Chromium to lose to polling every 0.1 s.
    ratio = median(
        [
            max(f["rate"], g["rate"]) / p["rate"]
            for p, f, g in zip(runs["product"], runs["floor"], runs["floor_slow"], strict=True)
        ]
    )
    return {
        "n": n,
        "repeats": repeats,
        "runs": runs,
        "summary": summary,
        "slowdown_vs_floor": ratio,
        "goal_met": ratio <= GOAL_RATIO,
        "sites": runs["product"][-1]["sites"],
    }
