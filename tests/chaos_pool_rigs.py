"""The pool chaos run's rigs (tests/chaos_pool.py): WhatsApp and SMS rigs on one PostgreSQL
database, the harness's own patient queue, and the pool of rigs seen as one rig by
tests/chaos_support.py's moments and reckoning."""

from __future__ import annotations

import time
import types
from collections import Counter
from pathlib import Path

from message_queue import DatabaseUnavailable, Queue
from tests.chaos_rigs import Rig, SmsRig, WhatsAppRig, digits

OUTAGE_WAIT = 30.0  # seconds the harness's own reads wait for the database to come back


class PatientQueue:
    """The harness's queue: its reads wait out an outage the chaos made. The workers' queues
    get no such help; waiting by themselves is what the run checks."""

    def __init__(self, url: str):
        self._queue = Queue(url)

    def __getattr__(self, name: str):
        attr = getattr(self._queue, name)
        if not callable(attr) or name == "close":
            return attr

        def patient(*args, **kwargs):
            deadline = time.monotonic() + OUTAGE_WAIT
            while True:
                try:
                    value = attr(*args, **kwargs)
                    return list(value) if isinstance(value, types.GeneratorType) else value
                except DatabaseUnavailable:  # a connection from before the restart, or down
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

        return patient


class _OnPostgres:
    """A rig whose worker and queue use the run's database, a URL instead of a file."""

    def __init__(self, workdir: Path, worker_id: str, url: str):
        super().__init__(workdir, worker_id)
        self.queue.close()  # the SQLite file Rig opens is not used: drop it
        for leftover in workdir.glob("queue.db*"):
            leftover.unlink()
        self.database_path = url  # worker_environment puts a URL in DATABASE_URL
        self.queue = PatientQueue(url)


class PoolWhatsAppRig(_OnPostgres, WhatsAppRig):
    pass


class PoolSmsRig(_OnPostgres, SmsRig):
    pass


class Pool:
    """Every rig of the run seen as one rig, for chaos_support's moments and reckoning.

    A moment waits for a fresh row of one of `targets` (all rigs unless `aiming_at` says);
    arrivals are summed over every stand-in, keyed by (digits, text) on both channels.
    """

    unknown_ok = True  # on WhatsApp only; `PoolRun.reckon_senders` fails an SMS `unknown`

    def __init__(self, workdir: Path, rigs: list[Rig], queue, targets=None, stuck=None):
        self.workdir, self.rigs, self.queue = workdir, rigs, queue
        self.targets = targets or rigs
        self.stuck = stuck  # called when all the job has left waits for logged-out accounts
        self.job_ids: list[str] = []
        self.log_path = workdir / "*.log"  # named in reckon's traceback count

    def aiming_at(self, rigs: list[Rig], stuck=None) -> Pool:
        view = Pool(self.workdir, self.rigs, self.queue, rigs, stuck)
        view.job_ids = self.job_ids
        return view

    def by_id(self, worker_id: str | None) -> Rig | None:
        return next((r for r in self.rigs if r.worker_id == worker_id), None)

    def progress(self) -> int:
        return sum(r.progress() for r in self.rigs)

    def slow(self, seconds: float) -> None:
        for rig in self.rigs:
            rig.slow(seconds)

    def normal(self) -> None:
        for rig in self.rigs:
            rig.normal()

    def sending(self) -> list[dict]:
        ids = {r.worker_id for r in self.targets}
        rows = [
            r
            for job_id in self.job_ids
            for r in self.queue.list_messages(job_id, status="sending", limit=100)[0]
        ]
        return [r for r in rows if r["claimed_by"] in ids]

    def reached(self, row: dict) -> bool:
        rig = self.by_id(row["claimed_by"])
        return rig is not None and rig.reached(row)

    def all_done(self) -> bool:
        """The jobs completed. await_moment asks only once no target holds a row: then with
        nothing waiting either, the rows left are held by logged-out accounts (`stuck`)."""
        jobs = [self.queue.get_job(j) for j in self.job_ids]
        if all(job["status"] == "completed" for job in jobs):
            return True
        if self.stuck and not any(j["counts"]["pending"] or j["counts"]["retrying"] for j in jobs):
            self.stuck()
        return False

    @staticmethod
    def key(row: dict) -> tuple[str, str]:
        return digits(row["phone"]), row["text"]

    @staticmethod
    def arrivals_of(rig: Rig) -> Counter:
        return Counter({(digits(p), text): n for (p, text), n in rig.arrivals().items()})

    def arrivals(self) -> Counter:
        return sum((self.arrivals_of(r) for r in self.rigs), Counter())

    def journal(self, line: str) -> None:
        with open(self.workdir / "chaos.log", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {line}\n")

    def log_text(self) -> str:
        return "".join(r.log_text() for r in self.rigs)

    def details(self) -> str:
        jobs = [
            (j, self.queue.get_job(j)["status"], self.queue.get_job(j)["counts"])
            for j in self.job_ids
        ]
        tails = "".join(
            f"\n--- {r.worker_id} ({r.worker_state()}):\n{r.log_text()[-1200:]}" for r in self.rigs
        )
        return f"jobs: {jobs}{tails}"
