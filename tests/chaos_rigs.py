"""Rigs for the chaos runs: one channel's stand-in plus its `run_worker.py` processes.

Workers are started, killed and restarted as systemd would: each in its own process group,
with the same WORKER_ID and Chromium profile every time, every setting in its environment.
Their caps are off: a full scenario sends up to 300 messages in a few minutes from one
WORKER_ID, past the hourly and daily defaults (60 and 200 on WhatsApp, 100 and 400 on SMS), and
would wait an hour; the caps have their own tests (tests/test_careful_*.py). Auto-pause keeps
its default: no scenario makes a send fail, and a failed row is a lost message anyway.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

from message_queue import NewJob, Queue, Recipient
from tests.chaos_support import TEMPLATE
from tests.sms_e2e_support import arrivals as sms_arrivals
from tests.sms_e2e_support import gateway_state, sms_worker_environment, worker_in
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
from utils.template import compile_template
from worker.sms import gateway_id

SEND_TIMEOUT = 10.0


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


class Rig:
    """A stand-in and the worker processes of one channel on one database in `workdir`."""

    channel = ""
    unknown_ok = False

    def __init__(self, workdir: Path, worker_id: str, send_timeout: float = SEND_TIMEOUT):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.worker_id, self.send_timeout = workdir, worker_id, send_timeout
        self.database_path = str(workdir / "queue.db")
        self.queue = Queue(self.database_path)
        self.log_path = workdir / f"{worker_id}.log"
        self.worker: WorkerProcess | None = None
        self.job_ids: list[str] = []

    def queue_job(self, count: int, label: str, first: int = 0) -> str:
        """A job of `count` recipients, each with a text of its own: a variant of TEMPLATE
        picked as /send picks it (per recipient) and stored in the row."""
        template = compile_template(TEMPLATE)
        recipients = [
            Recipient(
                phone=p,
                text=template.fill({"label": label, "i": f"{i:03d}", "phone": p}),
                channel=self.channel,
            )
            for i, p in enumerate(self.phones(count, first))
        ]
        job, _ = self.queue.create_job(
            NewJob(channel=self.channel, template=TEMPLATE, name=label), recipients
        )
        self.job_ids.append(job["id"])
        return job["id"]

    def start(self) -> WorkerProcess:
        self.worker = WorkerProcess(self.environment(), self.log_path)
        self.started_at = time.time()
        return self.worker

    def wait_running(self) -> None:
        """Until the newest worker has begun its loop (its `starting` heartbeat is written)."""

        def running():
            row = next((w for w in self.queue.list_workers() if w["id"] == self.worker_id), None)
            return row is not None and row["started_at"] >= self.started_at

        wait_until(running, 60, "the worker to start", interval=0.1, details=self.details)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, as systemd's KillMode=mixed would."""
        self.worker.kill()
        self.wait_gone()

    def terminate(self) -> int:
        """SIGTERM; the worker's exit code (it must finish the message in flight first).

        Sent once the worker runs, as the scenarios mean: a job can complete while a worker
        just restarted is still loading (a stop then is test_worker_service's case).
        """
        self.wait_running()
        self.worker.terminate()
        code = self.worker.wait(self.send_timeout + 15)
        self.worker.close()  # nothing of its group may outlive it
        self.wait_gone()
        return code

    def status(self, row: dict) -> str:
        """The status of `row` in the database now."""
        return next(
            r["status"] for r in self.queue.iter_messages(row["job_id"]) if r["id"] == row["id"]
        )

    def all_done(self) -> bool:
        return all(self.queue.get_job(j)["status"] == "completed" for j in self.job_ids)

    def wait_done(self, timeout: float) -> None:
        wait_until(
            self.all_done, timeout, "every job to complete", interval=0.1, details=self.details
        )

    def sending(self) -> list[dict]:
        found = []
        for job_id in self.job_ids:
            found += self.queue.list_messages(job_id, status="sending", limit=100)[0]
        return found

    def worker_state(self) -> str | None:
        row = next((w for w in self.queue.list_workers() if w["id"] == self.worker_id), None)
        return row and row["state"]

    def journal(self, line: str) -> None:
        """What the chaos did when, beside the worker's log (chaos.log), for a post-mortem."""
        with open(self.workdir / "chaos.log", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {line}\n")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def details(self) -> str:
        jobs = [
            (j, self.queue.get_job(j)["status"], self.queue.get_job(j)["counts"])
            for j in self.job_ids
        ]
        return f"jobs: {jobs}\nworker log tail:\n{self.log_text()[-3000:]}"

    def wait_gone(self) -> None:
        """Nothing the old worker started may hold the profile when the next one starts."""

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.wait_gone()
        self.queue.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class WhatsAppRig(Rig):
    """The WhatsApp Web stand-in (logged in) and WhatsApp workers in real headless Chromium."""

    channel = "whatsapp"
    unknown_ok = True  # only where the chat itself cannot tell; the reckoning reports them

    def __init__(self, workdir: Path, worker_id: str = "chaos-wa", **options):
        super().__init__(workdir, worker_id, **options)
        self.profile = str(workdir / "profile")
        self.standin = StandinServer(tick_delay=0.05)
        self.standin.login()

    @staticmethod
    def phones(count: int, first: int = 0) -> list[str]:
        return [f"+1415555{1000 + first + i:04d}" for i in range(count)]

    def environment(self) -> dict:
        return worker_environment(
            database_path=self.database_path,
            worker_channel="whatsapp",
            worker_id=self.worker_id,
            whatsapp_web_url=self.standin.url,
            chrome_profile_dir=self.profile,
            selectors_file=str(ROOT / "worker/selectors.json"),
            send_timeout=self.send_timeout,
            min_delay=0,
            max_delay=0.03,
            long_pause_every=0,
            retry_backoff=1,
            whatsapp_hourly_cap=0,  # no caps: see the module's docstring
            whatsapp_daily_cap=0,
        )

    def key(self, row: dict) -> tuple[str, str]:
        return digits(row["phone"]), row["text"]

    def arrivals(self) -> Counter:
        return Counter((m["phone"], m["text"]) for m in self.standin.messages())

    def progress(self) -> int:
        return len(self.standin.messages())

    def reached(self, row: dict) -> bool:
        return any(
            m["text"] == row["text"] for m in self.standin.state.messages(digits(row["phone"]))
        )

    def slow(self, seconds: float) -> None:
        self.standin.configure(tick_delay=seconds)

    def normal(self) -> None:
        self.standin.configure(tick_delay=0.05)

    def wait_gone(self) -> None:
        try:
            wait_until(lambda: not processes_with(self.profile), 10, "the old Chromium to go")
        except AssertionError:  # should not happen: the group kill takes them all
            kill_all(processes_with(self.profile))

    def close(self) -> None:
        super().close()
        self.standin.stop()


class SmsRig(Rig):
    """The phone gateway stand-in and SMS workers."""

    channel = "sms"
    STEP = 0.05  # Pending -> Processed -> Sent -> Delivered, one step every 50 ms

    def __init__(self, workdir: Path, worker_id: str = "chaos-sms", **options):
        super().__init__(workdir, worker_id, **options)
        self.gateway = GatewayServer(step_delay=self.STEP)

    @staticmethod
    def phones(count: int, first: int = 0) -> list[str]:
        return [f"+5511912345{first + i:03d}" for i in range(count)]

    def environment(self) -> dict:
        return sms_worker_environment(
            self.database_path,
            self.gateway.url,
            self.worker_id,
            send_timeout=self.send_timeout,
            sms_min_delay=0,
            sms_max_delay=0.03,
            retry_backoff=1,
            sms_hourly_cap=0,  # no caps: see the module's docstring
            sms_daily_cap=0,
        )

    def key(self, row: dict) -> tuple[str, str]:
        return row["phone"], row["text"]

    def arrivals(self) -> Counter:
        return Counter(sms_arrivals(self.gateway))

    def progress(self) -> int:
        return len(self.gateway.accepted())

    def reached(self, row: dict) -> bool:
        return gateway_state(self.gateway, gateway_id(row)) is not None

    def slow(self, seconds: float) -> None:
        self.gateway.configure(step_delay=seconds)

    def normal(self) -> None:
        self.gateway.configure(step_delay=self.STEP)

    def in_state(self, state: str) -> bool:
        return bool(worker_in(self.queue, self.worker_id, state))

    def close(self) -> None:
        super().close()
        self.gateway.stop()
