"""What only the PostgreSQL queue has: its SQL dialect, migrations applied once by processes
starting together, the database's clock, NOTIFY waking idle workers, and a server that goes
away and comes back (a pause, never a crash, a lost or a doubled message)."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time

import psycopg
import pytest

from message_queue import DatabaseUnavailable, NewJob, Queue, Recipient
from message_queue.pg import MIGRATIONS, SCHEMA_VERSION
from message_queue.pg_sql import translate
from tests import pg_server

BACKENDS = ("postgresql",)


def recipients(n: int, channel: str = "sms") -> list[Recipient]:
    return [Recipient(phone=f"+1555{i:07d}", text=f"hi {i}", channel=channel) for i in range(n)]


@pytest.mark.parametrize(
    "sqlite, postgresql",
    [
        ("a = ? AND b = :b", "a = %s AND b = %(b)s"),
        ("x LIKE ? ESCAPE '\\'", "x ILIKE %s ESCAPE '\\'"),
        ("'50% off: now' = ?", "'50%% off: now' = %s"),
        ("n = max(n, 1)", "n = GREATEST(n, 1)"),
        ("at = min(a.at, excluded.at)", "at = LEAST(a.at, excluded.at)"),
        ("max(received_at)", "max(received_at)"),
        (
            "IN (SELECT value FROM json_each(?))",
            "IN (SELECT value FROM json_array_elements_text(CAST(%s AS json)))",
        ),
        ("CAST(t / :w AS INTEGER)", "CAST(floor(t / %(w)s) AS BIGINT)"),
        ("FROM messages INDEXED BY messages_opted_out WHERE", "FROM messages WHERE"),
        ("x::text = :x", "x::text = %(x)s"),
    ],
)
def test_one_sql_is_spelled_for_postgresql(sqlite, postgresql, backend):
    assert translate(sqlite) == postgresql


def _open(url: str, results) -> None:
    try:
        q = Queue(url)
        results.put(q.db.version())
        q.close()
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))


def test_processes_starting_together_apply_the_migrations_once(database):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(database, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [results.get(timeout=5) for _ in procs] == [SCHEMA_VERSION] * 4
    with psycopg.connect(database) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == [v for v, _ in MIGRATIONS]  # each once


def test_the_default_clock_is_the_database_servers(database):
    q = Queue(database)
    try:
        with psycopg.connect(database) as conn:
            server = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0]
        assert abs(q.clock() - float(server)) < 1.0
        job, _ = q.create_job(NewJob(channel="sms", template="x"), recipients(1))
        assert abs(job["created_at"] - float(server)) < 5.0
    finally:
        q.close()


def test_an_idle_worker_wakes_on_new_work_not_at_its_next_poll(queue):
    stop, woke = threading.Event(), []

    def idle_worker():
        started = time.monotonic()
        queue.wait_for_work(stop, 60)  # as long as a poll could ever be
        woke.append(time.monotonic() - started)

    thread = threading.Thread(target=idle_worker)
    thread.start()
    time.sleep(0.3)  # the worker is listening
    queue.create_job(NewJob(channel="sms", template="x"), recipients(1))
    thread.join(30)
    stop.set()
    assert woke and woke[0] < 30, "not woken by the job's NOTIFY"
    assert queue.claim_next("sms", "w1") is not None


def test_a_resumed_job_wakes_idle_workers_too(queue):
    job, _ = queue.create_job(NewJob(channel="sms", template="x"), recipients(2))
    queue.pause_job(job["id"])
    stop, woke = threading.Event(), threading.Event()

    def idle_worker():
        queue.wait_for_work(stop, 60)
        woke.set()

    thread = threading.Thread(target=idle_worker)
    thread.start()
    time.sleep(0.3)
    queue.resume_job(job["id"])
    assert woke.wait(30)
    stop.set()
    thread.join(5)


def test_stop_ends_the_wait_for_work(queue):
    stop = threading.Event()
    thread = threading.Thread(target=queue.wait_for_work, args=(stop, 60))
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_a_text_with_nul_is_refused_as_input_not_a_crash(queue, client, auth):
    r = client.post(
        "/send",
        json={"channel": "sms", "message": "a\x00b", "recipients": [{"phone": "+15550000001"}]},
        headers=auth,
    )
    assert r.status_code in (400, 422), r.get_json()
    assert r.mimetype == "application/problem+json"
    assert queue.list_jobs(active_only=False) == []


# -- a server that goes away --------------------------------------------------------------


@pytest.fixture(scope="module")
def own_server():
    """A server this module may stop and start (the machine's own must keep running)."""
    try:
        server = pg_server.Throwaway()
    except (pg_server.NoPostgres, OSError) as exc:
        pytest.skip(f"cannot start a PostgreSQL server of our own: {exc}")
    yield server
    server.remove()


def sms_job_on_own_server(server, prefix: str, n: int):
    """A fresh schema on `server` with an SMS job of `n` numbers: (url, queue, job, numbers)."""
    name = "t_" + secrets.token_hex(4)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    url = pg_server.schema_url(server.url, name)
    q = Queue(url)
    numbers = [f"{prefix}{i:03d}" for i in range(n)]
    job, _ = q.create_job(
        NewJob(channel="sms", template="x"),
        [Recipient(phone=p, text=f"SMS {p}", channel="sms") for p in numbers],
    )
    return url, q, job, numbers


def test_a_restarted_server_is_a_pause_for_the_queue_and_the_api(own_server, settings):
    from app import create_app

    q = Queue(own_server.url)
    client = create_app(settings.replace(database_url=own_server.url), q).test_client()
    auth = {"X-API-Key": settings.api_key}
    job, _ = q.create_job(NewJob(channel="sms", template="x"), recipients(3))
    first = q.claim_next("sms", "w1")
    own_server.stop()
    try:
        with pytest.raises(DatabaseUnavailable):
            q.mark_sent(first["id"], "w1")
        r = client.get(f"/status/{job['id']}", headers=auth)
        assert r.status_code == 503 and r.mimetype == "application/problem+json"
        assert client.get("/health").status_code == 503
    finally:
        own_server.start()
    # The same queue object carries on: its pool replaces the dead connections.
    deadline = time.monotonic() + 30
    while True:
        try:
            status = client.get(f"/status/{job['id']}", headers=auth)
            if status.status_code == 200:
                break
        except DatabaseUnavailable:
            pass
        assert time.monotonic() < deadline, "the API did not come back by itself"
        time.sleep(0.2)
    # The row whose mark was lost is still the worker's, `sending`: it checks it, as after a
    # crash, and nothing was lost or doubled.
    assert [m["id"] for m in q.recover_sending("sms", "w1")] == [first["id"]]
    assert q.mark_sent(first["id"], "w1")
    sent = {first["id"]}
    while (m := q.claim_next("sms", "w1")) is not None:
        assert m["id"] not in sent
        q.mark_sent(m["id"], "w1")
        sent.add(m["id"])
    assert len(sent) == 3 and q.get_job(job["id"])["status"] == "completed"
    q.close()


def test_a_worker_process_waits_through_a_database_restart_and_sends_each_once(
    own_server, tmp_path
):
    from tests.sms_e2e_support import SmsWorkers, assert_each_once, rows, wait_job
    from tests.sms_standin import GatewayServer
    from tests.wa_e2e_support import wait_until

    url, q, job, numbers = sms_job_on_own_server(own_server, "+5511912346", 30)
    with GatewayServer(step_delay=0) as gw:
        workers = SmsWorkers(url, gw.url, tmp_path)
        try:
            worker = workers.start(sms_min_delay=0.1, sms_max_delay=0.1)
            wait_until(lambda: len(gw.accepted()) >= 8, 30, "8 messages", details=worker.log)
            own_server.stop()
            time.sleep(2)  # down for a while, mid-job
            assert worker.proc.poll() is None, worker.log()  # waiting, not exited
            own_server.start()
            wait_job(q, job["id"], "completed", 60, details=worker.log)
            assert_each_once(gw, {p: f"SMS {p}" for p in numbers})
            assert {r["status"] for r in rows(q, job["id"])} <= {"sent", "delivered"}
            # It waited (for a pooled connection, or on DatabaseUnavailable), never crashed.
            assert worker.proc.poll() is None and "Traceback" not in worker.log(10**6)
        finally:
            workers.close()
            q.close()


def test_text_from_outside_with_nul_is_kept_marked_not_a_crash(queue, settings):
    from utils.replies import take_inbound

    assert take_inbound(
        queue,
        settings,
        phone="+15550000009",
        channel="sms",
        sender="phone-1",
        text="hi\x00there",
        received_at=1_800_000_000.0,
    )
    (row,) = queue.db.connection().execute("SELECT text FROM inbound").fetchall()
    assert row[0] == "hi\ufffdthere"
    queue.heartbeat("phone-1", "sms", "logged_in", detail="gateway said \x00")


def test_errors_that_mean_the_database_is_away_are_unavailable_not_crashes():
    from message_queue.pg_conn import _unavailable

    for error in (
        psycopg.errors.ReadOnlySqlTransaction("a standby after a failover"),
        psycopg.errors.AdminShutdown("terminating connection"),
        psycopg.errors.DeadlockDetected("deadlock"),
        psycopg.OperationalError("connection refused"),
    ):
        with pytest.raises(DatabaseUnavailable), _unavailable():
            raise error
    with pytest.raises(psycopg.errors.UndefinedTable), _unavailable():
        raise psycopg.errors.UndefinedTable("a bug, not an outage")


def test_a_read_only_server_is_unavailable_for_writes_and_readable(database):
    q = Queue(database)
    job, _ = q.create_job(NewJob(channel="sms", template="x"), recipients(1))
    q.close()
    read_only = Queue(database + "%20-cdefault_transaction_read_only%3Don")
    try:
        assert read_only.get_job(job["id"])["total"] == 1
        with pytest.raises(DatabaseUnavailable):
            read_only.claim_next("sms", "w1")
    finally:
        read_only.close()


def test_the_clock_is_the_servers_whatever_the_local_wall_clock_does(queue, monkeypatch):
    import message_queue.pg as pg

    before = queue.clock()
    monkeypatch.setattr(pg.time, "time", lambda: 0.0)  # the local clock stepped far back
    queue.db._clock_due = 0.0  # and a reading is due
    assert abs(queue.clock() - before) < 5
    queue.create_job(NewJob(channel="sms", template="x"), recipients(1))
    assert abs(queue.clock() - before) < 5


def test_a_worker_started_while_the_database_is_down_waits_for_it(own_server, tmp_path):
    from tests.sms_e2e_support import SmsWorkers, assert_each_once, wait_job
    from tests.sms_standin import GatewayServer
    from tests.wa_e2e_support import wait_until

    url, q, job, numbers = sms_job_on_own_server(own_server, "+5511912347", 5)
    with GatewayServer(step_delay=0) as gw:
        workers = SmsWorkers(url, gw.url, tmp_path)
        try:
            own_server.stop()
            try:
                worker = workers.start()
                # Down until the worker has met DatabaseUnavailable (opening the queue and
                # its first heartbeat each wait POOL_TIMEOUT for a connection first).
                wait_until(
                    lambda: "database unavailable, waiting" in worker.log(10**6),
                    60,
                    "the worker to wait for the database",
                    details=worker.log,
                )
                time.sleep(1)
                assert worker.proc.poll() is None, worker.log()
            finally:
                own_server.start()
            wait_job(q, job["id"], "completed", 60, details=worker.log)
            assert_each_once(gw, {p: f"SMS {p}" for p in numbers})
        finally:
            workers.close()
            q.close()
