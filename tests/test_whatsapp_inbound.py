"""Replies by WhatsApp, end to end: a real worker reads them from WhatsApp Web in real Chromium.

The stand-in drops messages into chats as a contact would; the worker, idle or between two
sends, finds the unread chats in the chat list, opens each, and stores what it reads. Each
test checks the rows in the queue and what the stand-in received.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter

import pytest

from message_queue import ConversationNotFound
from tests.wa_e2e_support import ROOT, WorkerThread, wait_until
from tests.wa_standin import StandinServer
from worker.inbox import InboxReader
from worker.whatsapp import WhatsAppTransport
from worker.whatsapp.inbox import Bubble, received_times, stamp_time

SELECTORS = ROOT / "worker" / "selectors.json"
READ_WITHIN = 15.0  # seconds a reply may take to be stored (the contract allows 60)
log = logging.getLogger("test")


@pytest.fixture(scope="module")
def server():
    with StandinServer(tick_delay=0.05, logged_in=True) as srv:
        yield srv


@pytest.fixture
def wa(server):
    server.reset()
    server.login()
    return server


@pytest.fixture
def wa_settings(settings, wa):
    return settings.replace(
        whatsapp_web_url=wa.url, send_timeout=10.0, selectors_file=str(SELECTORS)
    )


class TimedTransport(WhatsAppTransport):
    """The real transport, timing each poll_inbound (the cost the bench reports)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.polls: list[tuple[float, int]] = []

    def poll_inbound(self, *args, **kwargs):
        started = time.monotonic()
        found = super().poll_inbound(*args, **kwargs)
        self.polls.append((time.monotonic() - started, len(found)))
        return found


@pytest.fixture
def start_worker(wa_settings, queue, chromium):
    workers = []

    def start(settings=None):
        transport = TimedTransport(settings or wa_settings)
        workers.append(WorkerThread(settings or wa_settings, queue, transport=transport))
        return workers[-1]

    yield start
    for w in workers:
        if w.thread.is_alive():
            w.stop()


def replies(queue, phone: str) -> list[dict]:
    try:
        found, _ = queue.conversation_messages(phone, limit=200)
    except ConversationNotFound:
        return []
    return [m for m in found if m["direction"] == "in"]


def wait_replies(queue, phone: str, n: int, timeout: float = READ_WITHIN) -> list[dict]:
    return wait_until(
        lambda: (r := replies(queue, phone)) and len(r) >= n and r,
        timeout,
        f"{n} repl(ies) from {phone}",
        interval=0.1,
    )


def create_job(client, auth, **body) -> str:
    response = client.post("/send", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def unread(wa, phone: str) -> int:
    digits = phone.lstrip("+")
    return next((c["unread"] for c in wa.chats() if c["phone"] == digits), 0)


# --- the reading, in real Chromium ----------------------------------------------------------


@pytest.mark.browser
def test_a_reply_is_stored_as_incoming_and_opening_the_chat_clears_its_badge(
    wa, queue, start_worker
):
    start_worker()
    wa.incoming("+14155550100", "Thanks, got it!")
    (reply,) = wait_replies(queue, "+14155550100", 1)
    assert reply["text"] == "Thanks, got it!" and reply["channel"] == "whatsapp"
    assert reply["status"] == "received" and reply["sender"] == "test-worker"
    assert unread(wa, "+14155550100") == 0
    stored = queue.get_inbound(reply["id"])
    assert stored["provider_id"].startswith("false_14155550100@c.us_")
    assert abs(stored["received_at"] - time.time()) < 60


@pytest.mark.browser
def test_emoji_a_saved_name_and_a_media_caption_come_through(wa, queue, start_worker):
    start_worker()
    # A saved contact: the list shows "Ana", the reply is keyed by the number in data-id.
    wa.incoming("+14155550101", "Obrigado 🙏 até logo", name="Ana")
    wa.incoming("+14155550102", media="image", caption="the receipt")
    wa.incoming("+14155550102", media="document")
    (ana,) = wait_replies(queue, "+14155550101", 1)
    assert ana["text"] == "Obrigado 🙏 até logo"
    photo, doc = wait_replies(queue, "+14155550102", 2)
    assert (photo["text"], queue.get_inbound(photo["id"])["kind"]) == ("the receipt", "image")
    assert (doc["text"], queue.get_inbound(doc["id"])["kind"]) == ("", "document")


@pytest.mark.browser
def test_a_reply_in_the_chat_left_open_is_read_without_a_badge(wa, queue, start_worker):
    worker = start_worker()
    wa.incoming("+14155550103", "first")
    wait_replies(queue, "+14155550103", 1)
    # The worker's browser now shows that chat: the next message there is read at once by
    # the page and never gets a badge, yet it must be stored.
    wa.incoming("+14155550103", "second, while the chat is open")
    assert unread(wa, "+14155550103") == 0
    texts = [r["text"] for r in wait_replies(queue, "+14155550103", 2)]
    assert texts == ["first", "second, while the chat is open"]
    assert worker.worker.transport.inbound_problem is None


@pytest.mark.browser
def test_a_restarted_worker_stores_nothing_twice(wa, queue, start_worker):
    first = start_worker()
    wa.incoming("+14155550104", "ok")
    wa.incoming("+14155550104", "ok")  # the same text twice is two messages
    wait_replies(queue, "+14155550104", 2)
    first.stop()
    # As the real server notices a device went away: its page no longer reads the chat.
    wait_until(lambda: not wa.chat_open("+14155550104"), 5, "the old page to be gone")
    wa.incoming("+14155550104", "one more")
    assert unread(wa, "+14155550104") == 1
    start_worker()  # no memory of what it read: the queue has the bubbles' ids
    wait_replies(queue, "+14155550104", 3)
    wait_until(lambda: unread(wa, "+14155550104") == 0, READ_WITHIN, "the chat read")
    texts = Counter(r["text"] for r in replies(queue, "+14155550104"))
    assert texts == Counter({"ok": 2, "one more": 1})


@pytest.mark.browser
def test_stop_by_whatsapp_suppresses_and_cancels_the_queued_row(
    wa, queue, start_worker, client, auth, wa_settings
):
    numbers = [f"+1415555{200 + i:04d}" for i in range(5)]
    start_worker(wa_settings.replace(min_delay=1.0, max_delay=1.0))
    job_id = create_job(client, auth, message="Offer {phone}", numbers=numbers)
    wait_until(lambda: wa.messages(), 20, "the first message to arrive")
    wa.incoming(numbers[-1], "  Stop ")
    wait_until(lambda: queue.suppressed([numbers[-1]]), READ_WITHIN, "the opt-out")
    status = wait_until(
        lambda: (
            (s := client.get(f"/status/{job_id}", headers=auth).get_json())["status"] == "completed"
            and s
        ),
        30,
        "the job to complete",
        interval=0.1,
    )
    found, _ = queue.list_messages(job_id, limit=10)
    stopped = next(r for r in found if r["phone"] == numbers[-1])
    assert (stopped["status"], stopped["error"]) == ("cancelled", "opted_out")
    assert numbers[-1].lstrip("+") not in {m["phone"] for m in wa.messages()}
    assert status["opted_out"] == 1


@pytest.mark.browser
def test_thirty_unread_chats_while_a_job_sends_keep_its_pacing(
    wa, queue, start_worker, client, auth, wa_settings
):
    min_delay = 1.0
    numbers = [f"+1415555{300 + i:04d}" for i in range(8)]
    repliers = [f"+1415555{400 + i:04d}" for i in range(30)]
    worker = start_worker(wa_settings.replace(min_delay=min_delay, max_delay=min_delay))
    job_id = create_job(client, auth, message="Hello {phone}", numbers=numbers)
    wait_until(lambda: wa.messages(), 20, "the first message to arrive")
    for i, phone in enumerate(repliers):
        wa.incoming(phone, f"reply {i}")
    wait_until(
        lambda: all(replies(queue, p) for p in repliers),
        60,
        "all 30 replies stored",
        interval=0.2,
        details=lambda: f"missing: {[p for p in repliers if not replies(queue, p)]}",
    )
    wait_until(
        lambda: client.get(f"/status/{job_id}", headers=auth).get_json()["status"] == "completed",
        40,
        "the job to complete",
        interval=0.1,
    )
    sent = wa.messages()
    assert Counter(m["phone"] for m in sent) == Counter(p.lstrip("+") for p in numbers)
    arrivals = [m["at"] for m in sent]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) >= min_delay, gaps
    assert all(len(replies(queue, p)) == 1 for p in repliers)
    busy = [(s, n) for s, n in worker.worker.transport.polls if n]
    log.warning(
        "30 unread chats: %d polls with replies, %.2f s in all, longest %.2f s",
        len(busy),
        sum(s for s, _ in busy),
        max(s for s, _ in busy),
    )
    assert max(s for s, _ in worker.worker.transport.polls) < 4.0


@pytest.mark.browser
def test_a_chat_list_locator_that_matches_nothing_is_named_once(
    wa, queue, start_worker, client, auth, wa_settings, tmp_path, caplog
):
    table = json.loads(SELECTORS.read_text(encoding="utf-8"))
    table["chat_title"] = ["span[data-renamed-by-whatsapp]"]
    broken = tmp_path / "selectors.json"
    broken.write_text(json.dumps(table), encoding="utf-8")
    worker = start_worker(wa_settings.replace(selectors_file=str(broken)))
    create_job(client, auth, message="Hi", numbers=["+14155550600"])
    wait_until(lambda: wa.messages(), 20, "the message to arrive")  # the send's self-check
    wait_until(lambda: worker.worker.transport.inbox.checked, READ_WITHIN, "the inbox's check")
    named = [
        r.getMessage()
        for r in caplog.records
        if "self-check" in r.getMessage() and "chat_title" in r.getMessage()
    ]
    assert len(named) == 1, named


@pytest.mark.browser
def test_a_stop_during_a_read_opens_no_further_chat(wa, wa_settings, queue, chromium):
    stop = threading.Event()

    class StoppedWhileReading(WhatsAppTransport):
        def _open_for_reading(self, digits):
            super()._open_for_reading(digits)
            stop.set()  # the first SIGTERM comes while the first unread chat is open

    transport = StoppedWhileReading(wa_settings)
    try:
        wait_until(lambda: transport.check_session().state == "logged_in", 30, "the app")
        repliers = [f"+1415555{500 + i:04d}" for i in range(4)]
        for phone in repliers:
            wa.incoming(phone, "hi")
        reader = InboxReader(queue, wa_settings, transport, time.time, stop=stop)
        assert reader.read_if_due() == 1  # that chat is read and stored, and nothing more
        assert sorted(unread(wa, p) for p in repliers) == [0, 1, 1, 1]
        assert reader.read_if_due() == 0  # nor is a new read started
    finally:
        transport.close()


@pytest.mark.browser
@pytest.mark.parametrize("chips", [True, False], ids=["unread-filter", "scrolling-the-list"])
def test_unread_chats_below_the_rows_the_list_draws_are_all_read(
    wa, wa_settings, queue, chromium, chips
):
    wa.configure(chat_filters=chips)  # without the chips, as older builds: the list is scrolled
    now = time.time()
    waiting = [f"+1415556{i:04d}" for i in range(30)]
    for i, phone in enumerate(waiting):
        wa.incoming(phone, f"reply {i}", at=now - 600 - i)
    for i in range(25):  # newer chats, read on the phone, fill the rows the page draws
        wa.incoming(f"+1415557{i:04d}", "seen", at=now - 60 - i)
        wa.read_on_phone(f"+1415557{i:04d}")
    assert [c["unread"] for c in wa.chats()] == [0] * 25 + [1] * 30
    transport = WhatsAppTransport(wa_settings)
    try:
        wait_until(lambda: transport.check_session().state == "logged_in", 30, "the app")
        reader = InboxReader(queue, wa_settings, transport, time.time, every=0)
        wait_until(
            lambda: reader.read_if_due() >= 0 and all(replies(queue, p) for p in waiting),
            60,
            "all 30 replies stored",
            interval=0.1,
            details=lambda: f"missing: {[p for p in waiting if not replies(queue, p)]}",
        )
        assert [unread(wa, p) for p in waiting] == [0] * 30
        assert [len(replies(queue, p)) for p in waiting] == [1] * 30
        assert reader.read_if_due() == 0  # nothing unread: the list is left as the sender had it
        shown = transport.session.driver.execute_script(
            "const all = document.getElementById('all-filter');"
            "return [all && all.getAttribute('aria-selected'),"
            " document.getElementById('pane-side').scrollTop];"
        )
        assert shown == (["true", 0] if chips else [None, 0])
    finally:
        transport.close()


# --- the parts without a browser ------------------------------------------------------------


def test_stamp_time_reads_both_locales_and_picks_the_date_nearest_now():
    now = time.mktime((2025, 12, 9, 23, 0, 0, 0, 0, -1))
    at = time.mktime((2025, 12, 9, 22, 54, 0, 0, 0, -1))
    assert stamp_time("[10:54 PM, 12/9/2025] Ana: ", now) == at
    assert stamp_time("[22:54, 09/12/2025] Ana: ", now) == at
    assert stamp_time("[10:54\u202fp.m., 9/12/25] Ana: ", now) == at
    assert stamp_time("no stamp", now) is None


def test_received_times_stay_in_the_minute_distinct_and_in_order():
    now = time.mktime((2025, 12, 9, 23, 0, 30, 0, 0, -1))
    old = Bubble("a", "ok", "[22:54, 09/12/2025] A: ", "text")
    fresh = Bubble("b", "ok", "[23:00, 09/12/2025] A: ", "text")
    times = received_times([old, old, fresh, fresh], now)
    minute = time.mktime((2025, 12, 9, 22, 54, 0, 0, 0, -1))
    assert times[:2] == [minute + 58, minute + 59]
    assert times[2:] == [int(now) - 1, int(now)]
