"""The `api-restart` chaos scenario: the API restarted again and again while jobs run.

The API runs as deployed (`gunicorn app:create_app()`, every setting in its environment, on
127.0.0.1 and a free port). A user thread creates jobs over HTTP, retrying a POST the restart
cut off with the same Idempotency-Key, and polls their status over HTTP; meanwhile the API is
stopped (SIGTERM, or SIGKILL of its whole group) and started again. An SMS worker sends
throughout: the API is stateless and the worker never needs it.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.chaos_rigs import SmsRig
from tests.chaos_support import FINISH, Result, finish
from tests.wa_e2e_support import ROOT, wait_until, worker_environment

API_KEY = "chaos-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """gunicorn serving `app:create_app()` in its own process group, always on the same port."""

    def __init__(self, workdir: Path, database_path: str, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:create_app()",
        ]
        self.env = worker_environment(
            api_key=API_KEY,
            secret_key="s" * 32,
            port=port,
            database_path=database_path,
            log_level="WARNING",
            upload_dir=str(workdir / "uploads"),
            sms_hourly_cap=0,  # as the rig's worker: no caps (see tests/chaos_rigs.py)
            sms_daily_cap=0,
        )
        self.log_path = workdir / "api.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stdin=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._healthy, 30, "the API to answer /health", interval=0.05)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"gunicorn exited {self.proc.returncode}: "
                f"{self.log_path.read_text(errors='replace')[-2000:]}"
            )
        try:
            return requests.get(self.url + "/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, crash: bool = False) -> None:
        """SIGTERM (gunicorn finishes the requests it holds) or SIGKILL of the whole group."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if crash:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        try:  # a worker the master could not reap must not keep the port
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ApiUser(threading.Thread):
    """Creates one job per batch over HTTP at random intervals and polls every job's status."""

    def __init__(self, url: str, batches: list[list[str]], rng: random.Random):
        super().__init__(name="chaos-api-user", daemon=True)
        self.url, self.batches, self.rng = url, batches, rng
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = API_KEY
        self.job_ids: list[str] = []
        self.statuses: dict[str, dict] = {}
        self.refused = 0
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        for k, numbers in enumerate(self.batches):
            job_id = self._create(k, numbers)
            if job_id is None:
                return
            self.job_ids.append(job_id)
            self._poll_for(self.rng.uniform(0.5, 2.0))
        while not self.halt.is_set():
            self._poll_for(0.2)

    def _create(self, k: int, numbers: list[str]) -> str | None:
        body = {
            "channel": "sms",
            "name": f"chaos {k}",
            "numbers": numbers,
            # Spintax, rendered by the API: a POST retried with the same key must pick the
            # same variants (its request hash covers the texts) and create no second job.
            "message": "{Hi|Hello|Hey} api-restart job " + str(k) + " {✓|✔} {phone}",
        }
        while not self.halt.is_set():
            try:
                response = self.http.post(
                    self.url + "/send",
                    json=body,
                    timeout=10,
                    headers={"Idempotency-Key": f"chaos-job-{k}"},
                )
            except requests.RequestException:
                self.refused += 1
            else:
                if response.status_code == 202:
                    return response.json()["job_id"]
                if response.status_code < 500:
                    self.errors.append(f"POST /send {k}: {response.status_code} {response.text}")
                    return None
                self.refused += 1
            self.halt.wait(0.1)
        return None

    def _poll_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.halt.is_set() and time.monotonic() < deadline:
            for job_id in list(self.job_ids):
                try:
                    response = self.http.get(f"{self.url}/status/{job_id}", timeout=5)
                except requests.RequestException:
                    self.refused += 1
                    continue
                if response.status_code == 200:
                    self.statuses[job_id] = response.json()
                elif response.status_code < 500:
                    self.errors.append(f"GET /status/{job_id}: {response.status_code}")
            self.halt.wait(0.1)

    def all_completed(self, count: int) -> bool:
        return len(self.job_ids) == count and all(
            self.statuses.get(j, {}).get("status") == "completed" for j in self.job_ids
        )


def api_restart(workdir: Path, size, rng: random.Random) -> Result:
    """Restart the API `size.faults` times while jobs are created and sent."""
    result = Result("api-restart", "restarts")
    per_job = max(size.messages // size.faults, 1)
    with SmsRig(workdir) as rig:
        api = ApiServer(workdir, rig.database_path, free_port())
        api.start()
        sent_while_down = 0
        user = ApiUser(api.url, [rig.phones(per_job, k * per_job) for k in range(size.faults)], rng)
        try:
            rig.start()
            worker_pid = rig.worker.proc.pid
            user.start()
            sent_while_down = _restart(api, rig, user, size.faults, rng, result)
            wait_until(
                lambda: user.all_completed(size.faults) or user.errors,
                FINISH,
                "every job to show completed over HTTP",
                interval=0.2,
                details=lambda: f"{user.statuses}\n{rig.details()}",
            )
        except AssertionError as exc:
            result.problems.append(f"stalled: {str(exc).splitlines()[0]}")
        finally:
            user.halt.set()
            user.join(15)
            api.stop()
        result.problems += user.errors
        rig.job_ids = list(user.job_ids)
        if len(rig.queue.list_jobs(active_only=False)) != size.faults:
            result.problems.append("a retried POST created a second job")
        if rig.worker.proc.pid != worker_pid or rig.worker.proc.poll() is not None:
            result.problems.append("the worker did not run through the restarts")
        if result.faults and not sent_while_down:
            result.problems.append("nothing was sent while the API was down")
        finish(result, rig)
    result.extra.append(
        f"{sent_while_down} sent while the API was down, {user.refused} requests refused or cut off"
    )
    return result


def _restart(
    api: ApiServer, rig: SmsRig, user: ApiUser, count: int, rng: random.Random, result: Result
) -> int:
    """Restart the API `count` times at random moments; messages sent while it was down."""
    wait_until(lambda: rig.progress() > 0, 60, "the first message to go out", details=rig.details)
    sent_while_down = 0
    for _ in range(count):
        time.sleep(rng.uniform(0.3, 2.0))
        before, crash, down = rig.progress(), rng.random() < 0.5, time.monotonic()
        api.stop(crash)
        api.start()
        result.faults += 1
        sent_while_down += rig.progress() - before
        rig.journal(
            f"restart {result.faults} ({'SIGKILL' if crash else 'SIGTERM'}): down "
            f"{time.monotonic() - down:.1f} s, {rig.progress() - before} sent meanwhile"
        )
    return sent_while_down
