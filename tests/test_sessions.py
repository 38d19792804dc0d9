"""Sessions of the /app page that end, and keys that cannot be guessed fast.

A session ends on sign-out (an old copy of the cookie is worth nothing after it), after
SESSION_IDLE_TIMEOUT without a request and SESSION_MAX_AGE after sign-in, and when the API key
changes. Wrong API keys, in the form or in a header, are throttled per client address. Time is
the queue's injected clock (sessions) and the limiter's (throttling): nothing sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

import pytest

from api.limiter import WrongKeyLimiter
from app import create_app
from message_queue import Queue
from message_queue.db import SCHEMA_VERSION
from tests.conftest import API_KEY
from tests.test_app_page import page_token, sign_in

START = 1_000_000.0


@pytest.fixture
def now():
    return [START]


@pytest.fixture
def clocked(settings, now):
    """An app whose queue reads the test's clock; (app, client, queue)."""
    queue = Queue(settings.database, clock=lambda: now[0])
    app = create_app(settings.replace(session_idle_timeout=3600, session_max_age=43200), queue)
    app.config.update(TESTING=True)
    yield app, app.test_client(), queue
    queue.close()


def signed_in(client) -> str:
    """Sign `client` in; the page's CSRF token."""
    assert sign_in(client).status_code == 303
    return page_token(client.get("/app").get_data(as_text=True))


def cookie_payload(client) -> dict:
    """What Flask's signed session cookie holds (signed, not encrypted: anyone can read it)."""
    value = client.get_cookie("session").value
    compressed = value.startswith(".")
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def session_rows(queue) -> list[dict]:
    rows = queue.db.connection().execute("SELECT * FROM sessions").fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- how a session ends


def test_sign_out_ends_the_session_even_for_a_kept_copy_of_the_cookie(client, queue):
    csrf = signed_in(client)
    kept = client.get_cookie("session").value  # what a thief (or a shared computer) kept
    assert client.post("/app/sign-out", data={"csrf": csrf}).status_code == 303
    client.set_cookie("session", kept)
    assert client.get("/jobs").status_code == 401
    assert client.post("/stop", headers={"X-CSRF-Token": csrf}).status_code == 401
    assert "api_key" in client.get("/app").get_data(as_text=True)  # the sign-in form
    assert session_rows(queue) == []


def test_a_session_ends_after_the_idle_timeout(clocked, now):
    app, client, queue = clocked
    signed_in(client)
    for _ in range(3):  # each request within the timeout keeps it going
        now[0] += 3599
        assert client.get("/jobs").status_code == 200
    now[0] += 3601
    assert client.get("/jobs").status_code == 401
    assert session_rows(queue) == []


def test_a_session_ends_at_its_max_age_however_busy(clocked, now):
    app, client, queue = clocked
    csrf = signed_in(client)
    while now[0] + 1800 < START + 43200:
        now[0] += 1800
        assert client.get("/jobs").status_code == 200
    now[0] = START + 43200
    assert client.get("/jobs").status_code == 401
    assert client.post("/stop", headers={"X-CSRF-Token": csrf}).status_code == 401


def test_last_seen_is_written_once_a_minute_not_on_every_poll(clocked, now):
    app, client, queue = clocked
    signed_in(client)
    assert [r["last_seen_at"] for r in session_rows(queue)] == [START]
    for _ in range(6):
        now[0] += 10
        assert client.get("/status").status_code == 200
    assert [r["last_seen_at"] for r in session_rows(queue)] == [START]
    now[0] += 1
    client.get("/status")
    assert [r["last_seen_at"] for r in session_rows(queue)] == [START + 61]


def test_the_sign_in_form_says_when_a_session_ends(client):
    html = " ".join(client.get("/app").get_data(as_text=True).split())
    assert "unused for 60 minutes (12 hours at most)" in html


def test_a_changed_api_key_ends_every_session(app, client, queue):
    signed_in(client)
    app.config["API_KEY"] = "a-brand-new-key-0123456789"  # what a restart with a new key does
    assert client.get("/jobs").status_code == 401
    assert session_rows(queue) == []


def test_the_cookie_holds_a_random_id_and_the_database_only_its_hash(client, queue):
    signed_in(client)
    payload = cookie_payload(client)
    assert set(payload) == {"sid"}  # no key, no fingerprint of it, no CSRF token
    assert hashlib.sha256(API_KEY.encode()).hexdigest()[:16] not in json.dumps(payload)
    [row] = session_rows(queue)
    assert row["id_hash"] == hashlib.sha256(payload["sid"].encode()).hexdigest()
    assert payload["sid"] not in json.dumps(row)
    assert API_KEY not in json.dumps(row)
    assert row["key_mac"] != hashlib.sha256(API_KEY.encode()).hexdigest()  # keyed, not bare


def test_two_sign_ins_are_two_sessions_and_signing_out_ends_one(app, queue):
    one, two = app.test_client(), app.test_client()
    csrf_one, csrf_two = signed_in(one), signed_in(two)
    assert csrf_one != csrf_two and len(session_rows(queue)) == 2
    one.post("/app/sign-out", data={"csrf": csrf_one})
    assert one.get("/jobs").status_code == 401 and two.get("/jobs").status_code == 200
    assert two.post("/stop", headers={"X-CSRF-Token": csrf_one}).status_code == 403


def test_a_forged_or_garbled_session_id_is_just_signed_out(app, client, queue):
    signed_in(client)
    with client.session_transaction() as cookie:  # signed with the app's own secret
        cookie["sid"] = "x" * 10_000
    assert client.get("/jobs").status_code == 401
    with client.session_transaction() as cookie:
        cookie["sid"] = ["not", "a", "string"]
    assert client.get("/jobs").status_code == 401


def test_expired_sessions_are_purged_at_the_next_sign_in(clocked, now):
    app, client, queue = clocked
    signed_in(client)
    now[0] += 3601
    signed_in(app.test_client())
    assert [r["created_at"] for r in session_rows(queue)] == [START + 3601]


# ---------------------------------------------------------------- guessing keys in headers


@pytest.fixture
def limiter(app):
    """The app's wrong-key limiter, on a clock the test moves."""
    clock = [0.0]
    limiter = WrongKeyLimiter(clock=lambda: clock[0])
    limiter.test_clock = clock
    app.extensions["key_limiter"] = limiter
    return limiter


def get_jobs(client, key: str | None, address: str = "10.0.0.9"):
    headers = {"X-API-Key": key} if key is not None else {}
    return client.get("/jobs", headers=headers, environ_base={"REMOTE_ADDR": address})


def test_wrong_header_keys_are_throttled_then_even_the_right_key_waits(client, limiter):
    for i in range(limiter.limit):
        assert get_jobs(client, f"guess-{i}-0123456789").status_code == 401
    refused = get_jobs(client, API_KEY)
    body = refused.get_json()
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.headers["Retry-After"] == "60" and body["status"] == 429
    assert "even the right key" in body["detail"]
    bearer = client.get(
        "/jobs",
        headers={"Authorization": f"Bearer {API_KEY}"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert bearer.status_code == 429
    assert get_jobs(client, API_KEY, address="10.0.0.10").status_code == 200
    limiter.test_clock[0] += 61
    assert get_jobs(client, API_KEY).status_code == 200


def test_no_key_at_all_is_a_plain_401_and_never_locks_anyone_out(client, limiter):
    for _ in range(limiter.limit * 10):
        response = get_jobs(client, None)
        assert response.status_code == 401 and "Retry-After" not in response.headers
    assert get_jobs(client, API_KEY).status_code == 200


def test_the_same_stale_key_again_and_again_is_not_guessing(client, limiter):
    # A cron job left with last year's key must not lock out the scripts next to it.
    for _ in range(limiter.limit * 10):
        assert get_jobs(client, "last-years-key-0123456789").status_code == 401
    assert get_jobs(client, API_KEY).status_code == 200


def test_the_form_and_the_header_share_one_count(client, limiter):
    for i in range(limiter.limit - 1):
        assert sign_in(client, key=f"form-guess-{i}-0123", address="10.0.0.9").status_code == 401
    assert get_jobs(client, "header-guess-0123456789").status_code == 401
    assert get_jobs(client, API_KEY).status_code == 429
    assert sign_in(client, address="10.0.0.9").status_code == 429


def test_a_signed_in_page_is_not_throttled_by_guesses_from_its_address(client, limiter):
    csrf = signed_in(client)
    for i in range(limiter.limit):
        get_jobs(client, f"guess-{i}-0123456789", address="127.0.0.1")
    assert client.get("/jobs").status_code == 200  # the cookie is no key guess
    assert client.post("/stop", headers={"X-CSRF-Token": csrf}).status_code == 200


# ---------------------------------------------------------------- the limiter itself


def test_the_limiter_stays_bounded_and_never_raises():
    clock = [0.0]
    limiter = WrongKeyLimiter(limit=2, window=60, max_addresses=100, clock=lambda: clock[0])
    for i in range(1000):  # right keys: asked about, never counted
        assert limiter.retry_after(f"192.168.{i // 256}.{i % 256}") == 0
    assert len(limiter) == 0
    for i in range(10_000):
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        assert limiter.retry_after(address) == 0  # asking never adds an address
        limiter.failed(address, f"guess-{i}")
        limiter.failed(address, f"guess-{i}b")
        assert limiter.retry_after(address) == 60
        clock[0] += 0.001
        assert len(limiter) <= 100
    assert limiter.retry_after("10.0.39.15") == 60  # the newest are kept...
    assert limiter.retry_after("10.0.0.0") == 0  # ...the oldest forgotten


def test_the_limiter_forgets_addresses_whose_tries_expired():
    clock = [0.0]
    limiter = WrongKeyLimiter(limit=5, window=60, max_addresses=1000, clock=lambda: clock[0])
    for i in range(500):
        limiter.failed(f"10.0.{i // 256}.{i % 256}", "guess")
    clock[0] += 61
    limiter.failed("10.9.9.9", "guess")
    assert len(limiter) == 1  # expired addresses go as soon as the next failure comes


def test_sign_in_with_a_full_limiter_still_answers(app, client):
    limiter = WrongKeyLimiter(max_addresses=50)
    app.extensions["key_limiter"] = limiter
    for i in range(60):  # right keys from many addresses are asked about, never counted
        assert sign_in(app.test_client(), address=f"10.3.0.{i}").status_code == 303
    for i in range(200):
        response = sign_in(client, key=f"guess-{i}-0123456789", address=f"10.1.0.{i}")
        assert response.status_code == 401
    assert len(limiter) <= 50
    assert sign_in(client, address="10.2.0.1").status_code == 303


def test_signing_in_again_replaces_the_session(client, queue):
    signed_in(client)
    before = client.get_cookie("session").value
    signed_in(client)
    assert len(session_rows(queue)) == 1
    client.set_cookie("session", before)
    assert client.get("/jobs").status_code == 401


# ---------------------------------------------------------------- the schema


@pytest.mark.backends("sqlite")
def test_a_version_2_database_gains_the_sessions_table_in_place(settings, auth):
    queue = Queue(settings.database)
    conn = queue.db.connection()
    job = (
        create_app(settings, queue)
        .test_client()
        .post("/send", headers=auth, json={"message": "Hi", "numbers": ["+14155550101"]})
        .get_json()
    )
    conn.execute("DROP TABLE sessions")  # what version 2 wrote
    conn.execute("PRAGMA user_version = 2")
    queue.close()

    upgraded = Queue(settings.database)
    conn = upgraded.db.connection()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert upgraded.get_job(job["job_id"])["total"] == 1  # what was there is still there
    client = create_app(settings, upgraded).test_client()
    assert sign_in(client).status_code == 303 and client.get("/jobs").status_code == 200
    upgraded.close()
