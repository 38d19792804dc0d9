"""The worker daemon and the WhatsApp Web transport, end to end in real headless Chromium.

Jobs are created through the API; a real worker (a thread here, or `run_worker.py` where a
signal is the point) sends them through WhatsApp Web's local stand-in. Each test checks what
the stand-in received against the rows in the database: every recipient exactly once, with
the exact text, and no row left `sending`.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest

from message_queue import Queue
from tests.wa_e2e_support import (
    ROOT,
    WorkerProcess,
    WorkerThread,
    holds_for,
    kill_all,
    processes_with,
    wait_until,
    worker_environment,
)
from tests.wa_standin import StandinServer

pytestmark = pytest.mark.browser

SELECTORS = ROOT / "worker" / "selectors.json"
SEND_TIMEOUT = 10.0
FINISH = 40.0  # seconds a whole job of this file may take, start-up of Chromium included


@pytest.fixture(scope="module", autouse=True)
def _needs_chromium(chromium):
    """Every test here drives a real Chromium."""


@pytest.fixture(scope="module")
def server():
    with StandinServer(tick_delay=0.05) as srv:
        yield srv


@pytest.fixture
def wa(server):
    # Every worker of the previous test has quit its browser, so no open page can react to
    # the reset (a logout) with a navigation of its own.
    server.reset()
    return server


@pytest.fixture
def e2e_settings(settings, wa):
    return settings.replace(
        whatsapp_web_url=wa.url, send_timeout=SEND_TIMEOUT, selectors_file=str(SELECTORS)
    )


@pytest.fixture
def start_worker(e2e_settings, queue):
    """Start in-process workers; each is stopped (and its browser quit) after the test."""
    workers = []

    def start(settings=None):
        workers.append(WorkerThread(settings or e2e_settings, queue))
        return workers[-1]

    yield start
    for w in workers:
        w.stop()


@pytest.fixture
def worker_process(e2e_settings, tmp_path):
    """Start `run_worker.py` processes on the test's database and stand-in.

    Every setting is passed explicitly, so a developer's `.env` in the checkout changes nothing.
    """
    procs = []

    def start(**overrides):
        s = e2e_settings
        env = worker_environment(
            database_path=s.database_path,
            whatsapp_web_url=s.whatsapp_web_url,
            chrome_profile_dir=s.chrome_profile_dir,
            selectors_file=s.selectors_file,
            worker_id="e2e-proc",
            send_timeout=SEND_TIMEOUT,
            long_pause_every=0,
            min_delay=0.3,
            max_delay=0.3,
            retry_backoff=0,
            **overrides,
        )
        procs.append(WorkerProcess(env, tmp_path / "worker.log"))
        return procs[-1]

    yield start
    for p in procs:
        p.close()


# --- helpers -------------------------------------------------------------------------------


def phones(n: int, first: int = 100) -> list[str]:
    return [f"+1415555{first + i:04d}" for i in range(n)]


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def create_job(client, auth, **body) -> str:
    response = client.post("/send", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["rejected"] == []
    return response.get_json()["job_id"]


def job_status(client, auth, job_id) -> dict:
    response = client.get(f"/status/{job_id}", headers=auth)
    assert response.status_code == 200
    return response.get_json()


def rows(queue: Queue, job_id: str) -> list[dict]:
    found, _ = queue.list_messages(job_id, limit=1000)
    return found


def sending_rows(queue: Queue, job_id: str) -> list[dict]:
    return [r for r in rows(queue, job_id) if r["status"] == "sending"]


def in_flight_row(wa, queue: Queue, job_id: str, arrived: bool) -> dict | None:
    """A `sending` row whose message has (or has not yet) reached WhatsApp."""
    at_wa = {m["phone"] for m in wa.messages()}
    for r in sending_rows(queue, job_id):
        if (digits(r["phone"]) in at_wa) == arrived:
            return r
    return None


def received(wa) -> list[tuple[str, str]]:
    return [(m["phone"], m["text"]) for m in wa.messages()]


def wait_finished(client, auth, job_id, wa, timeout=FINISH) -> dict:
    """Wait for the job to be `completed`; its status object."""

    def completed():
        status = job_status(client, auth, job_id)
        return status if status["status"] == "completed" else None

    return wait_until(
        completed,
        timeout,
        f"job {job_id} to complete",
        interval=0.1,
        details=lambda: f"status: {job_status(client, auth, job_id)}\nstand-in got: {received(wa)}",
    )


def worker_state(client, auth) -> dict:
    workers = client.get("/session", headers=auth).get_json()["workers"]
    assert len(workers) == 1, workers
    return workers[0]


def assert_exactly_once(wa, queue, job_id, expected: dict[str, str]) -> None:
    """Every recipient arrived exactly once with its text; each row is `sent`."""
    got = Counter(received(wa))
    want = Counter((digits(p), t) for p, t in expected.items())
    assert got == want, (
        f"twice or more: {[m for m, n in got.items() if n > 1]}; "
        f"missing: {list(want - got)}; not expected: {list(got - want)}"
    )
    assert {r["phone"]: r["status"] for r in rows(queue, job_id)} == dict.fromkeys(expected, "sent")


def worker_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("worker") and r.levelno >= logging.WARNING
    ]


def png_bytes() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


# --- the tests -----------------------------------------------------------------------------


def test_job_of_20_from_the_api_is_sent_once_each_and_completes(
    client, auth, queue, wa, start_worker, caplog
):
    contacts = [
        {"phone": p, "name": f"Name{i}", "code": f"C-{i:02d}"} for i, p in enumerate(phones(20))
    ]
    job_id = create_job(
        client, auth, message="Hello {name}, your code is {code}.", contacts=contacts
    )
    wa.login()
    start_worker()
    status = wait_finished(client, auth, job_id, wa)
    assert_exactly_once(
        wa,
        queue,
        job_id,
        {c["phone"]: f"Hello {c['name']}, your code is {c['code']}." for c in contacts},
    )
    assert status["counts"]["sent"] == 20 and status["progress"] == 1.0
    assert worker_warnings(caplog) == []


def test_placeholders_newlines_emoji_and_arabic_arrive_exactly(
    client, auth, queue, wa, start_worker
):
    template = (
        "Olá {name} 😀,\nseu pedido {order} está pronto.\n\nمرحبا {name}!  {{literal}}\n\tfim 👍🏽"
    )
    contacts = [
        {"phone": "+14155550100", "name": "José", "order": "A-1"},
        {"phone": "+14155550101", "name": "فاطمة", "order": "ب-٢"},
        {"phone": "+14155550102", "name": "Zoë 🎉", "order": "C\u200d3"},
    ]
    job_id = create_job(client, auth, message=template, contacts=contacts)
    wa.login()
    start_worker()
    wait_finished(client, auth, job_id, wa)
    expected = {
        c["phone"]: (
            f"Olá {c['name']} 😀,\nseu pedido {c['order']} está pronto.\n\n"
            f"مرحبا {c['name']}!  {{literal}}\n\tfim 👍🏽"
        )
        for c in contacts
    }
    assert {r["phone"]: r["text"] for r in rows(queue, job_id)} == expected  # rendered as sent
    assert_exactly_once(wa, queue, job_id, expected)


@pytest.mark.parametrize(
    "filename, content",
    [
        ("Foto março.png", png_bytes()),
        ("Cardápio 2026.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"),
    ],
    ids=["image", "document"],
)
def test_attachment_arrives_under_its_original_name_with_the_message_as_caption(
    client, auth, queue, wa, start_worker, filename, content
):
    job_id = create_job(
        client,
        auth,
        message="Menu for {name}\nsee attached 😀",
        contacts=[
            {"phone": "+14155550100", "name": "Ana"},
            {"phone": "+14155550101", "name": "Bob"},
        ],
        attachment={"filename": filename, "content_base64": base64.b64encode(content).decode()},
    )
    stored = Path(queue.get_job(job_id)["attachment_path"])
    assert stored.name != filename  # stored under a generated name: the worker must rename
    wa.login()
    start_worker()
    wait_finished(client, auth, job_id, wa)
    assert [
        {k: m[k] for k in ("phone", "text", "attachment", "caption")} for m in wa.messages()
    ] == [
        {
            "phone": "14155550100",
            "text": "Menu for Ana\nsee attached 😀",
            "attachment": filename,
            "caption": "Menu for Ana\nsee attached 😀",
        },
        {
            "phone": "14155550101",
            "text": "Menu for Bob\nsee attached 😀",
            "attachment": filename,
            "caption": "Menu for Bob\nsee attached 😀",
        },
    ]
    assert stored.read_bytes() == content  # the stored file itself is left as it was


def test_number_not_on_whatsapp_fails_and_the_rest_go(client, auth, queue, wa, start_worker):
    numbers = phones(5)
    job_id = create_job(client, auth, message="Hi there", numbers=numbers)
    wa.set_invalid([numbers[1]])
    wa.login()
    start_worker()
    status = wait_finished(client, auth, job_id, wa)
    assert Counter(received(wa)) == Counter(
        (digits(p), "Hi there") for p in numbers if p != numbers[1]
    )
    by_phone = {r["phone"]: (r["status"], r["error"], r["attempts"]) for r in rows(queue, job_id)}
    assert by_phone[numbers[1]] == ("failed", "not_on_whatsapp", 1)
    assert [v[0] for p, v in by_phone.items() if p != numbers[1]] == ["sent"] * 4
    assert status["last_error"] == "not_on_whatsapp" and status["counts"]["failed"] == 1


def test_logout_mid_job_waits_for_login_shows_the_qr_and_resumes(
    client, auth, queue, wa, start_worker
):
    numbers = phones(12)
    job_id = create_job(client, auth, message="Batch message for {phone}", numbers=numbers)
    wa.login()
    start_worker()
    wait_until(lambda: len(wa.messages()) >= 3, FINISH, "3 messages to arrive")
    wa.logout()

    wait_until(
        lambda: job_status(client, auth, job_id)["status"] == "waiting_for_login",
        15,
        "the job to wait for login",
        details=lambda: job_status(client, auth, job_id),
    )
    wait_until(
        lambda: worker_state(client, auth)["state"] == "qr_required",
        5,
        "the worker to ask for the QR scan",
    )
    session = worker_state(client, auth)
    assert session["worker_id"] == "test-worker" and session["qr_available"] is True
    qr = client.get("/session/qr.png", headers=auth)
    assert qr.status_code == 200 and qr.mimetype == "image/png"
    assert qr.data.startswith(b"\x89PNG\r\n\x1a\n") and len(qr.data) > 100
    arrived = len(wa.messages())
    # At most the message in flight at the logout is still `sending`, kept by the worker to be
    # looked up in the chat after the login; everything else waits in the queue.
    assert len(sending_rows(queue, job_id)) <= 1
    holds_for(lambda: len(wa.messages()) == arrived, 0.5, "nothing sent while logged out")

    wa.login()
    wait_finished(client, auth, job_id, wa)
    assert_exactly_once(wa, queue, job_id, {p: f"Batch message for {p}" for p in numbers})
    assert client.get("/session/qr.png", headers=auth).status_code == 404  # QR forgotten


def test_pause_resume_and_stop_through_the_api(client, auth, queue, wa, start_worker):
    numbers = phones(30)
    job_id = create_job(client, auth, message="Hello {phone}", numbers=numbers)
    wa.login()
    start_worker()
    wait_until(lambda: len(wa.messages()) >= 3, FINISH, "3 messages to arrive")

    assert client.post(f"/pause/{job_id}", headers=auth).get_json()["status"] == "paused"
    wait_until(lambda: not sending_rows(queue, job_id), SEND_TIMEOUT, "the message in flight")
    paused_at = len(wa.messages())
    holds_for(lambda: len(wa.messages()) == paused_at, 1.0, "nothing sent while paused")
    assert job_status(client, auth, job_id)["counts"]["sent"] == paused_at

    assert client.post(f"/resume/{job_id}", headers=auth).get_json()["status"] == "running"
    wait_until(lambda: len(wa.messages()) >= paused_at + 2, 15, "sending to go on")
    assert client.post(f"/stop/{job_id}", headers=auth).get_json()["status"] == "stopped"
    wait_until(lambda: not sending_rows(queue, job_id), SEND_TIMEOUT, "the message in flight")
    stopped_at = len(wa.messages())
    holds_for(lambda: len(wa.messages()) == stopped_at, 1.0, "nothing sent after stop")

    assert stopped_at < len(numbers)
    final = {r["phone"]: r["status"] for r in rows(queue, job_id)}
    sent = {digits(p) for p, s in final.items() if s == "sent"}
    assert Counter(received(wa)) == Counter((d, f"Hello +{d}") for d in sent)
    assert Counter(final.values()) == {"sent": stopped_at, "cancelled": len(numbers) - stopped_at}
    assert job_status(client, auth, job_id)["status"] == "stopped"


def test_sigterm_mid_job_finishes_the_message_and_exits_zero(
    client, auth, queue, wa, worker_process, e2e_settings
):
    numbers = phones(20)
    job_id = create_job(client, auth, message="Term test {phone}", numbers=numbers)
    wa.login()
    worker = worker_process()
    wait_until(lambda: len(wa.messages()) >= 2, FINISH, "2 messages to arrive", details=worker.log)
    # SIGTERM lands mid-send: after the click, while the worker waits for the tick.
    wa.configure(tick_delay=1.0)
    in_flight = wait_until(
        lambda: in_flight_row(wa, queue, job_id, arrived=True),
        FINISH,
        "a message clicked but not yet confirmed",
        interval=0.01,
    )
    worker.terminate()
    assert worker.wait(SEND_TIMEOUT + 5) == 0, worker.log()

    final = {r["phone"]: r["status"] for r in rows(queue, job_id)}
    assert final[in_flight["phone"]] == "sent"  # the message being sent was finished
    assert "sending" not in final.values()
    assert "pending" in final.values()  # it was stopped mid-job, not after the end
    got = received(wa)
    assert max(Counter(got).values()) == 1
    assert Counter(got) == Counter(
        (digits(p), f"Term test {p}") for p, s in final.items() if s == "sent"
    )
    assert queue.list_workers()[0]["state"] == "stopped"
    wait_until(
        lambda: not processes_with(e2e_settings.chrome_profile_dir), 5, "Chromium to be gone"
    )


def test_sigkill_mid_send_and_restart_sends_each_message_exactly_once(
    client, auth, queue, wa, worker_process, e2e_settings
):
    numbers = phones(12)
    job_id = create_job(client, auth, message="Kill test {phone}", numbers=numbers)
    wa.login()
    profile = e2e_settings.chrome_profile_dir
    worker = worker_process()
    killed_rows = []

    # 1: right after a claim; 2: after the click, before the tick is seen (a slow tick makes
    # that window wide); 3: right after a claim again.
    for kill, arrived in enumerate((False, True, False), 1):
        wa.configure(tick_delay=1.5 if arrived else 0.05)
        row = wait_until(
            lambda arrived=arrived: in_flight_row(wa, queue, job_id, arrived),
            FINISH,
            f"a message in flight (kill {kill})",
            interval=0.01,
            details=worker.log,
        )
        worker.kill()
        killed_rows.append(row)
        wait_until(lambda: not processes_with(profile), 5, "the old Chromium to be gone")
        wa.configure(tick_delay=0.05)
        worker = worker_process()

    wait_finished(client, auth, job_id, wa, timeout=60)
    worker.terminate()
    assert worker.wait(SEND_TIMEOUT + 5) == 0, worker.log()
    assert_exactly_once(wa, queue, job_id, {p: f"Kill test {p}" for p in numbers})
    # The one killed after its click was found in the chat by the restarted worker.
    assert f"recovered message {killed_rows[1]['id']}: sent" in worker.log(10**6)
    assert queue.integrity_check() == "ok"


@pytest.mark.parametrize(
    "sig, replaced_within", [(signal.SIGKILL, 20), (signal.SIGSTOP, 90)], ids=["killed", "frozen"]
)
def test_a_browser_killed_or_frozen_mid_job_is_replaced_and_the_job_completes(
    client, auth, queue, wa, start_worker, e2e_settings, sig, replaced_within
):
    """SIGKILL: Chromium dies. SIGSTOP: it neither dies nor answers, as when it freezes; its
    commands time out and it is killed (a stopped browser ignores quit and keeps the profile
    locked). Either way a new one opens the same profile and every message arrives once."""
    numbers = phones(8)
    job_id = create_job(client, auth, message="Browser gone {phone}", numbers=numbers)
    wa.login()
    start_worker()
    profile = e2e_settings.chrome_profile_dir
    wait_until(
        lambda: len(wa.messages()) >= 3 and sending_rows(queue, job_id),
        FINISH,
        "a message in flight after 3 arrived",
        interval=0.01,
    )
    struck = processes_with(profile)
    assert struck, "no Chromium runs with the worker's profile"
    kill_all(struck, sig)
    try:
        wait_until(
            lambda: set(processes_with(profile)) - set(struck),
            replaced_within,
            "a new Chromium on the same profile",
        )
        wait_finished(client, auth, job_id, wa, timeout=60)
    finally:
        kill_all(struck)
    assert_exactly_once(wa, queue, job_id, {p: f"Browser gone {p}" for p in numbers})


def test_sends_through_fallback_selectors_when_the_first_ones_break(
    client, auth, queue, wa, start_worker, e2e_settings, tmp_path, caplog
):
    table = json.loads(SELECTORS.read_text(encoding="utf-8"))
    for name in ("compose_box", "send_button", "app_shell", "outgoing_bubble", "tick_done"):
        assert len(table[name]) > 1, f"{name} has no fallback alternative"
        table[name][0] = f"[data-renamed-by-whatsapp='{name}']"  # matches nothing any more
    broken = tmp_path / "selectors.json"
    broken.write_text(json.dumps(table), encoding="utf-8")

    numbers = phones(4)
    job_id = create_job(client, auth, message="Fallback {phone}\nline two 😀", numbers=numbers)
    wa.login()
    worker = start_worker(e2e_settings.replace(selectors_file=str(broken)))
    assert worker.worker.transport.locators.table == {
        k: v for k, v in table.items() if not k.startswith("_")
    }
    wait_finished(client, auth, job_id, wa)
    assert_exactly_once(wa, queue, job_id, {p: f"Fallback {p}\nline two 😀" for p in numbers})
    # Confirmed by the tick and the bubble found through the fallbacks, not by a timeout and a
    # look into the chat's history afterwards.
    assert worker_warnings(caplog) == []
