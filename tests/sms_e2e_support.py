"""Helpers for the SMS worker process tests: start `run_worker.py` on the gateway stand-in and
compare what the stand-in received with the database.

Process handling (explicit environment, own process group, SIGKILL of the group) is the one of
tests/wa_e2e_support.py, reused here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from message_queue import Queue
from tests.wa_e2e_support import WorkerProcess, wait_until, worker_environment
from worker.sms import gateway_id

# What a message that reached the phone can end as without ever leaving it.
NEVER_LEFT = ("Cancelled", "Failed")


def sms_worker_environment(
    database_path: str, gateway_url: str, worker_id: str, **overrides
) -> dict:
    """Every setting of an SMS worker explicit: fast pacing, short timeouts, no long pauses."""
    values = dict(
        database_path=database_path,
        worker_channel="sms",
        worker_id=worker_id,
        sms_gateway_url=gateway_url,
        sms_gateway_username="sms",
        sms_gateway_password="secret",
        sms_min_delay=0,
        sms_max_delay=0,
        long_pause_every=0,
        retry_backoff=0,
        send_timeout=3,
        sms_gateway_timeout=2,
    )
    values.update(overrides)
    return worker_environment(**values)


class SmsWorkers:
    """Starts SMS worker processes for one test and kills whatever is left at its end."""

    def __init__(self, database_path: str, gateway_url: str, log_dir: Path):
        self.database_path, self.gateway_url, self.log_dir = database_path, gateway_url, log_dir
        self.procs: list[WorkerProcess] = []

    def start(self, worker_id: str = "sms-proc", **overrides) -> WorkerProcess:
        env = sms_worker_environment(self.database_path, self.gateway_url, worker_id, **overrides)
        self.procs.append(WorkerProcess(env, self.log_dir / f"{worker_id}.log"))
        return self.procs[-1]

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


# --- reading back ------------------------------------------------------------------------


def rows(queue: Queue, job_id: str) -> list[dict]:
    found, _ = queue.list_messages(job_id, limit=1000)
    return found


def gateway_state(gw, gid: str) -> str | None:
    """The stand-in's state of message `gid` now, or None when it never arrived."""
    view = gw.state.view(gid)
    return view and view["state"]


def arrivals(gw) -> list[tuple[str, str]]:
    """(phone, text) of every message the phone took and did not cancel or fail."""
    return [
        (a["phone"], a["text"])
        for a in gw.accepted()
        if gateway_state(gw, a["id"]) not in NEVER_LEFT
    ]


def assert_each_once(gw, expected: dict[str, str]) -> None:
    """Each expected phone reached the phone's radio exactly once, with its exact text."""
    got, want = Counter(arrivals(gw)), Counter(expected.items())
    assert got == want, (
        f"twice or more: {[m for m, n in got.items() if n > 1]}; "
        f"missing: {list(want - got)}; not expected: {list(got - want)}"
    )
    ids = [a["id"] for a in gw.accepted()]
    assert len(ids) == len(set(ids)), "the stand-in accepted one gateway id twice"


def worker_row(queue: Queue, worker_id: str) -> dict | None:
    return next((w for w in queue.list_workers() if w["id"] == worker_id), None)


def worker_in(queue: Queue, worker_id: str, state: str) -> dict | None:
    w = worker_row(queue, worker_id)
    return w if w and w["state"] == state else None


def in_flight(gw, queue: Queue, job_id: str, gateway: str | None) -> dict | None:
    """A `sending` row whose message is in state `gateway` on the phone (None: not there)."""
    for r in rows(queue, job_id):
        if r["status"] == "sending" and gateway_state(gw, gateway_id(r)) == gateway:
            return r
    return None


def wait_job(queue: Queue, job_id: str, status: str, timeout: float, details=None) -> dict:
    """Wait until the job is in `status`; the job."""

    def reached():
        job = queue.get_job(job_id)
        return job if job["status"] == status else None

    return wait_until(
        reached,
        timeout,
        f"job {job_id} to be {status}",
        interval=0.05,
        details=lambda: f"job: {queue.get_job(job_id)}" + (f"\n{details()}" if details else ""),
    )
