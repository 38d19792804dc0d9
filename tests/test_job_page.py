"""The campaign page in real headless Chromium at a phone's width: its outcome at a glance.

No worker here: the test sends, fails and receives through the queue at chosen times, so the
hours the chart shows are known, and the page is read as a person would read it.
"""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from app import create_app
from message_queue import NewJob, Queue, Recipient
from tests.fakes import send_next
from tests.test_app_browser import AppServer, by_id, no_alert, page_settings, sign_in, wait
from worker.whatsapp.browser import build_driver

pytestmark = pytest.mark.browser

HOUR = 3600.0
A, B, C, D, E, F = (f"+1415555{i:04d}" for i in range(200, 206))
PHONE = (390, 844)  # an iPhone's CSS width


class Clock:
    """The real time, unless the test holds it at `now` to write rows in the past."""

    def __init__(self):
        self.now: float | None = None

    def __call__(self) -> float:
        return time.time() if self.now is None else self.now


@pytest.fixture(scope="module")
def env(chromium, tmp_path_factory):
    base = tmp_path_factory.mktemp("job-page")
    clock = Clock()
    queue = Queue(page_settings(base).database_path, clock=clock)
    app = create_app(page_settings(base), queue)
    try:
        with AppServer(app) as server:
            yield server, queue, clock
    finally:
        queue.close()


@pytest.fixture(scope="module")
def driver(env, tmp_path_factory):
    profile = tmp_path_factory.mktemp("job-page-browser")
    drv = build_driver(profile_dir=str(profile), headless=True)
    # Headless Chromium keeps windows at least 500 px wide; a phone's viewport is emulated.
    metrics = {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True}
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    yield drv
    drv.quit()


def numbers(driver) -> dict[str, str]:
    """The outcome's six numbers as shown, read in one go."""
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#outcome [data-total]')]"
        ".map(n => [n.dataset.total, n.querySelector('dd').innerText]))"
    )


def bars(driver, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def test_the_outcome_shows_numbers_and_bars_and_follows_new_replies(env, driver):
    server, queue, clock = env
    # Times from the start of the hour: two sends a minute apart must share their hour bar
    # whenever the test runs (at 14:59:47, "3 h ago" and a minute later were two hours).
    hour = time.time() // HOUR * HOUR
    rows = [Recipient(phone=p, text="hi", channel="whatsapp") for p in (A, B, C, D, E, F)]
    job, _ = queue.create_job(NewJob(channel="whatsapp", template="hi", name="Outcome"), rows)
    send_next(queue, clock, hour - 3 * HOUR + 60)  # A
    send_next(queue, clock, hour - 3 * HOUR + 120)  # B
    send_next(queue, clock, hour - HOUR + 60)  # C
    send_next(queue, clock, hour - HOUR + 120, fail="not_on_whatsapp")  # D
    queue.record_inbound(A, "whatsapp", "w-1", "thanks!", hour - HOUR + 180)
    queue.add_suppressions([F], "manual")  # F's row: cancelled, opted out; E still waits
    clock.now = None

    driver.get(f"{server.url}/app/jobs/{job['id']}")
    sign_in(driver, server.url)
    by_id(driver, "outcome")
    expected = {
        "queued": "6",
        "sent": "3",
        "delivered": "0",
        "replied": "1",
        "opted_out": "1",
        "failed": "1",
    }
    wait(driver).until(lambda d: numbers(d) == expected)
    by_id(driver, "activity")  # the chart, drawn once the activity came
    assert bars(driver, "#activity-sends svg rect.bar-sent") == 2  # 3 h ago, 1 h ago
    assert bars(driver, "#activity-sends svg rect.bar-failed") == 1
    assert bars(driver, "#activity-replies svg rect.bar-replies") == 1
    assert "at most 2 per hour" in driver.find_element(By.ID, "activity-sends-label").text
    fits = driver.execute_script(
        "return [innerWidth, document.documentElement.scrollWidth,"
        " document.getElementById('activity-sends').getBoundingClientRect().width]"
    )
    assert fits[0] <= PHONE[0] and fits[1] <= fits[0] and fits[2] > 200, fits

    # A reply arriving now shows up with the page's own polling, number and bar.
    queue.record_inbound(B, "whatsapp", "w-1", "me too", time.time())
    wait(driver).until(lambda d: numbers(d)["replied"] == "2")
    wait(driver).until(lambda d: bars(d, "#activity-replies svg rect.bar-replies") == 2)

    assert no_alert(driver)
    # No script error and no Content-Security-Policy refusal.
    assert [e for e in driver.get_log("browser") if e["source"] != "network"] == []
