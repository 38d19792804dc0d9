"""Processes a benchmark runs beside itself: the API under gunicorn, the WhatsApp stand-in,
a worker.

Each runs in its own process (as in production), so the bench's own Python does not share a
GIL with what it measures. `python -m bench.procs standin '{"logged_in": true}'` is the
stand-in's entry point: it prints its URL and serves until its stdin closes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import requests

from .common import API_KEY, ROOT, free_port, settings_env, wait_for

PYTHON = sys.executable


class ApiServer:
    """`gunicorn app:create_app()` as deploy/whatsapp-api.service runs it (2 workers, 4 threads)."""

    def __init__(
        self,
        workdir: Path,
        database_path: str,
        workers: int = 2,
        threads: int = 4,
        app: str = "app:create_app()",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gunicorn.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the server's whole life
        env = settings_env(
            api_key=API_KEY,
            database_path=database_path,
            upload_dir=str(workdir / "uploads"),
            log_level="WARNING",
        )
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                str(ROOT),
                "--log-level",
                "warning",
                app,
            ],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.workers = workers
        wait_for(self._answers, 30, "gunicorn to answer /health")
        wait_for(lambda: len(self.worker_pids()) == workers, 30, "gunicorn's workers")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return requests.get(self.url + "/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def worker_pids(self) -> list[int]:
        return [c.pid for c in psutil.Process(self.proc.pid).children()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Standin:
    """The WhatsApp Web stand-in (tests/wa_standin) in a process of its own, driven over HTTP."""

    def __init__(self, **options):
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.procs", "standin", json.dumps(options)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the stand-in did not start")
        self.http = requests.Session()

    def messages(self) -> list[dict]:
        return self.http.get(self.url + "/_standin/messages", timeout=10).json()["messages"]

    def count(self) -> int:
        return len(self.messages())

    def configure(self, **options) -> None:
        self.http.post(self.url + "/_standin/config", json=options, timeout=10).raise_for_status()

    def reset(self) -> None:
        self.http.post(self.url + "/_standin/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class WorkerProcess:
    """`python run_worker.py` on the given settings, in its own process group."""

    def __init__(self, workdir: Path, **settings):
        self._log = open(workdir / "worker.log", "ab")  # noqa: SIM115 - the worker's life
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "run_worker.py")],
            cwd=workdir,
            env=settings_env(**settings),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def tree(self) -> list[psutil.Process]:
        """The worker and everything it started (ChromeDriver, Chromium and its helpers)."""
        try:
            me = psutil.Process(self.proc.pid)
            return [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever it started must not outlive it (systemd's KillMode=mixed does this)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _serve_standin(options: str) -> None:
    from tests.wa_standin import StandinServer

    server = StandinServer(**json.loads(options))
    print(server.url, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["standin"]:
        _serve_standin(sys.argv[2])
