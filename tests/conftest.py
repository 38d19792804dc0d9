"""Shared fixtures, in flaskr's shape: a throw-away database per test, an app, a client.

Every test that uses the queue or the API runs twice, on a SQLite file and on PostgreSQL (a
fresh schema each time, tests/pg_server.py), except the real-browser ones, which prove the
worker's side and run on SQLite. A module pins one backend with `BACKENDS = ("sqlite",)`,
a test with `@pytest.mark.backends("sqlite")` (a SQLite file's own upgrades, say).
"""

from __future__ import annotations

import os

import pytest

from app import create_app
from config import Settings
from message_queue import Queue
from tests import pg_server

BACKENDS = ("sqlite", "postgresql")
# Fixtures that reach the queue: a test using one of them runs on each backend.
_QUEUE_FIXTURES = {"settings", "queue", "database"}

API_KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        backends: tuple[str, ...] = marker.args
    elif "chromium" in metafunc.fixturenames:
        backends = ("sqlite",)
    else:
        backends = getattr(metafunc.module, "BACKENDS", BACKENDS)
    metafunc.parametrize("backend", backends, scope="function")


def pytest_collection_modifyitems(items):
    # Pulled in by every queue fixture, so pytest_generate_tests sees it and parametrizes.
    for item in items:
        if _QUEUE_FIXTURES & set(getattr(item, "fixturenames", ())):
            assert "backend" in item.fixturenames, item.nodeid


@pytest.fixture
def database(backend, tmp_path):
    """Where this test's queue lives: a SQLite file, or a fresh PostgreSQL schema's URL."""
    if backend == "sqlite":
        yield str(tmp_path / "queue.db")
        return
    try:
        name, url = pg_server.new_schema()
    except pg_server.NoPostgres as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    yield url
    pg_server.drop_schema(name)


@pytest.fixture
def settings(tmp_path, database) -> Settings:
    """Settings for one test: its own database and upload folder, no pacing."""
    return Settings(
        api_key=API_KEY,
        secret_key="s" * 32,
        database_path=str(tmp_path / "queue.db"),
        database_url=database if database.startswith("postgresql") else "",
        upload_dir=str(tmp_path / "uploads"),
        chrome_profile_dir=str(tmp_path / "profile"),
        min_delay=0,
        max_delay=0,
        sms_min_delay=0,
        sms_max_delay=0,
        long_pause_every=0,
        long_pause_min=0,
        long_pause_max=0,
        retry_backoff=0,
        worker_id="test-worker",
    )


@pytest.fixture
def queue(settings) -> Queue:
    q = Queue(settings.database)
    yield q
    q.close()


@pytest.fixture
def app(settings, queue):
    app = create_app(settings, queue)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth():
    return dict(AUTH)


@pytest.fixture(scope="session")
def chromium():
    """Skip a real-browser test where Chromium is missing, except in CI, which must run them."""
    from worker.whatsapp.browser import BrowserUnavailable, find_chrome

    try:
        find_chrome()
    except BrowserUnavailable as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
