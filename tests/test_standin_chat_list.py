"""The stand-in's chat list is virtualised, with filter chips above it, as WhatsApp Web's is.

Only the rows in view exist in the page (at most 20, the most recent first); scrolling the pane
draws others; the Unread chip lists the unread chats, the All chip everything again.
"""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from tests.test_standin import driver, server, wa, wait  # noqa: F401 - the same fixtures

pytestmark = pytest.mark.browser

ROW = "#pane-side div[aria-label='Chat list'] div[role='listitem']"


def titles(driver) -> list[tuple[str, bool]]:
    """(title, has a badge) of each row in the page, in list order."""
    return [
        tuple(r)
        for r in driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((r) =>"
            " [r.querySelector('span[title]').title,"
            "  !!r.querySelector(\"span[aria-label*='unread message']\")]);",
            ROW,
        )
    ]


@pytest.fixture
def long_list(driver, wa):
    """25 read chats above 30 older unread ones, the page open on the list."""
    wa.login()
    now = time.time()
    for i in range(30):
        wa.incoming(f"+1555100{i:04d}", f"older {i}", at=now - 600 - i)
    for i in range(25):
        wa.incoming(f"+1555200{i:04d}", f"newer {i}", at=now - 60 - i)
        wa.read_on_phone(f"+1555200{i:04d}")
    driver.get(wa.url + "/")
    wait(driver).until(lambda d: titles(d))
    return wa


def test_the_list_draws_the_twenty_most_recent_chats_only(driver, long_list):
    assert titles(driver) == [(f"+1555200{i:04d}", False) for i in range(20)]
    grid = driver.find_element(By.CSS_SELECTOR, "#pane-side div[aria-label='Chat list']")
    assert grid.get_attribute("aria-rowcount") == "55"


def test_scrolling_the_pane_draws_the_rows_further_down(driver, long_list):
    driver.execute_script("document.getElementById('pane-side').scrollTop = 30 * 72;")
    wait(driver).until(lambda d: titles(d)[0] == ("+15551000005", True))
    assert len(titles(driver)) == 20


def test_the_unread_chip_lists_the_unread_chats_and_all_everything_again(driver, long_list):
    chip = driver.find_element(By.CSS_SELECTOR, "[role='tablist'] button#unread-filter")
    assert chip.text == "Unread" and chip.get_attribute("aria-selected") == "false"
    chip.click()
    assert chip.get_attribute("aria-selected") == "true"
    assert titles(driver) == [(f"+1555100{i:04d}", True) for i in range(20)]
    driver.find_element(By.ID, "all-filter").click()
    assert chip.get_attribute("aria-selected") == "false"
    assert titles(driver)[0] == ("+15552000000", False)


def test_without_chips_the_page_is_an_older_build(driver, wa):
    wa.login()
    wa.configure(chat_filters=False)
    wa.incoming("+15553000000", "hi")
    driver.get(wa.url + "/")
    wait(driver).until(lambda d: titles(d))
    assert not driver.find_elements(By.CSS_SELECTOR, "[role='tablist']")
