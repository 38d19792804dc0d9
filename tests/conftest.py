"""Shared fixtures, in flaskr's shape: a throw-away database per test, an app, a client."""

from __future__ import annotations

import os

import pytest

from app import create_app
from config import Settings
from message_queue import Queue

API_KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for one test: its own database and upload folder, no pacing."""
    return Settings(
        api_key=API_KEY,
        secret_key="s" * 32,
        database_path=str(tmp_path / "queue.db"),
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
    q = Queue(settings.database_path)
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
