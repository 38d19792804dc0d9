"""The /app page in real headless Chromium, from a spreadsheet to a finished campaign.

The app runs on a real threaded werkzeug server; a real worker thread sends through the
WhatsApp Web stand-in in its own Chromium. The page is driven as a person would: type, click,
pick a file, then read what the page shows. Every wait is an explicit, bounded WebDriverWait.
"""

from __future__ import annotations

import threading

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from werkzeug.serving import make_server

from app import create_app
from config import Settings
from message_queue import Queue
from tests.conftest import API_KEY, AUTH
from tests.wa_e2e_support import ROOT, WorkerThread
from tests.wa_standin import StandinServer
from worker.whatsapp.browser import build_driver

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
WAIT = 10.0  # the longest any one thing on the page may take to show
SEND_WAIT = 30.0  # a whole small campaign, sent through the stand-in


class AppServer:
    """`app` served by a real threaded werkzeug server on 127.0.0.1:<free port>."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="app-server", daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


def page_settings(base, **changes) -> Settings:
    """Settings for a page test: its own files; 0.5 s between messages, so a job can be
    caught running; no long pauses, no retry back-off."""
    values = dict(
        api_key=API_KEY,
        secret_key="p" * 32,
        database_path=str(base / "queue.db"),
        upload_dir=str(base / "uploads"),
        chrome_profile_dir=str(base / "worker"),
        min_delay=0.5,
        max_delay=0.5,
        long_pause_every=0,
        long_pause_min=0,
        long_pause_max=0,
        sms_min_delay=0,
        sms_max_delay=0,
        retry_backoff=0,
        send_timeout=10.0,
        worker_id="page-worker",
        selectors_file=str(ROOT / "worker" / "selectors.json"),
    )
    values.update(changes)
    return Settings(**values)


def sign_in(driver, url: str, key: str = API_KEY) -> None:
    """Sign in through the form (from any /app page that shows it)."""
    box = wait(driver).until(EC.element_to_be_clickable((By.ID, "api_key")))
    box.clear()
    box.send_keys(key, Keys.ENTER)


def wait(driver, seconds: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.05)


def by_id(driver, element_id: str, seconds: float = WAIT):
    return wait(driver, seconds).until(EC.visibility_of_element_located((By.ID, element_id)))


def texts(driver, css: str) -> list[str]:
    """The shown text of every match, read in one go (the page may redraw in between)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)", css
    )


def table(driver, css: str) -> list[list[str]]:
    """The cells of the rows `css` matches, read in one go."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(tr => [...tr.cells].map(td => td.innerText))",
        css,
    )


def no_alert(driver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - asking is the check: it raises when none
    except NoAlertPresentException:
        return True
    return False


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(chromium, tmp_path_factory):
    return tmp_path_factory.mktemp("app-browser")


@pytest.fixture(scope="module")
def wa():
    with StandinServer(tick_delay=0.05) as server:
        server.login()
        yield server


@pytest.fixture(scope="module")
def page_env(base, wa):
    settings = page_settings(base, whatsapp_web_url=wa.url)
    queue = Queue(settings.database_path)
    app = create_app(settings, queue)
    worker = WorkerThread(settings, queue)
    try:
        with AppServer(app) as server:
            yield server, app.test_client(), queue
    finally:
        worker.stop()
        queue.close()


@pytest.fixture(scope="module")
def driver(base):
    drv = build_driver(profile_dir=str(base / "page"), headless=True, window_size=(1280, 900))
    yield drv
    drv.quit()


@pytest.fixture
def page(page_env, driver, wa):
    """A signed-in page on /app; yields (driver, base url, API client, queue)."""
    server, client, queue = page_env
    driver.get(f"{server.url}/app")
    if driver.find_elements(By.ID, "sign-in"):
        sign_in(driver, server.url)
    by_id(driver, "connection")
    driver.get_log("browser")  # start afresh
    yield driver, server.url, client, queue
    assert no_alert(driver), "the page opened an alert"
    # No script error and no CSP refusal; a 4xx the page asked for on purpose is fine.
    assert [e for e in driver.get_log("browser") if e["source"] != "network"] == []


def api_job(client, numbers, message="Hello {phone}", name="", channel="whatsapp") -> str:
    response = client.post(
        "/send",
        json={"message": message, "numbers": numbers, "name": name, "channel": channel},
        headers=AUTH,
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def phones(n: int, first: int = 100) -> list[str]:
    return [f"+1415555{first + i:04d}" for i in range(n)]


def arrived(wa, prefix: str) -> list[dict]:
    """What the stand-in received for numbers starting with `prefix` (one test's range)."""
    return [m for m in wa.messages() if m["phone"].startswith(prefix)]


def job_item(driver, job_id: str):
    return wait(driver).until(EC.visibility_of_element_located((By.ID, f"job-{job_id}")))


def badge_is(item, words: str):
    return lambda _: item.find_element(By.CSS_SELECTOR, ".job-status").text == words


def buttons(item) -> set[str]:
    return {
        b.get_attribute("data-move")
        for b in item.find_elements(By.CSS_SELECTOR, "button")
        if b.is_displayed()
    }


# --- the tests ------------------------------------------------------------------------------


def test_sign_in_wrong_key_then_right_key_then_sign_out(page_env, driver):
    server, _, _ = page_env
    driver.delete_all_cookies()
    driver.get(f"{server.url}/app/new")
    sign_in(driver, server.url, "not-the-key-at-all")
    assert "not the API key" in by_id(driver, "sign-in-error").text
    sign_in(driver, server.url)
    wait(driver).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "New campaign"))
    assert driver.current_url == f"{server.url}/app/new"  # back where sign-in was asked for

    driver.find_element(By.CSS_SELECTOR, ".sign-out button").click()
    by_id(driver, "sign-in")
    status = driver.execute_async_script("fetch('/jobs').then(r => arguments[0](r.status))")
    assert status == 401  # the session is gone, not only the page


CONTACTS_CSV = (
    "\ufeffName;Phone;Order\r\n"  # Excel's "CSV UTF-8": a BOM, semicolons
    "Ana;+1 415 555 0100;A-1\r\n"
    f"{XSS};+1 (415) 555-0101;B-2\r\n"
    "Bob;12ab;C-3\r\n"
    "Carla;415.555.0102;D-4\r\n"  # no +1: read with the country typed, US
    "Dup;+14155550100;E-5\r\n"
)
EXPECTED = [
    ("14155550100", "Hi Ana, order A-1"),
    ("14155550101", f"Hi {XSS}, order B-2"),
    ("14155550102", "Hi Carla, order D-4"),
]


def test_from_a_semicolon_csv_with_bom_to_a_finished_campaign(page, wa, tmp_path):
    driver, url, client, queue = page
    contacts = tmp_path / "contacts.csv"
    contacts.write_bytes(CONTACTS_CSV.encode("utf-8"))
    driver.get(f"{url}/app/new")
    driver.find_element(By.ID, "default_country").send_keys("US")
    driver.find_element(By.ID, "file").send_keys(str(contacts))
    see_the_list_as_read(driver)
    try_another_phone_column(driver)
    write_the_message(driver)
    check_channel_and_pacing(driver)
    driver.find_element(By.ID, "name").send_keys(f"Promo {XSS}")
    driver.find_element(By.ID, "start").click()
    item = watch_it_finish(driver)
    assert sorted((m["phone"], m["text"]) for m in arrived(wa, "141555501")) == EXPECTED
    open_the_detail_and_export(driver, item)
    assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x']")  # shown, never parsed


def summary_says(driver, start: str):
    summary = driver.find_element(By.ID, "preview-summary")
    return lambda _: summary.is_displayed() and summary.text.startswith(start)


def see_the_list_as_read(driver) -> None:
    """Before anything is queued: the rows, the phone column found, the rows set aside."""
    wait(driver).until(summary_says(driver, "3 recipients will get it; 2 rows set aside"))
    column = Select(driver.find_element(By.ID, "phone_column"))
    assert column.first_selected_option.get_attribute("value") == "phone"
    assert [o.text for o in column.options] == ["Name", "Phone", "Order"]
    rows = table(driver, "#preview-rows tbody tr")
    assert [r[1] for r in rows] == ["Ana", XSS, "Bob", "Carla", "Dup"]
    assert rows[3][-1] == "Yes, to +14155550102"
    assert table(driver, "#rejected-rows tbody tr") == [
        ["4", "12ab", "Not a valid phone number"],
        ["6", "+14155550100", "Same number as an earlier row"],
    ]


def try_another_phone_column(driver) -> None:
    """Nothing in "Order" is a number: the page says so by the select, which stays usable."""
    Select(driver.find_element(By.ID, "phone_column")).select_by_value("order")
    error = by_id(driver, "preview-error")
    assert "None of the numbers can be sent to" in error.text
    assert "row 2: A-1: invalid_phone" in error.text
    Select(driver.find_element(By.ID, "phone_column")).select_by_value("phone")
    wait(driver).until(summary_says(driver, "3 "))
    assert not error.is_displayed()


def write_the_message(driver) -> None:
    """Columns are clickable placeholders; the first messages show as they will read."""
    message = driver.find_element(By.ID, "message")
    message.send_keys("Hi ")
    driver.find_element(By.CSS_SELECTOR, "#placeholder-buttons [data-placeholder='name']").click()
    message.send_keys(", order ")
    driver.find_element(By.CSS_SELECTOR, "#placeholder-buttons [data-placeholder='order']").click()
    assert message.get_attribute("value") == "Hi {name}, order {order}"
    wait(driver).until(
        lambda _: texts(driver, "#rendered-list .bubble") == [text for _, text in EXPECTED]
    )

    # A placeholder naming no column: said next to the message, the list stays on screen.
    message.send_keys(" {nope}")
    message_error = driver.find_element(By.CSS_SELECTOR, "[data-error-for='message']")
    wait(driver).until(lambda _: "{nope}" in message_error.text)
    assert summary_says(driver, "3 ")(driver)
    message.send_keys(Keys.BACKSPACE * len(" {nope}"))
    wait(driver).until(lambda _: not message_error.is_displayed())


def check_channel_and_pacing(driver) -> None:
    """SMS shows characters and parts; the estimate follows the settings' pacing."""
    sms_summary = driver.find_element(By.ID, "sms-summary")
    driver.find_element(By.CSS_SELECTOR, "input[name='channel'][value='sms']").click()
    wait(driver).until(lambda _: "characters, 1 part" in sms_summary.text)
    driver.find_element(By.CSS_SELECTOR, "input[name='channel'][value='whatsapp']").click()
    wait(driver).until(lambda _: not sms_summary.is_displayed())
    assert driver.find_element(By.ID, "pacing").text.startswith("One message every 0.5 seconds")
    estimate = driver.find_element(By.ID, "estimate").text
    assert estimate == "Estimated time for 3 messages: About 16 seconds."  # (0.5 + 5) x 3


def watch_it_finish(driver):
    """Start leads to the campaigns list, where the bar goes to 100%; the job's <li>."""
    wait(driver).until(EC.url_contains("/app#job-"))
    item = job_item(driver, driver.current_url.rsplit("#job-", 1)[1])
    assert item.find_element(By.CSS_SELECTOR, ".job-name").text == f"Promo {XSS}"
    bar = item.find_element(By.CSS_SELECTOR, "progress")
    wait(driver, SEND_WAIT).until(lambda _: bar.get_attribute("value") == "1")
    wait(driver).until(badge_is(item, "Finished"))
    assert item.find_element(By.CSS_SELECTOR, ".job-percent").text == "100%"
    assert buttons(item) == set()  # nothing left to pause, resume or stop
    return item


def open_the_detail_and_export(driver, item) -> None:
    """Every recipient with its status, searchable by name, and the CSV export."""
    item.find_element(By.CSS_SELECTOR, ".job-name").click()

    def rows():
        return table(driver, "#messages tbody tr")

    wait(driver).until(lambda _: len(rows()) == 3)
    assert [r[:5] for r in rows()] == [
        ["2", "+14155550100", "Ana", "Sent", "1"],
        ["3", "+14155550101", XSS, "Sent", "1"],
        ["5", "+14155550102", "Carla", "Sent", "1"],
    ]  # rows as the spreadsheet numbers them
    assert driver.find_element(By.TAG_NAME, "h1").text == f"Promo {XSS}"
    driver.find_element(By.ID, "filter-q").send_keys("carla")
    wait(driver).until(lambda _: [r[2] for r in rows()] == ["Carla"])
    assert driver.find_element(By.ID, "page-range").text == "1–1 of 1"
    export = driver.find_element(By.ID, "export")
    csv_text = driver.execute_async_script(
        "fetch(arguments[0].href).then(r => r.text()).then(arguments[1])", export
    )
    lines = csv_text.strip().splitlines()
    assert lines[0] == "row,phone,name,channel,status,attempts,error,sent_at,message"
    assert len(lines) == 4 and lines[2].startswith(f"3,+14155550101,{XSS},whatsapp,sent,1,")


def test_signing_in_again_elsewhere_does_not_cost_the_typed_form(page):
    driver, url, client, queue = page
    driver.get(f"{url}/app/new")
    driver.find_element(By.ID, "numbers").send_keys("+14155554000")
    driver.find_element(By.ID, "message").send_keys("Still here")
    wait(driver).until(summary_says(driver, "1 recipient will get it"))
    # As another tab would: sign in again, which gives the session a new CSRF token.
    driver.execute_async_script(
        """
        const [key, done] = arguments;
        fetch('/app').then(r => r.text()).then(html => {
          const page = new DOMParser().parseFromString(html, 'text/html');
          const token = page.querySelector('input[name=csrf]').value;
          const body = new URLSearchParams({csrf: token, api_key: key, next: '/app'});
          return fetch('/app/sign-in', {method: 'POST', body, redirect: 'manual'});
        }).then(() => done());""",
        API_KEY,
    )
    driver.find_element(By.ID, "start").click()
    wait(driver).until(EC.url_contains("/app#job-"))
    job_id = driver.current_url.rsplit("#job-", 1)[1]
    assert [m["text"] for m in queue.list_messages(job_id)[0]] == ["Still here"]


def test_pause_resume_and_stop_from_the_page(page, wa):
    driver, url, client, queue = page
    job_id = api_job(client, phones(30, first=1000), name="Long one")
    item = job_item(driver, job_id)

    def sent():
        return len(arrived(wa, "14155551"))

    wait(driver, SEND_WAIT).until(lambda _: sent() >= 2)
    wait(driver).until(badge_is(item, "Sending"))
    assert buttons(item) == {"pause", "stop"}

    item.find_element(By.CSS_SELECTOR, "button[data-move='pause']").click()
    wait(driver).until(badge_is(item, "Paused"))
    assert buttons(item) == {"resume", "stop"}
    assert queue.get_job(job_id)["status"] == "paused"
    wait(driver).until(lambda _: not queue.list_messages(job_id, "sending")[1])
    paused_at = sent()
    assert paused_at < 30

    item.find_element(By.CSS_SELECTOR, "button[data-move='resume']").click()
    wait(driver).until(badge_is(item, "Sending"))
    wait(driver, SEND_WAIT).until(lambda _: sent() >= paused_at + 2)

    item.find_element(By.CSS_SELECTOR, "button[data-move='stop']").click()
    wait(driver).until(EC.alert_is_present()).accept()  # "Stop this campaign?"
    wait(driver).until(badge_is(item, "Stopped"))
    assert buttons(item) == set()
    assert "cancelled" in item.find_element(By.CSS_SELECTOR, ".job-counts").text


def test_logout_shows_the_qr_on_app_and_login_resumes(page, wa):
    driver, url, client, queue = page
    job_id = api_job(client, phones(6, first=2000), name="Through a logout")
    item = job_item(driver, job_id)
    wait(driver, SEND_WAIT).until(lambda _: len(arrived(wa, "14155552")) >= 2)
    wa.logout()

    qr = by_id(driver, "qr-img", SEND_WAIT)
    assert qr.get_attribute("src").startswith("data:image/png;base64,")
    assert qr.get_attribute("naturalWidth") not in ("0", None)  # a real picture, decoded
    words = driver.find_element(By.CSS_SELECTOR, "#workers .worker-words")
    wait(driver).until(lambda _: words.text.startswith("Scan the QR code with WhatsApp"))
    wait(driver).until(badge_is(item, "Waiting for WhatsApp login"))
    assert by_id(driver, "banner-login").is_displayed()

    wa.login()
    wait(driver, SEND_WAIT).until(EC.invisibility_of_element_located((By.ID, "qr")))
    wait(driver, SEND_WAIT).until(badge_is(item, "Finished"))
    assert not driver.find_element(By.ID, "banner-login").is_displayed()
    assert sorted(m["phone"] for m in arrived(wa, "14155552")) == sorted(
        p[1:] for p in phones(6, first=2000)
    )


def test_detail_pages_a_long_list_and_explains_unknown(page):
    driver, url, client, queue = page
    numbers = phones(120, first=3000)
    # By SMS, which no worker here sends: the rows stay as they are made below.
    job_id = api_job(client, numbers, name="Paging", channel="sms")
    ghost = queue.claim_next("sms", "ghost-worker")
    assert queue.mark_unknown(ghost["id"], "ghost-worker", "send_not_confirmed")
    driver.get(f"{url}/app/jobs/{job_id}")
    page_range = by_id(driver, "page-range")
    wait(driver).until(lambda _: page_range.text == "1–50 of 120")
    note = by_id(driver, "unknown-note")
    assert "could not tell whether" in note.text and "will not be re-sent by itself" in note.text
    unknown = driver.find_element(By.CSS_SELECTOR, "#messages tbody tr.status-unknown")
    assert unknown.find_element(By.CSS_SELECTOR, "td.status").text == "Unknown"
    assert unknown.get_attribute("title").startswith("The worker stopped mid-send")

    def shade(css):
        return driver.find_element(By.CSS_SELECTOR, css).value_of_css_property("background-color")

    assert shade("#messages tr.status-unknown td") != shade("#messages tr.status-pending td")
    Select(driver.find_element(By.ID, "filter-status")).select_by_value("unknown")
    wait(driver).until(lambda _: page_range.text == "1–1 of 1")
    Select(driver.find_element(By.ID, "filter-status")).select_by_value("")
    wait(driver).until(lambda _: page_range.text == "1–50 of 120")
    driver.find_element(By.ID, "page-next").click()
    wait(driver).until(lambda _: page_range.text == "51–100 of 120")
    driver.find_element(By.ID, "page-next").click()
    wait(driver).until(lambda _: page_range.text == "101–120 of 120")
    assert not driver.find_element(By.ID, "page-next").is_enabled()
    first = driver.find_element(By.CSS_SELECTOR, "#messages tbody tr td.phone").text
    assert first == numbers[100]


def test_a_stopped_campaign_sends_its_unknown_message_again_as_a_new_one(page):
    driver, url, client, queue = page
    numbers = phones(3, first=4000)
    assert client.post("/stop", headers=AUTH).status_code == 200  # earlier tests' jobs
    # By SMS, which no worker here sends: the rows stay as they are made below.
    job_id = api_job(client, numbers, name="Again", channel="sms")
    ghost = queue.claim_next("sms", "ghost-worker")
    assert queue.mark_unknown(ghost["id"], "ghost-worker", "send_not_confirmed")
    assert client.post(f"/stop/{job_id}", headers=AUTH).status_code == 200
    driver.get(f"{url}/app/jobs/{job_id}")
    panel = by_id(driver, "resend")
    shown = [
        label.text
        for label in panel.find_elements(By.CSS_SELECTOR, "label[data-status]")
        if label.is_displayed()
    ]
    assert shown == ["Unknown (1)", "Cancelled (2)"]  # nothing failed: not offered
    warning = driver.find_element(By.ID, "resend-unknown-warning")
    assert not warning.is_displayed()
    panel.find_element(By.CSS_SELECTOR, "input[value='unknown']").click()
    assert "could get the message twice" in by_id(driver, "resend-unknown-warning").text
    driver.find_element(By.ID, "resend-button").click()
    wait(driver).until(lambda d: "/app/jobs/" in d.current_url and job_id not in d.current_url)
    new_id = driver.current_url.rsplit("/", 1)[-1]
    assert client.get(f"/status/{new_id}", headers=AUTH).get_json()["total"] == 1
    assert by_id(driver, "job").find_element(By.CLASS_NAME, "job-name").text == "Again (sent again)"
    rows, _ = queue.list_messages(new_id)
    assert [r["phone"] for r in rows] == [ghost["phone"]]


def test_the_campaigns_list_shows_the_newest_50_and_older_ones_on_request(page):
    driver, url, client, queue = page
    for i in range(55):  # by SMS, which no worker here sends; stopped at once below
        api_job(client, phones(1, first=5000 + i), name=f"Bulk {i}", channel="sms")
    assert client.post("/stop", headers=AUTH).status_code == 200
    total = client.get("/jobs?all=1&limit=1", headers=AUTH).get_json()["total"]
    driver.get(f"{url}/app")
    shown = lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs > li"))  # noqa: E731
    wait(driver).until(lambda d: shown(d) == 50)
    older = by_id(driver, "jobs-older")
    assert older.text == f"Show older campaigns ({total - 50} more)"
    assert texts(driver, "#jobs > li .job-name")[:2] == ["Bulk 54", "Bulk 53"]
    older.click()
    wait(driver).until(lambda d: shown(d) == min(total, 100))
    assert texts(driver, "#jobs > li .job-name")[50:55] == [f"Bulk {i}" for i in range(4, -1, -1)]
    assert older.is_displayed() == (total > 100)
