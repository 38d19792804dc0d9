"""Helpers for the end-to-end WhatsApp tests: bounded waits, Chromium processes, workers.

A worker runs either in a thread of the test process (fast, used wherever the point is not
how the process reacts to a signal) or as `python run_worker.py` in its own process group,
which the tests send SIGTERM or SIGKILL as systemd or the kernel would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import MISSING, fields
from pathlib import Path

from config import Settings

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.02


def wait_until(predicate, timeout: float, what: str, interval: float = POLL, details=None):
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def holds_for(predicate, seconds: float, what: str, interval: float = POLL) -> None:
    """Check `predicate()` again and again for `seconds`; fail the first time it is false."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what} stopped holding"
        time.sleep(interval)
    assert predicate(), f"{what} stopped holding"


# --- Chromium processes ------------------------------------------------------------------


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains `marker` (a test's own profile folder)."""
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if needle in cmdline:  # a zombie has an empty command line, so it never matches
            found.append(int(entry))
    return found


def kill_all(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# --- workers -----------------------------------------------------------------------------


class WorkerThread:
    """A `Worker` running in a thread of the test process; `stop()` ends it like SIGTERM.

    WhatsApp unless another `transport` is given; also a context manager that stops it.
    """

    def __init__(self, settings, queue, transport=None, **worker_options):
        from worker.whatsapp import WhatsAppTransport
        from worker.worker import Worker

        self.stop_event = threading.Event()
        options = {"session_poll": 0.2, "idle_poll": 0.2, **worker_options}
        self.worker = Worker(
            settings, queue, transport or WhatsAppTransport(settings), self.stop_event, **options
        )
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="e2e-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # reported by stop(), so a crash fails the test
            self.errors.append(exc)
            raise

    def stop(self, timeout: float = 20.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"worker thread still running {timeout} s after stop"
        assert not self.errors, f"worker thread crashed: {self.errors[0]!r}"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def worker_environment(**values) -> dict:
    """The environment of a worker process: every setting explicit, none inherited.

    Each setting is given (its default unless `values` says otherwise), so neither the test
    runner's environment nor a developer's `.env` in the checkout can change the run.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {f.name.upper() for f in fields(Settings)}
    }
    # A test's database may be a PostgreSQL schema's URL: it goes where that belongs.
    if str(values.get("database_path", "")).startswith("postgresql://"):
        values["database_url"] = values.pop("database_path")
    for f in fields(Settings):
        value = values.pop(f.name, f.default)
        if value is MISSING:
            continue
        env[f.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    assert not values, f"unknown settings: {sorted(values)}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """`python run_worker.py` in its own process group, its log written to a file."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "run_worker.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, last: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-last:]

    def terminate(self) -> None:
        """SIGTERM to the worker itself, as `systemctl stop` sends first."""
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the worker, then whatever it started (ChromeDriver, Chromium).

        systemd does the second half before a restart (KillMode=mixed): a crashed worker's
        browser must not outlive it and hold the profile.
        """
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker did not exit within {timeout:g} s\n{self.log()}"
            ) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()
