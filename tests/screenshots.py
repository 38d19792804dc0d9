"""Save a PNG of every /app screen at desktop (1280) and phone (390) width: `make screenshots`.

The app runs on a throw-away database filled with campaigns in every state; workers are
shown through their heartbeats (no real browser session is needed for a picture), and the
login QR code is a drawn stand-in. Usage: python tests/screenshots.py [folder]
"""

from __future__ import annotations

import base64
import io
import logging
import random
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from app import create_app  # noqa: E402
from message_queue import JobStatus, Queue  # noqa: E402
from tests.conftest import AUTH  # noqa: E402
from tests.test_app_browser import AppServer, page_settings, sign_in  # noqa: E402
from utils.replies import take_inbound  # noqa: E402
from worker.whatsapp.browser import build_driver  # noqa: E402

WIDTHS = {"desktop": 1280, "phone": 390}
NAMES = [
    "Ana Souza",
    "Bruno Lima",
    "Carla Dias",
    "Diego Alves",
    "Elisa Rocha",
    "Fábio Nunes",
    "Gabriela Reis",
    "Hugo Pires",
    "Íris Matos",
    "João Costa",
]


def fake_qr_png(modules: int = 29, scale: int = 8) -> bytes:
    """A picture shaped like a QR code (finder squares, random modules); not scannable."""
    rng = random.Random(7)
    grid = [[rng.random() < 0.45 for _ in range(modules)] for _ in range(modules)]
    for oy, ox in ((0, 0), (0, modules - 7), (modules - 7, 0)):
        for y in range(7):
            for x in range(7):
                edge = y in (0, 6) or x in (0, 6)
                core = 2 <= y <= 4 and 2 <= x <= 4
                grid[oy + y][ox + x] = edge or core
    size = (modules + 8) * scale
    rows = []
    for py in range(size):
        my = py // scale - 4
        line = bytearray([0])
        for px in range(size):
            mx = px // scale - 4
            dark = 0 <= my < modules and 0 <= mx < modules and grid[my][mx]
            line.append(0 if dark else 255)
        rows.append(bytes(line))

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def new_job(client, name: str, count: int, first: int, channel: str = "whatsapp") -> str:
    contacts = [
        {"phone": f"+55119{first + i:08d}", "name": NAMES[i % len(NAMES)], "order": f"A-{100 + i}"}
        for i in range(count)
    ]
    response = client.post(
        "/send",
        headers=AUTH,
        json={
            "name": name,
            "channel": channel,
            "contacts": contacts,
            "message": "Olá {name}, seu pedido {order} está pronto para retirada. 😀",
        },
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def send_some(
    queue: Queue, channel: str, count: int, fail_every: int = 0, unknown: int = 0
) -> None:
    """Act as a worker for `count` messages: most sent, some failed, a few unknown."""
    for i in range(count):
        message = queue.claim_next(channel, "seed")
        if message is None:
            return
        if i < unknown:
            queue.mark_unknown(message["id"], "seed", "send_not_confirmed")
        elif fail_every and i % fail_every == fail_every - 1:
            queue.mark_failed(message["id"], "seed", "not_on_whatsapp")
        else:
            queue.mark_sent(message["id"], "seed")


def seed(client, queue: Queue) -> dict:
    """Campaigns in every state; returns the ids the screens need."""
    done = new_job(client, "October newsletter", 120, 10_000)
    send_some(queue, "whatsapp", 120, fail_every=17, unknown=1)
    stopped = new_job(client, "Test run", 12, 20_000)
    send_some(queue, "whatsapp", 5)
    client.post(f"/stop/{stopped}", headers=AUTH)
    paused = new_job(client, "Clinic reminders – Tuesday", 80, 30_000)
    send_some(queue, "whatsapp", 22)
    client.post(f"/pause/{paused}", headers=AUTH)
    running = new_job(client, "November promo <b>50% off</b>", 500, 40_000)
    send_some(queue, "whatsapp", 183, fail_every=40)
    return {"done": done, "running": running}


def seed_conversations(client, queue: Queue) -> str:
    """Replies to the finished campaign: unread threads, a starred one, one by SMS, and one
    thread answered back and forth; returns the number of that thread."""
    start = time.time()
    replies = [  # (row of the October newsletter, text, minutes from now, channel)
        (3, "Vocês abrem no feriado?", 2, "whatsapp"),
        (5, "Obrigado, já passo aí!", 5, "whatsapp"),
        (8, "Qual o horário da loja no sábado?", 9, "sms"),
        (11, "Pode entregar no meu trabalho?", 14, "whatsapp"),
    ]
    for row, text, minutes, channel in replies:
        phone = f"+55119{10_000 + row:08d}"
        sender = "office-pc-sms" if channel == "sms" else "office-pc-whatsapp"
        queue.record_inbound(phone, channel, sender, text, start + minutes * 60)
    queue.set_read("+5511900010005", True)
    queue.set_starred("+5511900010003", True)
    ana = "+5511900010000"
    # A thread is ordered by the second: a second apart, the campaign, her question and our
    # answers (sent now, by the queue's clock) come in the order they were written.
    time.sleep(1.1)
    queue.record_inbound(
        ana, "whatsapp", "office-pc-whatsapp", "Oi! Posso retirar amanhã de manhã?", time.time()
    )
    time.sleep(1.1)
    # Answered by SMS, so no campaign's WhatsApp rows are claimed before it; then delivered.
    for text in ("Pode sim, abrimos às 9h.", "Traga um documento com foto, por favor."):
        answer = client.post(
            f"/conversations/{ana[1:]}/reply", headers=AUTH, json={"text": text, "channel": "sms"}
        )
        assert answer.status_code == 202, answer.get_json()
        message = queue.claim_next("sms", "office-pc-sms")
        assert message is not None and queue.mark_sent(message["id"], "office-pc-sms")
        queue.mark_delivered(message["id"])
    queue.record_inbound(
        ana, "whatsapp", "office-pc-whatsapp", "Perfeito, obrigada!\nAté amanhã 😊", start + 20 * 60
    )
    return ana


def seed_opt_outs(client, queue: Queue, settings) -> int:
    """Numbers that opted out every way: by a reply (SMS and WhatsApp), by hand, by a file;
    returns how many. After the conversations, whose pictures show no opt-out yet."""
    for phone, text, channel in (
        ("+5511900010008", "PARAR", "sms"),
        ("+5511900010011", "Stop", "whatsapp"),
    ):
        sender, at = f"office-pc-{channel}", time.time()
        take_inbound(
            queue, settings, phone=phone, channel=channel, sender=sender, text=text, received_at=at
        )
    added = client.post(
        "/suppressions", headers=AUTH, json={"phones": ["+55 11 98888-1234", "+55 21 97777-4321"]}
    )
    assert added.status_code == 200, added.get_json()
    listing = "Nome;Celular\nRita;+55 11 95555-0101\nSérgio;+55 11 95555-0102\n"
    imported = client.post(
        "/suppressions/import",
        headers=AUTH,
        data={"file": (io.BytesIO(listing.encode("utf-8")), "nao-enviar.csv")},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 200, imported.get_json()
    return 6


def capture(driver, path: Path, width: int) -> None:
    """The whole page at `width`, as tall as it is."""
    metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


CONTACTS = (
    "\ufeffNome;Celular;Pedido;Loja\n"
    + "".join(
        f"{n};+55 11 9{4000 + i:04d}-{1000 + i:04d};A-{100 + i};Centro\n"
        for i, n in enumerate(NAMES)
    )
    + "Sem número;12ab;A-999;Centro\nAna de novo;+55 11 94000-1000;A-1;Sul\n"
)


def main(out: Path) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="screenshots-"))
    settings = page_settings(
        base,
        min_delay=4,
        max_delay=8,
        long_pause_every=10,
        long_pause_min=20,
        long_pause_max=40,
        sms_min_delay=8,
        sms_max_delay=15,
    )
    queue = Queue(settings.database_path)
    app = create_app(settings, queue)
    ids = seed(app.test_client(), queue)
    contacts = base / "clientes.csv"
    contacts.write_text(CONTACTS, encoding="utf-8")
    driver = build_driver(profile_dir=str(base / "profile"), headless=True)
    try:
        with AppServer(app) as server:
            for label, width in WIDTHS.items():
                shoot(Screens(driver, server.url, out, label, width), queue, ids, contacts)
            # After the campaigns: answers to replies are jobs too, and would join that list.
            thread = seed_conversations(app.test_client(), queue)
            for label, width in WIDTHS.items():
                shoot_conversations(Screens(driver, server.url, out, label, width), thread)
            opted_out = seed_opt_outs(app.test_client(), queue, settings)
            for label, width in WIDTHS.items():
                shoot_opt_outs(Screens(driver, server.url, out, label, width), opted_out)
    finally:
        driver.quit()
        queue.close()
    return 0


class Screens:
    """Where and how wide the pictures of one run are taken."""

    def __init__(self, driver, url: str, out: Path, label: str, width: int):
        self.driver, self.url, self.out, self.label, self.width = driver, url, out, label, width
        self.wait = WebDriverWait(driver, 10, poll_frequency=0.05)

    def open(self, path: str) -> None:
        self.driver.get(f"{self.url}{path}")

    def save(self, name: str) -> None:
        capture(self.driver, self.out / f"{name}-{self.label}.png", self.width)


def shoot(screens: Screens, queue: Queue, ids: dict, contacts: Path) -> None:
    """Every screen at one width."""
    driver, wait = screens.driver, screens.wait
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": screens.width,
            "height": 800,
            "deviceScaleFactor": 1,
            "mobile": screens.width < 600,
        },
    )
    driver.delete_all_cookies()
    screens.open("/app")
    wait.until(EC.visibility_of_element_located((By.ID, "api_key")))
    screens.save("sign-in")
    sign_in(driver, screens.url)

    queue.heartbeat("office-pc-whatsapp", "whatsapp", "sending", ids["running"])
    queue.heartbeat("office-pc-sms", "sms", "logged_in")
    screens.open("/app")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs .job")) == 4)
    wait.until(EC.text_to_be_present_in_element((By.ID, "workers"), "Sending “November promo"))
    screens.save("campaigns")

    queue.heartbeat("office-pc-whatsapp", "whatsapp", "qr_required")
    queue.save_qr("office-pc-whatsapp", fake_qr_png())
    assert queue.set_channel_waiting("whatsapp", JobStatus.WAITING_FOR_LOGIN)
    wait.until(EC.visibility_of_element_located((By.ID, "qr-img")))
    wait.until(EC.visibility_of_element_located((By.ID, "banner-login")))
    screens.save("campaigns-login")
    queue.clear_qr("office-pc-whatsapp")
    queue.heartbeat("office-pc-whatsapp", "whatsapp", "logged_in")
    queue.end_channel_waiting("whatsapp", JobStatus.WAITING_FOR_LOGIN)

    screens.open("/app/new")
    driver.find_element(By.ID, "name").send_keys("Ready for pickup")
    driver.find_element(By.ID, "file").send_keys(str(contacts))
    driver.find_element(By.ID, "message").send_keys(
        "Olá {nome}, seu pedido {pedido} já pode ser retirado na loja {loja}. 😀"
    )
    driver.find_element(By.CSS_SELECTOR, "input[value='whatsapp_then_sms']").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rendered-list li")) == 5)
    wait.until(EC.visibility_of_element_located((By.ID, "sms-summary")))
    screens.save("new-campaign")
    driver.find_element(By.ID, "message").send_keys(" Cupom: {cupom}")
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-error-for='message']")))
    screens.save("new-campaign-error")

    screens.open(f"/app/jobs/{ids['done']}")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages tbody tr")) == 50)
    wait.until(EC.visibility_of_element_located((By.ID, "unknown-note")))
    wait.until(EC.visibility_of_element_located((By.ID, "resend")))  # the campaign is over
    screens.save("campaign-detail")


def shoot_conversations(screens: Screens, thread: str) -> None:
    """The inbox, and one thread open (on a phone: the one, then the other)."""
    driver, wait = screens.driver, screens.wait
    phone = screens.width < 600
    metrics = {"width": screens.width, "height": 800, "deviceScaleFactor": 1, "mobile": phone}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    screens.open("/app/conversations")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#threads .thread-item")) == 50)
    if phone:  # fifty threads make a picture metres long: the unread ones, as a filter shows
        driver.find_element(By.CSS_SELECTOR, "[data-filter='unread']").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#threads .thread-item")) == 4)
    screens.save("conversations")
    screens.open(f"/app/conversations/{thread[1:]}")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#thread .msg")) == 5)
    wait.until(lambda d: d.find_element(By.ID, "nav-unread").text == "3")  # opened, so read
    screens.save("conversations-thread")
    # Back to unread, so the other width's list shows it as it was.
    driver.execute_async_script(
        "App.api('POST', arguments[0]).then(arguments[1])", f"/conversations/{thread[1:]}/unread"
    )


def shoot_opt_outs(screens: Screens, count: int) -> None:
    """The opt-out list, with how each number got there."""
    metrics = {"width": screens.width, "height": 800, "deviceScaleFactor": 1}
    screens.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {**metrics, "mobile": screens.width < 600}
    )
    screens.open("/app/opt-outs")
    screens.wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#optouts tr")) == count)
    screens.save("opt-outs")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
