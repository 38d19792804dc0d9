"""The Conversations screen of /app: the inbox beside one thread, read and answered in place.

A fast part through Flask's test client (the routes, signed in and out), then the screen in
real headless Chromium against a real threaded server, as test_app_browser.py drives /app:
the list and its filters, a thread's bubbles, a reply sent once however often it is clicked,
a new message showing without a reload. Every wait is an explicit, bounded WebDriverWait.
"""

from __future__ import annotations

import re
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from app import create_app
from message_queue import NewJob, Queue, Recipient
from tests.test_app_browser import AppServer, by_id, no_alert, page_settings, sign_in, wait
from tests.test_app_page import HTML
from tests.test_app_page import sign_in as client_sign_in
from worker.whatsapp.browser import build_driver

ANA, BEN, CAT = "+5511912340001", "+5511912340002", "+5511912340003"
XSS = "<img src=x onerror=alert(1)>"
ORDER_READY = "Your order A-100 is ready."


def said(queue, phone, text, at=None, channel="whatsapp", sender="office-phone") -> None:
    """`phone` writes `text` (stored as a worker stores a reply it read)."""
    queue.record_inbound(phone, channel, sender, text, time.time() if at is None else at)


# ---------------------------------------------------------------- the routes, test client


@pytest.mark.parametrize("path", ["/app/conversations", f"/app/conversations/{ANA[1:]}"])
def test_signed_out_the_conversations_views_show_the_sign_in_form(client, path):
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="sign-in"' in html
    assert f'name="next" value="{path}"' in html  # back here after signing in
    assert "<script" not in html and "conversations.js" not in html


def test_signed_in_the_views_render_the_list_the_thread_and_the_unread_count(client, queue):
    said(queue, ANA, "Oi")
    said(queue, BEN, "Hello")
    queue.set_read(BEN, True)
    assert client_sign_in(client).status_code == 303

    html = client.get("/app/conversations", headers=HTML).get_data(as_text=True)
    assert 'data-view="conversations"' in html and 'id="threads"' in html
    assert 'src="/static/conversations.js"' in html
    assert 'href="/static/conversations.css"' in html
    assert re.search(r'id="thread-box"\s+hidden', html)  # nothing open yet
    # The nav links here, marked current, with one unread conversation counted.
    assert re.search(r'href="/app/conversations" aria-current="page">Conversations', html)
    assert re.search(r'id="nav-unread"[^>]*>1</span>', html)

    html = client.get(f"/app/conversations/%2B{ANA[1:]}").get_data(as_text=True)
    assert 'data-view="conversation"' in html and f'data-phone="{ANA}"' in html
    assert 'data-open="1"' in html and not re.search(r'id="thread-box"\s+hidden', html)


def test_the_nav_shows_the_unread_count_on_other_views_and_none_when_all_is_read(client, queue):
    assert client_sign_in(client).status_code == 303
    assert re.search(r'id="nav-unread"[^>]*hidden>0</span>', client.get("/app").text)
    said(queue, ANA, "Oi")
    said(queue, BEN, "Hello")
    assert re.search(r'id="nav-unread"[^>]*>2</span>', client.get("/app/opt-outs").text)


def test_the_thread_view_escapes_the_number_from_the_url(client):
    assert client_sign_in(client).status_code == 303
    html = client.get("/app/conversations/<img src=x onerror=alert(1)>").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_conversations_view_keeps_to_the_csp(client):
    assert client_sign_in(client).status_code == 303
    for path in ("/app/conversations", f"/app/conversations/{ANA[1:]}"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert re.search(r'\bsrc="/static/[\w.]+\.js"', tag), (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert not re.search(r"\sstyle\s*=", html) and "<style" not in html, path
        assert "http://" not in html and "https://" not in html, path
    for asset in ("conversations.js", "conversations.css"):
        assert client.get(f"/static/{asset}").status_code == 200


# ---------------------------------------------------------------- the screen, in Chromium


class Clock:
    """Real time, shifted while a test's history is written (a message sent minutes ago)."""

    def __init__(self):
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture(scope="module")
def inbox_env(chromium, tmp_path_factory):
    """The app on a real server; no worker runs, so a reply stays queued where a test sees it."""
    base = tmp_path_factory.mktemp("conversations-page")
    settings = page_settings(base)
    clock = Clock()
    queue = Queue(settings.database, clock=clock)
    app = create_app(settings, queue)
    driver = build_driver(profile_dir=str(base / "page"), headless=True, window_size=(1280, 900))
    try:
        with AppServer(app) as server:
            yield driver, server.url, queue, clock
    finally:
        driver.quit()
        queue.close()


@pytest.fixture
def page(inbox_env):
    """A signed-in browser on a fresh set of threads; yields (driver, base url, queue)."""
    driver, url, queue, clock = inbox_env
    reset(queue, clock)
    driver.set_window_size(1280, 900)
    driver.get(f"{url}/app/conversations")
    if driver.find_elements(By.ID, "sign-in"):
        sign_in(driver, url)
    by_id(driver, "threads")
    driver.get_log("browser")  # start afresh
    yield driver, url, queue
    assert no_alert(driver), "the page opened an alert"
    assert [e for e in driver.get_log("browser") if e["source"] != "network"] == []


def reset(queue, clock) -> None:
    """Three threads, the newest first: Cat (read), Ben (2 unread, by SMS), Ana (a campaign
    message sent, then her answer unread; her name is markup). The numbers are reused by
    every test, so what an earlier one left is cleared first."""
    with queue.db.write() as conn:
        for table in ("inbound", "messages", "job_counts", "jobs", "conversations"):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    now = time.time()
    clock.shift = -400  # the campaign went out before she answered
    try:
        recipient = Recipient(phone=ANA, text=ORDER_READY, channel="whatsapp", name=f"Ana {XSS}")
        queue.create_job(NewJob(channel="whatsapp", template=ORDER_READY), [recipient])
        message = queue.claim_next("whatsapp", "office-phone")
        assert message is not None and queue.mark_sent(message["id"], "office-phone")
    finally:
        clock.shift = 0.0
    said(queue, ANA, f"Hi {XSS}", now - 300)
    said(queue, BEN, "Is the order ready?", now - 200, channel="sms", sender="office-sms")
    said(queue, BEN, "Hello??", now - 190, channel="sms", sender="office-sms")
    said(queue, CAT, "Thanks, got it", now - 100)
    queue.set_read(CAT, True)


def items(driver) -> list[dict]:
    """The list as shown, read in one go: phone, name, unread badge, starred, last text."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#threads .thread-item')].map(li => ({"
        " phone: li.dataset.phone,"
        " name: li.querySelector('.thread-name').textContent,"
        " unread: li.querySelector('.thread-unread').hidden ? 0"
        "   : Number(li.querySelector('.thread-unread').textContent),"
        " starred: li.classList.contains('starred'),"
        " last: li.querySelector('.thread-last').textContent}))"
    )


def phones_shown(driver) -> list[str]:
    return [i["phone"] for i in items(driver)]


def bubbles(driver) -> list[tuple[str, str, str]]:
    """The open thread's bubbles in page order: (direction, text, status)."""
    return [
        tuple(b)
        for b in driver.execute_script(
            "return [...document.querySelectorAll('#thread .msg')].map(li =>"
            " [li.classList.contains('msg-out') ? 'out' : 'in',"
            "  li.querySelector('.msg-text').textContent, li.dataset.status])"
        )
    ]


def open_thread(driver, phone: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f".thread-item[data-phone='{phone}'] a").click()
    wait(driver).until(lambda d: d.current_url.endswith(f"/app/conversations/{phone[1:]}"))
    wait(driver).until(lambda d: bubbles(d))


@pytest.mark.browser
def test_the_list_shows_threads_newest_first_with_unread_badges(page):
    driver, _, _ = page
    wait(driver).until(lambda d: phones_shown(d) == [CAT, BEN, ANA])
    shown = {i["phone"]: i for i in items(driver)}
    assert shown[BEN]["unread"] == 2 and shown[ANA]["unread"] == 1 and shown[CAT]["unread"] == 0
    assert shown[ANA]["name"] == f"Ana {XSS}"  # shown as text, never as markup
    assert shown[ANA]["last"] == f"Hi {XSS}"
    assert not driver.find_elements(By.CSS_SELECTOR, "#threads img")
    assert driver.find_element(By.ID, "nav-unread").text == "2"


@pytest.mark.browser
def test_filters_and_search(page):
    driver, _, queue = page
    queue.set_starred(CAT, True)
    wait(driver).until(lambda d: phones_shown(d) == [CAT, BEN, ANA])
    driver.find_element(By.CSS_SELECTOR, "[data-filter='unread']").click()
    wait(driver).until(lambda d: phones_shown(d) == [BEN, ANA])
    driver.find_element(By.CSS_SELECTOR, "[data-filter='starred']").click()
    wait(driver).until(lambda d: phones_shown(d) == [CAT])
    driver.find_element(By.CSS_SELECTOR, "[data-filter='all']").click()
    wait(driver).until(lambda d: phones_shown(d) == [CAT, BEN, ANA])

    search = driver.find_element(By.ID, "thread-q")
    for typed, expected in (
        ("ana", [ANA]),  # a name
        ("order ready", [BEN]),  # something they wrote, not the last line
        ("+55 11 91234-0003", [CAT]),  # a number as people type it
        ("nobody at all", []),
    ):
        search.clear()
        search.send_keys(typed)
        wait(driver).until(lambda d, e=expected: phones_shown(d) == e)
    assert "No conversation matches" in by_id(driver, "threads-empty").text


@pytest.mark.browser
def test_opening_a_thread_shows_its_bubbles_in_order_and_marks_it_read(page):
    driver, url, queue = page
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, BEN)
    wait(driver).until(
        lambda d: (
            bubbles(d) == [("in", "Is the order ready?", "received"), ("in", "Hello??", "received")]
        )
    )
    assert by_id(driver, "thread-title").text == BEN
    assert "SMS · office-sms" in driver.find_element(By.CSS_SELECTOR, "#thread .msg-via").text
    assert driver.find_element(By.ID, "reply-channel-auto").text == "Automatic (SMS)"
    wait(driver).until(lambda d: {i["phone"]: i["unread"] for i in items(d)}[BEN] == 0)
    wait(driver).until(lambda d: queue.get_conversation(BEN)["unread"] == 0)
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "nav-unread"), "1"))
    # "Mark unread" sticks: the open thread is not marked read again by the next poll.
    driver.find_element(By.ID, "thread-unread").click()
    wait(driver).until(lambda d: queue.get_conversation(BEN)["unread"] == 1)
    time.sleep(2)  # more than one poll
    assert queue.get_conversation(BEN)["unread"] == 1
    assert driver.find_element(By.ID, "thread-unread").text == "Mark read"

    # Straight to a thread by its address (the + written %2B), and back to the list.
    driver.get(f"{url}/app/conversations/%2B{ANA[1:]}")
    wait(driver).until(
        lambda d: bubbles(d) == [("out", ORDER_READY, "sent"), ("in", f"Hi {XSS}", "received")]
    )
    assert by_id(driver, "thread-title").text == f"Ana {XSS}"
    assert driver.find_element(By.CSS_SELECTOR, "#thread .msg-out .msg-mark").text == "✓"
    assert not driver.find_elements(By.CSS_SELECTOR, "#thread img")
    wait(driver).until(lambda d: queue.get_conversation(ANA)["unread"] == 0)


@pytest.mark.browser
def test_a_reply_double_clicked_makes_one_job_and_shows_as_a_pending_bubble(page):
    driver, _, queue = page
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, ANA)
    jobs_before = queue.count_jobs(active_only=False)
    by_id(driver, "reply-text").send_keys("Yes, it is ready 😀")
    ActionChains(driver).double_click(driver.find_element(By.ID, "reply-send")).perform()
    wait(driver).until(lambda d: ("out", "Yes, it is ready 😀", "pending") in bubbles(d))
    assert driver.find_element(By.ID, "reply-text").get_attribute("value") == ""
    time.sleep(1)  # a second request, had the click sent one, would be in by now
    jobs = queue.list_jobs(active_only=False)
    assert queue.count_jobs(active_only=False) == jobs_before + 1
    assert len([j for j in jobs if j["name"] == f"Reply to Ana {XSS}"]) == 1
    mark = driver.find_elements(By.CSS_SELECTOR, "#thread .msg-out .msg-tick")[-1]
    assert mark.get_attribute("title") == "Waiting"  # queued; no worker runs here
    # The same page sending again, as a retry of that reply would, queues nothing new.
    key_retry = driver.execute_async_script(
        "const done = arguments[0];"
        "App.api('POST', '/conversations/" + ANA[1:] + "/reply', {text: 'Once'},"
        " {headers: {'Idempotency-Key': 'k-1'}})"
        ".then(() => App.api('POST', '/conversations/" + ANA[1:] + "/reply', {text: 'Once'},"
        " {headers: {'Idempotency-Key': 'k-1'}})).then(r => done(r.status))"
    )
    assert key_retry in (200, 202)
    assert queue.count_jobs(active_only=False) == jobs_before + 2


@pytest.mark.browser
def test_a_failed_reply_says_why_under_its_bubble(page):
    driver, _, queue = page
    queue.create_job(
        NewJob(channel="whatsapp", template="Hi"), [Recipient(ANA, "Are you there?", "whatsapp")]
    )
    message = queue.claim_next("whatsapp", "office-phone")
    assert message is not None and queue.mark_failed(
        message["id"], "office-phone", "not_on_whatsapp"
    )
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, ANA)
    wait(driver).until(lambda d: ("out", "Are you there?", "failed") in bubbles(d))
    why = [
        (
            b.find_element(By.CSS_SELECTOR, ".msg-text").text,
            b.find_element(By.CSS_SELECTOR, ".msg-error").text,
        )
        for b in driver.find_elements(By.CSS_SELECTOR, "#thread .msg")
    ]
    # Only the failed bubble says why; the sent one and what she wrote carry no such line.
    assert why == [
        (ORDER_READY, ""),
        (f"Hi {XSS}", ""),
        ("Are you there?", "This number is not on WhatsApp"),
    ]


@pytest.mark.browser
def test_a_new_message_shows_on_the_open_page_within_two_seconds(page):
    driver, _, queue = page
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, CAT)
    driver.execute_script("document.body.dataset.notReloaded = '1'")
    said(queue, CAT, "One more thing: can I pick it up at 6?")
    started = time.monotonic()
    wait(driver, 2.0).until(
        lambda d: ("in", "One more thing: can I pick it up at 6?", "received") in bubbles(d)
    )
    assert time.monotonic() - started < 2.0
    assert driver.execute_script("return document.body.dataset.notReloaded") == "1"
    # It went to the top of the list, and reading it there marks it read.
    wait(driver).until(lambda d: phones_shown(d)[0] == CAT)
    wait(driver).until(lambda d: queue.get_conversation(CAT)["unread"] == 0)
    # A thread not open gets its badge instead.
    said(queue, ANA, "And me?")
    wait(driver, 2.0).until(lambda d: {i["phone"]: i["unread"] for i in items(d)}[ANA] == 2)


@pytest.mark.browser
def test_star_and_unstar(page):
    driver, _, queue = page
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, BEN)
    star = by_id(driver, "thread-star")
    star.click()
    wait(driver).until(lambda d: queue.get_conversation(BEN)["starred"])
    wait(driver).until(lambda d: {i["phone"]: i["starred"] for i in items(d)}[BEN])
    assert star.get_attribute("aria-pressed") == "true"
    driver.find_element(By.CSS_SELECTOR, "[data-filter='starred']").click()
    wait(driver).until(lambda d: phones_shown(d) == [BEN])
    star.click()
    wait(driver).until(lambda d: not queue.get_conversation(BEN)["starred"])
    wait(driver).until(lambda d: phones_shown(d) == [])
    assert star.get_attribute("aria-pressed") == "false"


@pytest.mark.browser
def test_older_messages_page_in_above(page):
    driver, url, queue = page
    start = time.time() - 10_000
    for i in range(60):
        said(queue, CAT, f"Line {i}", at=start + i)
    driver.get(f"{url}/app/conversations/{CAT[1:]}")
    wait(driver).until(lambda d: len(bubbles(d)) == 50)
    assert bubbles(driver)[-1][1] == "Thanks, got it"  # the newest page first
    by_id(driver, "thread-older").click()
    wait(driver).until(lambda d: len(bubbles(d)) == 61)
    texts = [b[1] for b in bubbles(driver)]
    assert texts == [f"Line {i}" for i in range(60)] + ["Thanks, got it"]
    wait(driver).until(EC.invisibility_of_element_located((By.ID, "thread-older")))


@pytest.mark.browser
def test_on_a_phone_the_list_and_the_thread_take_turns(page):
    driver, url, _ = page
    driver.set_window_size(390, 844)
    driver.get(f"{url}/app/conversations")
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    assert not driver.find_element(By.ID, "thread-pane").is_displayed()
    open_thread(driver, BEN)
    assert by_id(driver, "reply-text").is_displayed()
    assert not driver.find_element(By.ID, "threads").is_displayed()
    fits = "return document.documentElement.scrollWidth <= window.innerWidth"
    assert driver.execute_script(fits), "the page scrolls sideways on a phone"
    driver.find_element(By.ID, "thread-back").click()
    wait(driver).until(EC.visibility_of_element_located((By.ID, "threads")))
    assert driver.current_url.endswith("/app/conversations")
    driver.back()  # the browser's own back button reopens the thread
    wait(driver).until(EC.visibility_of_element_located((By.ID, "reply-text")))


# Counts the page's calls to /conversations, and how many were in flight at once.
COUNT_CALLS = """
window.calls = {n: 0, open: 0, most: 0};
const fetchBefore = window.fetch;
window.fetch = async (url, options) => {
  if (!String(url).startsWith('/conversations')) return fetchBefore(url, options);
  calls.n += 1; calls.open += 1; calls.most = Math.max(calls.most, calls.open);
  try { return await fetchBefore(url, options); } finally { calls.open -= 1; }
};
"""
SEEM_HIDDEN = """
Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => arguments[0]});
document.dispatchEvent(new Event('visibilitychange'));
"""


@pytest.mark.browser
def test_polling_stops_while_the_page_is_hidden_and_never_piles_up(page):
    driver, _, queue = page
    wait(driver).until(lambda d: len(phones_shown(d)) == 3)
    open_thread(driver, BEN)
    driver.execute_script(COUNT_CALLS)
    time.sleep(3.2)  # two polls or more
    calls = driver.execute_script("return calls")
    # One round at a time: the list, the thread, the unread count (and the conversation).
    assert calls["n"] >= 4 and calls["most"] <= 4, calls
    driver.execute_script(SEEM_HIDDEN, "hidden")
    time.sleep(0.5)  # a round already under way ends
    before = driver.execute_script("return calls.n")
    time.sleep(3.2)
    assert driver.execute_script("return calls.n") == before  # nothing asked while hidden
    said(queue, BEN, "Back again")
    driver.execute_script(SEEM_HIDDEN, "visible")
    wait(driver, 2.0).until(lambda d: ("in", "Back again", "received") in bubbles(d))
