"""/app's careful sending in real headless Chromium: a spintax message shows its variants, a
start time and a lower cap are taken from the form, the estimate speaks of the caps, and the
scheduled campaign says when it starts and can be started at once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from selenium.webdriver.common.by import By

from app import create_app
from message_queue import Queue, SendingRules
from tests.test_app_browser import AppServer, by_id, page_settings, sign_in, wait
from worker.whatsapp.browser import build_driver

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium, tmp_path):
    settings = page_settings(tmp_path, whatsapp_daily_cap=200, whatsapp_hourly_cap=60)
    queue = Queue(settings.database, rules=SendingRules.from_settings(settings))
    driver = build_driver(
        profile_dir=str(tmp_path / "browser"), headless=True, window_size=(1280, 900)
    )
    try:
        with AppServer(create_app(settings, queue)) as server:
            yield driver, server.url, queue
    finally:
        driver.quit()
        queue.close()


def test_a_scheduled_capped_campaign_with_variants_from_the_form(page):
    driver, url, queue = page
    driver.get(f"{url}/app/new")
    sign_in(driver, url)
    numbers = "\n".join(f"+5511991{i:06d}" for i in range(300))
    by_id(driver, "numbers").send_keys(numbers)
    by_id(driver, "message").send_keys("{Hi|Hello|Good morning}, see you {soon|tomorrow}!")

    variants = by_id(driver, "variants")
    wait(driver).until(lambda _: variants.text.startswith("6 different texts"))
    estimate = by_id(driver, "estimate")
    wait(driver).until(lambda _: "About 2 days at 200 a day" in estimate.text)

    driver.find_element(By.ID, "daily-cap").send_keys("100")
    wait(driver).until(lambda _: "About 3 days at 100 a day" in estimate.text)

    # The browser's own local time: the page sends it with its offset.
    start = (datetime.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    driver.execute_script(
        "const box = document.getElementById('send-at'); box.value = arguments[0];"
        "box.dispatchEvent(new Event('input', {bubbles: true}));",
        start.strftime("%Y-%m-%dT%H:%M"),
    )
    driver.find_element(By.ID, "start").click()
    wait(driver).until(lambda d: "/app#job-" in d.current_url)
    job_id = driver.current_url.rsplit("#job-", 1)[1]

    job = queue.get_job(job_id)
    assert job["status"] == "scheduled" and job["daily_cap"] == 100
    assert job["send_at"] == start.timestamp()
    texts = {m["text"] for m in queue.list_messages(job_id, limit=300)[0]}
    assert len(texts) > 1 and texts <= {
        f"{a}, see you {b}!" for a in ("Hi", "Hello", "Good morning") for b in ("soon", "tomorrow")
    }

    item = by_id(driver, f"job-{job_id}")
    wait(driver).until(
        lambda _: "Scheduled" in item.find_element(By.CSS_SELECTOR, ".job-status").text
    )
    eta = item.find_element(By.CSS_SELECTOR, ".job-eta")
    wait(driver).until(lambda _: eta.text.startswith("Scheduled: starts at"))
    assert start.strftime("%I:%M") in eta.text  # the browser is en-US: 06:02 PM

    start_now = item.find_element(By.CSS_SELECTOR, "button[data-move='start']")
    assert start_now.is_displayed()
    start_now.click()
    wait(driver).until(lambda _: queue.get_job(job_id)["status"] == "pending")
    wait(driver).until(lambda _: not start_now.is_displayed())
