"""The worker as a service: sd_notify to a real socket, browser recycling, 'Use here'."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from message_queue import NewJob, Recipient
from tests.wa_e2e_support import WorkerThread, wait_until
from tests.wa_standin import StandinServer
from worker.systemd import Notifier
from worker.worker import Worker

from .fakes import FakeTransport

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def received(sock) -> list[str]:
    lines = []
    sock.setblocking(False)
    try:
        while True:
            lines.append(sock.recv(4096).decode())
    except BlockingIOError:
        return lines
    finally:
        sock.setblocking(True)


def test_notifier_is_a_no_op_outside_systemd():
    assert Notifier(None).ready() is False
    assert Notifier("").status("x") is False


def test_abstract_socket_names_are_supported():
    name = f"@bulk-sender-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    try:
        assert Notifier(name).notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_worker_speaks_sd_notify_ready_after_recovery_then_watchdog_status_stopping(
    settings, queue, notify_socket
):
    path, sock = notify_socket
    job, _ = queue.create_job(
        NewJob(channel="whatsapp", template="x"),
        [Recipient(phone="+1", text="hi", channel="whatsapp")],
    )
    queue.claim_next("whatsapp", settings.worker_id)  # left `sending` by a previous life
    transport = FakeTransport()
    transport.verdicts = {1: "sent"}
    worker = Worker(
        settings,
        queue,
        transport,
        threading.Event(),
        notifier=Notifier(path),
        idle_poll=0,
        session_poll=0,
    )
    worker.run_once()
    worker.run_once()
    worker.stop.set()
    worker.run()
    lines = received(sock)
    assert "READY=1" in lines and "WATCHDOG=1" in lines and lines[-1] == "STOPPING=1"
    assert lines.index("READY=1") < lines.index("STATUS=logged in, sending")
    # READY comes only once the leftover row was verified (recovery runs before it).
    assert transport.verified == [1]
    assert queue.get_job(job["id"])["counts"]["sent"] == 1
    assert lines.count("READY=1") == 1


@pytest.mark.browser
def test_browser_is_recycled_every_n_messages_and_keeps_the_login(
    settings, queue, chromium, caplog
):
    caplog.set_level(logging.INFO, logger="worker.session")
    with StandinServer(logged_in=True, tick_delay=0.02) as wa:
        s = settings.replace(whatsapp_web_url=wa.url, send_timeout=10, browser_recycle_after=3)
        job, _ = queue.create_job(
            NewJob(channel="whatsapp", template="x"),
            [
                Recipient(phone=f"+1415555{i:04d}", text=f"m{i}", channel="whatsapp")
                for i in range(7)
            ],
        )
        worker = WorkerThread(s, queue)
        try:
            wait_until(
                lambda: queue.get_job(job["id"])["status"] == "completed", 60, "the job to complete"
            )
        finally:
            worker.stop()
        assert sorted(m["text"] for m in wa.messages()) == [f"m{i}" for i in range(7)]
        starts = [r for r in caplog.records if r.getMessage().startswith("starting Chromium")]
        assert len(starts) == 3  # 3 messages, recycle, 3 more, recycle, the last one


@pytest.mark.browser
def test_use_here_conflict_is_taken_back_and_sending_goes_on(settings, queue, chromium):
    with StandinServer(logged_in=True, tick_delay=0.02, use_here_conflict=True) as wa:
        s = settings.replace(whatsapp_web_url=wa.url, send_timeout=10)
        job, _ = queue.create_job(
            NewJob(channel="whatsapp", template="x"),
            [Recipient(phone="+14155550001", text="hello", channel="whatsapp")],
        )
        worker = WorkerThread(s, queue)
        try:
            wait_until(
                lambda: queue.get_job(job["id"])["status"] == "completed", 40, "the job to complete"
            )
        finally:
            worker.stop()
        assert [m["text"] for m in wa.messages()] == ["hello"]


# A SIGTERM delivered at the first slow import of run_worker.py, the moment systemd's stop
# once found it still loading: the audit hook fires it at exactly that point, every time.
SIGTERM_WHILE_IMPORTING = """
import os, runpy, signal, sys

def hook(event, args):
    if event == "import" and args[0] == "config" and not getattr(hook, "fired", False):
        hook.fired = True
        os.kill(os.getpid(), signal.SIGTERM)

sys.addaudithook(hook)
sys.argv = ["run_worker.py"]
runpy.run_path("run_worker.py", run_name="__main__")
"""


def test_a_sigterm_during_start_up_is_a_clean_stop(tmp_path, settings):
    env = dict(
        os.environ,
        DATABASE_PATH=str(tmp_path / "q.db"),
        WORKER_CHANNEL="sms",
        SMS_GATEWAY_URL="http://127.0.0.1:9",
        WORKER_ID="early-stop",
    )
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_WHILE_IMPORTING],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    from message_queue import Queue

    (worker,) = Queue(tmp_path / "q.db").list_workers()
    assert (worker["id"], worker["state"]) == ("early-stop", "stopped")
