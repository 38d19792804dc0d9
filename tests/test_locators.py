"""Locator lookups and waits run inside the page: real Chromium on small local pages."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.common.exceptions import JavascriptException, WebDriverException

from worker.whatsapp.browser import build_driver
from worker.whatsapp.locators import REQUIRED, WAIT_SLICE, Locators

pytestmark = pytest.mark.browser

PAGES = {
    "/list": """<div id=a><p class=x>one</p><p class=x>two</p></div>
                <div id=b><p class=y>three</p><span>four</span></div>""",
    # The element the tests wait for arrives late, after `?after=` milliseconds.
    "/late": """<div id=root></div><script>
                  setTimeout(() => { const p = document.createElement('p');
                    p.className = 'late'; p.textContent = 'here';
                    document.getElementById('root').appendChild(p); },
                    +new URLSearchParams(location.search).get('after'));
                </script>""",
    # Goes elsewhere while a wait is running, as WhatsApp Web does on logout.
    "/moving": """<p>leaving</p><script>
                    setTimeout(() => location.replace('/late?after=0'), 200);</script>""",
}


class Pages(BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGES.get(self.path.split("?")[0], "<p>nothing</p>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def driver(chromium, tmp_path_factory):
    drv = build_driver(profile_dir=str(tmp_path_factory.mktemp("locators") / "profile"))
    yield drv
    drv.quit()


def locators(**table) -> Locators:
    return Locators({**{name: ["#never"] for name in REQUIRED}, **table})


def texts(elements) -> list[str]:
    return [e.text for e in elements]


def test_the_first_alternative_that_matches_wins(driver, site):
    driver.get(site + "/list")
    loc = locators(outgoing_bubble=["p.missing", "p.x", "p"])
    assert texts(loc.find_all(driver, "outgoing_bubble")) == ["one", "two"]
    assert loc.find(driver, "outgoing_bubble").text == "one"


def test_xpath_alternatives_work_and_give_only_elements(driver, site):
    driver.get(site + "/list")
    loc = locators(bubble_text=["xpath://div[@id='b']/span/text()", "xpath://div[@id='b']/*"])
    assert texts(loc.find_all(driver, "bubble_text")) == ["three", "four"]


def test_a_lookup_under_an_element_sees_only_what_is_inside_it(driver, site):
    driver.get(site + "/list")
    loc = locators(app_shell=["#b"], bubble_text=["p.x", "p", "xpath:.//span"])
    shell = loc.find(driver, "app_shell")
    assert texts(loc.find_all(shell, "bubble_text")) == ["three"]


def test_names_are_checked_in_order_and_missing_ones_are_named(driver, site):
    driver.get(site + "/list")
    loc = locators(qr_canvas=["canvas"], app_shell=["#a"], compose_box=["#b p"])
    name, element = loc.wait_for_any(driver, ("qr_canvas", "compose_box", "app_shell"), 5)
    assert (name, element.text) == ("compose_box", "three")
    assert loc.wait_for_any(driver, ("qr_canvas",), 0.1) is None
    assert loc.missing(driver, ("qr_canvas", "app_shell", "compose_box")) == ["qr_canvas"]


def test_nothing_found_is_an_empty_list_or_none(driver, site):
    driver.get(site + "/list")
    loc = locators()
    assert loc.find_all(driver, "outgoing_bubble") == []
    assert loc.find(driver, "outgoing_bubble") is None


def test_a_broken_selector_is_an_error_and_the_self_check_names_everything(driver, site):
    driver.get(site + "/list")
    loc = locators(outgoing_bubble=["p[", "p"])
    with pytest.raises(WebDriverException):
        loc.find_all(driver, "outgoing_bubble")
    assert loc.missing(driver, ("app_shell", "outgoing_bubble")) == ["app_shell", "outgoing_bubble"]


def test_a_wait_answers_with_what_appeared_later(driver, site):
    driver.get(site + "/late?after=300")
    loc = locators(app_shell=["p.late"])
    assert loc.find(driver, "app_shell") is None
    name, element = loc.wait_for_any(driver, ("qr_canvas", "app_shell"), 10)
    assert (name, element.text) == ("app_shell", "here")


def test_a_wait_longer_than_one_slice_keeps_asking(driver, site):
    driver.get(site + f"/late?after={int(WAIT_SLICE * 1000 + 400)}")
    loc = locators(app_shell=["p.late"])
    assert loc.wait_for_any(driver, ("app_shell",), 10)[0] == "app_shell"


def test_a_wait_for_what_never_comes_gives_none_after_its_time(driver, site):
    driver.get(site + "/list")
    start = time.monotonic()
    assert locators().wait_for_any(driver, ("app_shell",), 0.3) is None
    assert time.monotonic() - start >= 0.3


def test_a_wait_survives_the_page_navigating_away(driver, site):
    driver.get(site + "/moving")
    loc = locators(app_shell=["p.late"])
    name, element = loc.wait_for_any(driver, ("app_shell",), 10)
    assert (name, element.text) == ("app_shell", "here")
    assert driver.current_url.endswith("/late?after=0")


def test_an_error_in_a_waited_check_is_raised_at_once(driver, site):
    driver.get(site + "/list")
    start = time.monotonic()
    with pytest.raises(JavascriptException, match="in-page wait failed"):
        locators().wait(driver, "return ARGS[0].no.such.thing;", 20, {})
    assert time.monotonic() - start < 10  # not the 20 s wait, nor the 30 s script timeout


def test_run_passes_arguments_and_helpers(driver, site):
    driver.get(site + "/list")
    loc = locators(outgoing_bubble=["p.x"])
    assert loc.run(driver, "return [ARGS[0] + 1, read(find('outgoing_bubble'))];", 41) == [
        42,
        "one",
    ]


def test_a_name_the_selectors_file_lacks_matches_nothing(driver, site):
    # An older SELECTORS_FILE without the reply-reading names still loads; those are missing.
    driver.get(site + "/list")
    loc = locators(x=["p.x"])
    assert loc.find(driver, "chat_list") is None
    assert loc.missing(driver, ["x", "chat_list"]) == ["chat_list"]


def test_the_shipped_file_has_the_reply_locators_with_fallbacks():
    from worker.whatsapp.inbox import INBOX_CHECK, MEDIA_KINDS

    loc = Locators.load(Path(__file__).resolve().parents[1] / "worker" / "selectors.json")
    names = [*INBOX_CHECK, "unread_badge", "incoming_bubble", "pre_plain_text", "emoji_img"]
    assert all(len(loc.table[n]) >= 1 for n in names + [f"media_{k}" for k in MEDIA_KINDS])
    assert all(len(loc.table[n]) >= 2 for n in ("chat_row", "unread_badge", "incoming_bubble"))
