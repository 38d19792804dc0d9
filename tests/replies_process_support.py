"""The deployment of tests/test_replies_process.py: every part its own process, as in production.

- the API: gunicorn serving `app:create_app()` on 127.0.0.1 (tests/chaos_api.py's ApiServer),
  with the phone's signing key, so it takes the phone's webhook;
- an SMS worker (`run_worker.py`, WORKER_CHANNEL=sms) on the gateway stand-in: it registers the
  API's /hooks/smsgate on the phone and sets the signing key there, as in production;
- a WhatsApp worker (`run_worker.py`) on the WhatsApp Web stand-in, in real headless Chromium.

The two stand-ins run in the test process: a test drops a reply into the phone
(`phone.inbox.receive`) or into a chat (`wa.incoming`), and reads back what each one received.
Everything else goes through HTTP with the API key. Every setting of every process is explicit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import quote

import requests

from tests.chaos_api import API_KEY, ApiServer, free_port
from tests.sms_e2e_support import arrivals as sms_arrivals
from tests.sms_e2e_support import sms_worker_environment
from tests.sms_standin import GatewayServer
from tests.wa_e2e_support import (
    ROOT,
    WorkerProcess,
    kill_all,
    processes_with,
    wait_until,
    worker_environment,
)
from tests.wa_standin import StandinServer

KEY = "r3pl1esK"  # the phone's webhook signing key (SMS_WEBHOOK_SIGNING_KEY)
PACE = 1.0  # seconds between two sends on either channel: a job of n rows runs about n s
SMS_WORKER, WA_WORKER = "sms-proc", "wa-proc"
READY_WITHIN = 60.0  # seconds for both workers to be up (Chromium's start-up included)


class Http:
    """The API over HTTP with the API key; each call checks its status code."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = API_KEY
        # A fresh connection a call: gunicorn closes an idle keep-alive connection after 2 s,
        # and a request sent on it just then is reset (seen once in a loaded CI run).
        self.session.headers["Connection"] = "close"

    def get(self, path: str, **params) -> dict:
        response = self.session.get(self.url + path, params=params, timeout=10)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def send(self, **body) -> dict:
        """POST /send; the 202's status object (with `rejected`)."""
        response = self.session.post(self.url + "/send", json=body, timeout=10)
        assert response.status_code == 202, f"POST /send: {response.status_code} {response.text}"
        return response.json()

    def status(self, job_id: str) -> dict:
        return self.get(f"/status/{job_id}")

    def rows(self, job_id: str) -> dict[str, dict]:
        """A job's rows by number."""
        found = self.get(f"/jobs/{job_id}/messages", limit=1000)["messages"]
        return {m["phone"]: m for m in found}

    def conversation(self, phone: str) -> dict | None:
        """The number's entry in GET /conversations, or None when it is not listed."""
        listed = self.get("/conversations", limit=500)["conversations"]
        return next((c for c in listed if c["phone"] == phone), None)

    def thread(self, phone: str) -> list[dict]:
        """Every message of the number's conversation; [] when there is none (404)."""
        response = self.session.get(
            f"{self.url}/conversations/{quote(phone, safe='')}/messages",
            params={"limit": 500},
            timeout=10,
        )
        if response.status_code == 404:
            return []
        assert response.status_code == 200, f"thread {phone}: {response.status_code}"
        return response.json()["messages"]

    def replies(self, phone: str) -> list[dict]:
        """What the number wrote to us, oldest first."""
        return [m for m in self.thread(phone) if m["direction"] == "in"]

    def replies_everywhere(self) -> Counter:
        """(phone, channel, text) of every reply in every conversation, with how often."""
        listed = self.get("/conversations", limit=500)["conversations"]
        return Counter(
            (c["phone"], m["channel"], m["text"]) for c in listed for m in self.replies(c["phone"])
        )

    def suppression(self, phone: str) -> dict | None:
        found = self.get("/suppressions", q=phone.lstrip("+"))["suppressions"]
        return next((s for s in found if s["phone"] == phone), None)

    def wait_job(self, job_id: str, timeout: float = 30.0, details=None) -> dict:
        """Wait until the job is completed; its status object."""
        return wait_until(
            lambda: (s := self.status(job_id))["status"] == "completed" and s,
            timeout,
            f"job {job_id} to complete",
            interval=0.1,
            details=lambda: f"{self.status(job_id)}\n{details() if details else ''}",
        )


class Deployment:
    """The API, an SMS worker and a WhatsApp worker as processes, on the two stand-ins."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.phone = GatewayServer(step_delay=0)  # Delivered in the POST's answer
        self.wa = StandinServer(tick_delay=0.05, logged_in=True)
        database = str(workdir / "queue.db")
        self.api = ApiServer(workdir, database, free_port())
        self.api.env["SMS_WEBHOOK_SIGNING_KEY"] = KEY
        self.http = Http(self.api.url)
        self.profile = str(workdir / "profile")
        # Both workers with the API's caps (tests/chaos_api.py: none for SMS, defaults for
        # WhatsApp), so the API's estimates and the workers' sending follow the same rules.
        self.sms_env = sms_worker_environment(
            database,
            self.phone.url,
            SMS_WORKER,
            sms_min_delay=PACE,
            sms_max_delay=PACE,
            sms_webhook_url=self.api.url + "/hooks/smsgate",
            sms_webhook_signing_key=KEY,
            sms_hourly_cap=0,
            sms_daily_cap=0,
        )
        self.wa_env = worker_environment(
            database_path=database,
            worker_channel="whatsapp",
            worker_id=WA_WORKER,
            whatsapp_web_url=self.wa.url,
            chrome_profile_dir=self.profile,
            selectors_file=str(ROOT / "worker" / "selectors.json"),
            send_timeout=10,
            min_delay=PACE,
            max_delay=PACE,
            long_pause_every=0,
            retry_backoff=0,
            sms_hourly_cap=0,
            sms_daily_cap=0,
        )
        self.sms_worker: WorkerProcess | None = None
        self.wa_worker: WorkerProcess | None = None

    # --- starting and stopping -----------------------------------------------------------
    def start(self) -> None:
        """The API first (it makes the database), then both workers; wait until all are up."""
        self.api.start()
        self.sms_worker = WorkerProcess(self.sms_env, self.workdir / "sms-worker.log")
        self.wa_worker = WorkerProcess(self.wa_env, self.workdir / "wa-worker.log")
        wait_until(
            lambda: self._logged_in(SMS_WORKER, WA_WORKER) and self._webhook_registered(),
            READY_WITHIN,
            "both workers logged in and the webhook registered on the phone",
            interval=0.1,
            details=self.details,
        )

    def restart_sms_worker(self) -> None:
        """SIGTERM the SMS worker, as `systemctl restart` does, and start it again."""
        self.sms_worker.terminate()
        assert self.sms_worker.wait(20) == 0, self.sms_worker.log()
        self.sms_worker.close()
        self.sms_worker = WorkerProcess(self.sms_env, self.workdir / "sms-worker.log")
        wait_until(
            lambda: self._logged_in(SMS_WORKER),
            READY_WITHIN,
            "the SMS worker to be back",
            interval=0.1,
            details=self.details,
        )

    def close(self) -> None:
        """Stop the workers as systemd would (SIGTERM, then SIGKILL), then the rest."""
        workers = [w for w in (self.sms_worker, self.wa_worker) if w is not None]
        for worker in workers:
            if worker.proc.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(20)
            except AssertionError:
                pass  # killed below
            worker.close()
        self.api.stop()
        kill_all(processes_with(self.profile))  # a browser left over must not outlive us
        self.wa.stop()
        self.phone.stop()

    def _logged_in(self, *worker_ids: str) -> bool:
        states = {w["worker_id"]: w["state"] for w in self.http.get("/session")["workers"]}
        return all(states.get(w) == "logged_in" for w in worker_ids)

    def _webhook_registered(self) -> bool:
        hooks = self.phone.inbox.list_hooks()
        url = f"{self.api.url}/hooks/smsgate?worker={SMS_WORKER}"
        return [h["url"] for h in hooks] == [url] and self.phone.inbox.signing_key == KEY

    # --- the outside world ---------------------------------------------------------------
    def reply(self, channel: str, phone: str, text: str) -> None:
        """`phone` writes `text` to us: an SMS reaching the phone, or a WhatsApp message."""
        if channel == "sms":
            self.phone.inbox.receive(phone, text)
        else:
            self.wa.incoming(phone, text)

    def arrivals(self, channel: str) -> Counter:
        """How many messages each number (E.164) received on `channel`."""
        if channel == "sms":
            return Counter(phone for phone, _ in sms_arrivals(self.phone))
        return Counter("+" + m["phone"] for m in self.wa.messages())

    def details(self) -> str:
        """What the processes wrote last and what the phone tried, for a failure's message."""
        parts = [f"API log:\n{self.api.log_path.read_text(errors='replace')[-2000:]}"]
        for name, worker in (("SMS", self.sms_worker), ("WhatsApp", self.wa_worker)):
            if worker is not None:
                parts.append(f"{name} worker log:\n{worker.log(3000)}")
        with self.phone.inbox.lock:
            parts.append(f"webhook attempts: {self.phone.inbox.attempts[-10:]}")
        return "\n".join(parts)
