"""The WhatsApp Web stand-in, driven by real headless Chromium through worker.whatsapp.browser.

If these pass, a sender written against the real site's locators can be tested on it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.wa_standin import StandinServer
from worker.whatsapp.browser import BrowserUnavailable, build_driver, find_chrome

pytestmark = pytest.mark.browser

PHONE = "15550001"
QR = "div[data-ref] > canvas[aria-label='Scan this QR code to link a device!']"
SHELL = "#side #pane-side div[aria-label='Chat list']"
COMPOSE = (
    "#main footer div.lexical-rich-text-input > div[contenteditable='true'][role='textbox']"
    "[data-tab='10'][aria-placeholder='Type a message']"
)
SEND = "#main footer button[aria-label='Send'] > span[data-icon='wds-ic-send-filled']"
ATTACH = "#main footer div[aria-label='Attach'] > span[data-icon='plus-rounded']"
CAPTION = "div[aria-label='Add a caption'][contenteditable='true'][data-lexical-editor='true']"
PREVIEW_SEND = "div[role='button'][aria-label='Send'] > span[data-icon='wds-ic-send-filled']"
MODAL = "div[data-animate-modal-popup='true']"
LAST_BUBBLE = "#main div[role='row']:last-child div.message-out"


@pytest.fixture(scope="module")
def driver(chromium, tmp_path_factory):
    drv = build_driver(
        profile_dir=str(tmp_path_factory.mktemp("standin") / "profile"), headless=True
    )
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def server():
    with StandinServer() as srv:
        yield srv


@pytest.fixture
def wa(driver, server):
    # Leave the previous test's page first: its script would react to reset() (a logout)
    # with a navigation of its own that could race the next test's driver.get().
    driver.get("about:blank")
    server.reset()
    return server


def wait(driver, seconds: float = 3):
    return WebDriverWait(driver, seconds, poll_frequency=0.05)


def find(driver, css: str, seconds: float = 3):
    return wait(driver, seconds).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def absent(driver, css: str) -> bool:
    return not driver.find_elements(By.CSS_SELECTOR, css)


def open_chat(driver, wa, phone: str = PHONE, text: str | None = None):
    query = {"phone": phone} if text is None else {"phone": phone, "text": text}
    driver.get(f"{wa.url}/send?{urllib.parse.urlencode(query)}")


def insert_at_end(driver, box, text: str) -> None:
    """Type as senders do for emoji: ChromeDriver cannot send characters beyond the BMP."""
    driver.execute_script(
        "const box = arguments[0]; box.focus();"
        "const range = document.createRange(); range.selectNodeContents(box);"
        "range.collapse(false); getSelection().removeAllRanges(); getSelection().addRange(range);"
        "document.execCommand('insertText', false, arguments[1]);",
        box,
        text,
    )


def received(wa) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "at"} for m in wa.messages()]


def wait_tick(driver) -> None:
    find(driver, LAST_BUBBLE + " span[data-icon='msg-check']")


def http(wa, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        wa.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_qr_shown_when_logged_out_and_rotates(driver, wa):
    wa.configure(qr_rotate_seconds=0.3)
    driver.get(wa.url)
    canvas = find(driver, QR)
    holder = canvas.find_element(By.XPATH, "..")
    first_ref, first_png = holder.get_attribute("data-ref"), canvas.screenshot_as_png
    assert first_ref.startswith("2@")
    assert absent(driver, "#pane-side")

    wait(driver).until(lambda d: holder.get_attribute("data-ref") != first_ref)
    # What a worker screenshots for /session/qr.png changes with the payload.
    wait(driver).until(lambda d: canvas.screenshot_as_png != first_png)


def test_login_turns_qr_page_into_app_shell(driver, wa):
    driver.get(wa.url)
    find(driver, QR)
    wa.login()
    find(driver, SHELL, seconds=2)
    find(driver, "#side span[data-icon='search']")
    assert absent(driver, QR)


def test_send_url_when_logged_out_shows_qr_then_the_chat_after_login(driver, wa):
    open_chat(driver, wa, text="after login")
    find(driver, QR)
    assert "/send?phone=15550001" in driver.current_url
    wa.login()
    assert find(driver, COMPOSE, seconds=2).get_attribute("textContent") == "after login"


def test_send_url_prefills_compose_box(driver, wa):
    wa.login()
    open_chat(driver, wa, text="Hello\nworld & more")
    box = find(driver, COMPOSE)
    assert box.get_attribute("textContent") == "Hello\nworld & more"
    assert find(driver, "#main header span[title='+15550001']")
    find(driver, SEND)
    find(driver, ATTACH)


def test_click_send_records_exact_text_and_ticks(driver, wa):
    wa.login()
    wa.configure(tick_delay=0.4)
    open_chat(driver, wa, text="Olá\nsecond line")
    box = find(driver, COMPOSE)
    insert_at_end(driver, box, " 😀\nمرحبا بك")
    expected = "Olá\nsecond line 😀\nمرحبا بك"

    find(driver, SEND).click()
    bubble = find(driver, LAST_BUBBLE)
    assert bubble.find_elements(By.CSS_SELECTOR, "span[data-icon='msg-time']")
    wait_tick(driver)
    assert received(wa) == [{"phone": PHONE, "text": expected, "attachment": None, "caption": None}]
    assert (
        bubble.find_element(By.CSS_SELECTOR, "span.selectable-text").get_attribute("textContent")
        == expected
    )
    assert box.get_attribute("textContent") == ""
    assert absent(driver, SEND)  # the send button only shows while there is text


def test_enter_sends_and_shift_enter_is_a_newline(driver, wa):
    wa.login()
    open_chat(driver, wa)
    box = find(driver, COMPOSE)
    box.send_keys(Keys.ENTER)  # empty box: nothing is sent
    box.send_keys("first  line")
    box.send_keys(Keys.SHIFT, Keys.ENTER)  # a modifier is held until the end of one call
    box.send_keys("second")
    box.send_keys(Keys.ENTER)
    wait_tick(driver)
    assert [m["text"] for m in wa.messages()] == ["first  line\nsecond"]


@pytest.mark.parametrize("text", ["a\n\nb\n", "\nx", "x\n\n", "tab\there  ", "a\nb\nc"])
def test_multiline_inserted_text_arrives_byte_exact(driver, wa, text):
    wa.login()
    open_chat(driver, wa)
    insert_at_end(driver, find(driver, COMPOSE), text)
    find(driver, SEND).click()
    wait_tick(driver)
    assert [m["text"] for m in wa.messages()] == [text]


def test_invalid_number_shows_modal_and_records_nothing(driver, wa):
    wa.login()
    wa.set_invalid(["+1 555 0009"])
    open_chat(driver, wa, phone="15550009", text="hi")
    modal = find(driver, MODAL)
    assert "Phone number shared via url is invalid." in modal.text
    assert absent(driver, "#main footer div[contenteditable='true']")
    find(driver, SHELL)

    modal.find_elements(By.CSS_SELECTOR, "div[role='button']")[-1].click()
    wait(driver).until(EC.staleness_of(modal))
    assert wa.messages() == []


def test_attachment_with_caption_is_recorded_with_its_file_name(driver, wa, tmp_path):
    wa.login()
    doc = tmp_path / "menu.pdf"
    doc.write_bytes(b"%PDF-1.4 fake")
    open_chat(driver, wa, text="See the menu\n😀")
    find(driver, COMPOSE)
    find(driver, ATTACH).click()
    find(driver, "input[type='file'][accept='image/*,video/mp4,video/3gpp,video/quicktime']")
    find(driver, "input[type='file'][accept='*']").send_keys(str(doc))

    caption = find(driver, CAPTION)
    assert caption.get_attribute("textContent") == "See the menu\n😀"
    insert_at_end(driver, caption, "!")
    find(driver, PREVIEW_SEND).click()
    wait_tick(driver)
    assert received(wa) == [
        {
            "phone": PHONE,
            "text": "See the menu\n😀!",
            "attachment": "menu.pdf",
            "caption": "See the menu\n😀!",
        }
    ]
    assert absent(driver, CAPTION)


def test_photo_without_caption(driver, wa, tmp_path):
    wa.login()
    photo = tmp_path / "pic.png"
    photo.write_bytes(bytes.fromhex("89504e470d0a1a0a"))
    open_chat(driver, wa)
    find(driver, ATTACH).click()
    find(driver, "input[type='file'][accept*='image']").send_keys(str(photo))
    find(driver, CAPTION).send_keys(Keys.ENTER)
    wait_tick(driver)
    assert received(wa) == [{"phone": PHONE, "text": "", "attachment": "pic.png", "caption": None}]


def test_logout_sends_open_page_to_post_logout_qr(driver, wa):
    wa.login()
    open_chat(driver, wa, text="unsent")
    find(driver, COMPOSE)
    wa.logout()
    wait(driver, 2).until(EC.url_contains("post_logout=1"))
    find(driver, QR)
    assert wa.messages() == []


def test_history_bubbles_appear_when_reopening_a_chat(driver, wa):
    wa.login()
    for text in ("earlier one", "earlier two"):
        open_chat(driver, wa, text=text)
        find(driver, SEND).click()
        wait_tick(driver)
    open_chat(driver, wa, phone="15550002")  # another chat has no history
    find(driver, COMPOSE)
    assert absent(driver, "div.message-out")

    open_chat(driver, wa)
    find(driver, COMPOSE)
    bubbles = driver.find_elements(By.CSS_SELECTOR, "#main div.message-out")
    assert [b.find_element(By.CSS_SELECTOR, "span.selectable-text").text for b in bubbles] == [
        "earlier one",
        "earlier two",
    ]
    assert all(b.find_elements(By.CSS_SELECTOR, "span[data-icon='msg-check']") for b in bubbles)
    find(driver, "#pane-side span[title='+15550001']")  # chats with messages are listed


def test_use_here_conflict_modal(driver, wa):
    wa.login()
    open_chat(driver, wa)
    find(driver, COMPOSE)
    wa.show_use_here()
    modal = find(driver, MODAL)
    button = modal.find_elements(By.CSS_SELECTOR, "div[role='button']")[-1]
    assert button.text == "Use here"
    button.click()
    wait(driver).until(EC.staleness_of(modal))
    assert wa.state.use_here_conflict is False


def test_boot_delay_shows_startup_screen_first(driver, wa):
    wa.login()
    wa.configure(boot_delay=0.6)
    open_chat(driver, wa, text="x")
    assert absent(driver, "#pane-side") and absent(driver, COMPOSE)
    find(driver, COMPOSE)
    find(driver, SHELL)


def test_http_controls_from_another_process(driver, wa):
    assert http(wa, "POST", "/_standin/config", {"never_tick": True, "tick_delay": 0.1})[0] == 200
    assert http(wa, "POST", "/_standin/config", {"no_such_option": 1})[0] == 400
    assert http(wa, "POST", "/_standin/api/send", {"phone": PHONE, "text": "x"}) == (
        409,
        {"error": "logged_out"},
    )
    assert http(wa, "POST", "/_standin/login")[0] == 200
    assert http(wa, "POST", "/_standin/api/send", {"phone": PHONE, "text": "y"}) == (
        200,
        {"tick_after": None},
    )
    status, body = http(wa, "GET", "/_standin/messages")
    assert [m["text"] for m in body["messages"]] == ["y"]
    assert http(wa, "POST", "/_standin/logout")[0] == 200
    assert wa.state.logged_in is False


def test_never_tick_leaves_the_clock(driver, wa):
    wa.login()
    wa.configure(never_tick=True)
    open_chat(driver, wa, text="stuck")
    find(driver, SEND).click()
    wait(driver).until(lambda d: wa.messages())
    assert find(driver, LAST_BUBBLE + " span[data-icon='msg-time']")
    open_chat(driver, wa)  # history keeps the clock for a message never acknowledged
    assert find(driver, LAST_BUBBLE + " span[data-icon='msg-time']")
    with pytest.raises(NoSuchElementException):
        driver.find_element(By.CSS_SELECTOR, LAST_BUBBLE + " span[data-icon='msg-check']")


def test_find_chrome_explicit_paths_win_and_missing_ones_say_what_to_install(tmp_path):
    fake = tmp_path / "chromedriver"
    fake.write_text("")
    assert find_chrome("", str(fake))[1] == str(fake)
    with pytest.raises(BrowserUnavailable, match="apt-get install chromium chromium-driver"):
        find_chrome("", str(tmp_path / "missing"))


# --- incoming messages (shared/reference/whatsapp-web-dom.md, "Reading replies") ------------

ROW = "#pane-side div[aria-label='Chat list'] div[role='listitem']"
BADGE = "span[aria-label*='unread message']"
INCOMING = "#main div[data-id^='false_'][role='row'] > div.message-in"


def rows(driver) -> list[tuple[str, str]]:
    """(title, badge text) of each chat row, top first."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map((r) => ["
        " r.querySelector('span[title]').title,"
        " (r.querySelector(arguments[1]) || {textContent: ''}).textContent]);",
        ROW,
        BADGE,
    )


def test_an_incoming_message_moves_its_chat_up_with_an_unread_badge(driver, wa):
    wa.login()
    wa.incoming("15550010", "older")
    driver.get(wa.url + "/")
    find(driver, ROW)
    wa.incoming("15550011", "hello")
    wa.incoming("15550011", "are you there?")
    wait(driver).until(lambda d: rows(d)[:2] == [["+15550011", "2"], ["+15550010", "1"]])
    badge = find(driver, f"{ROW} {BADGE}")
    assert badge.get_attribute("aria-label") == "2 unread messages"
    preview = driver.find_elements(By.CSS_SELECTOR, f"{ROW} span[title]")[1]
    assert preview.get_attribute("title") == "are you there?"


def test_opening_a_chat_reads_it_and_shows_incoming_bubbles(driver, wa):
    wa.login()
    wa.incoming("15550012", "Obrigado 🙏\nsecond line", name="Ana")
    wa.incoming("15550012", media="image", caption="the receipt")
    open_chat(driver, wa, phone="15550012")
    find(driver, COMPOSE)
    assert wa.chats()[0]["unread"] == 0
    bubbles = driver.find_elements(By.CSS_SELECTOR, INCOMING)
    assert len(bubbles) == 2
    row = bubbles[0].find_element(By.XPATH, "..")
    assert row.get_attribute("data-id").startswith("false_15550012@c.us_3A")
    pre = bubbles[0].find_element(By.CSS_SELECTOR, "div.copyable-text[data-pre-plain-text]")
    assert pre.get_attribute("data-pre-plain-text").endswith("] Ana: ")
    emoji = bubbles[0].find_element(By.CSS_SELECTOR, "span.selectable-text img.emoji")
    assert emoji.get_attribute("alt") == "🙏"
    assert "🙏" not in bubbles[0].find_element(By.CSS_SELECTOR, "span.selectable-text").text
    assert bubbles[1].find_elements(By.CSS_SELECTOR, "img[src^='data:image/']:not(.emoji)")
    assert bubbles[1].find_element(By.CSS_SELECTOR, "span.selectable-text").text == "the receipt"
    assert driver.find_element(By.CSS_SELECTOR, "#main header span[title]").text == "Ana"


def test_a_message_in_the_open_chat_shows_at_once_and_is_not_unread(driver, wa):
    wa.login()
    open_chat(driver, wa, phone="15550013")
    find(driver, COMPOSE)
    wa.incoming("15550013", "just now")
    bubble = find(driver, INCOMING)
    assert bubble.find_element(By.CSS_SELECTOR, "span.selectable-text").text == "just now"
    assert [c["unread"] for c in wa.chats()] == [0]
    driver.get("about:blank")  # the page goes: the chat counts unread again
    wait(driver).until(lambda d: not wa.chat_open("15550013"))
    wa.incoming("15550013", "later")
    assert [c["unread"] for c in wa.chats()] == [1]


def test_clicking_a_row_opens_its_chat_and_clears_the_badge(driver, wa):
    wa.login()
    wa.incoming("15550014", "click me")
    driver.get(wa.url + "/")
    find(driver, f"{ROW} {BADGE}")
    find(driver, f"{ROW} span[title='+15550014']").click()
    assert find(driver, INCOMING).text.startswith("click me")
    wait(driver).until(lambda d: absent(d, f"{ROW} {BADGE}"))


def test_incoming_over_http_and_bad_input(driver, wa):
    status, body = http(wa, "POST", "/_standin/incoming", {"phone": "+1 555 0015", "text": "hi"})
    assert status == 200 and body["phone"] == "15550015"
    assert http(wa, "GET", "/_standin/chats")[1]["chats"][0]["unread"] == 1
    assert http(wa, "POST", "/_standin/incoming", {"text": "no phone"})[0] == 400
    assert http(wa, "POST", "/_standin/incoming", {"phone": "1", "media": "gif"})[0] == 400
