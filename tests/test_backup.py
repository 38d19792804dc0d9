"""Backups of the live queue, taken while a writer is busy, restore to a sound database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from message_queue import NewJob, Queue, Recipient
from tests import pg_server

ROOT = Path(__file__).resolve().parents[1]


def make_backup(folder, **database) -> subprocess.CompletedProcess:
    """`deploy/backup.py folder` on the given database setting, as `make backup` runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "backup.py"), str(folder)],
        env=env | database,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.backends("sqlite")
def test_backup_while_writing_restores_a_consistent_queue(settings, queue, tmp_path):
    job, _ = queue.create_job(
        NewJob(channel="whatsapp", template="x"),
        [Recipient(phone=f"+1{i}", text="hi", channel="whatsapp") for i in range(2000)],
    )
    stop = threading.Event()

    def writer():
        q = Queue(settings.database_path)
        while not stop.is_set():
            m = q.claim_next("whatsapp", "w")
            if m is None:
                return
            q.mark_sent(m["id"], "w")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        queue.backup(tmp_path / "copy.db")
    finally:
        stop.set()
        thread.join()
    restored = Queue(tmp_path / "copy.db")
    assert restored.integrity_check() == "ok"
    copy = restored.get_job(job["id"])
    counted = dict(
        restored.db.connection()
        .execute("SELECT status, count(*) FROM messages GROUP BY status")
        .fetchall()
    )
    # The kept counts agree with the rows: the snapshot holds whole transactions only.
    assert {s: n for s, n in copy["counts"].items() if n} == counted
    assert sum(copy["counts"].values()) == 2000


@pytest.mark.backends("sqlite")
def test_make_backup_script_writes_a_checked_copy(settings, queue, tmp_path):
    queue.create_job(
        NewJob(channel="sms", template="x"),
        [Recipient(phone="+15550001", text="hi", channel="sms")],
    )
    result = make_backup(tmp_path / "backups", DATABASE_PATH=settings.database_path)
    copies = list((tmp_path / "backups").glob("queue-*.db"))
    assert len(copies) == 1 and str(copies[0]) in result.stdout
    assert Queue(copies[0]).list_jobs()[0]["total"] == 1


@pytest.mark.backends("postgresql")
def test_make_backup_on_postgresql_dumps_a_copy_that_restores(settings, queue, tmp_path):
    job, _ = queue.create_job(
        NewJob(channel="sms", template="x"),
        [Recipient(phone=f"+1555000{i}", text="hi", channel="sms") for i in range(3)],
    )
    queue.mark_sent(queue.claim_next("sms", "w")["id"], "w")
    result = make_backup(tmp_path / "backups", DATABASE_URL=settings.database_url)
    (dump,) = (tmp_path / "backups").glob("queue-*.dump")
    assert str(dump) in result.stdout and dump.stat().st_mode & 0o077 == 0
    queue.close()
    # The whole schema is lost, then restored from the copy with PostgreSQL's own tool.
    schema = settings.database_url.rsplit("%3D", 1)[1]
    pg_server.drop_schema(schema)
    restore = subprocess.run(
        ["pg_restore", "--dbname", pg_server.server_url(), str(dump)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 0, restore.stderr
    again = Queue(settings.database_url)
    try:
        copy = again.get_job(job["id"])
        assert copy["counts"]["sent"] == 1 and copy["counts"]["pending"] == 2
    finally:
        again.close()


def test_worker_that_cannot_open_the_database_exits_non_zero_with_one_line(tmp_path):
    env = dict(
        os.environ,
        DATABASE_PATH=str(tmp_path / "missing" / "q.db"),
        WORKER_CHANNEL="whatsapp",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_worker.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_PATH" in lines[0]
