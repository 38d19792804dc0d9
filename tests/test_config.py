"""Settings (contract section 4): read once from the environment and `.env`, validated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, Settings

PROJECT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k3y-0123456789abcdefghijk"


def from_env(**values):
    """Settings from exactly these variables: no `.env`, nothing from os.environ."""
    return Settings.from_env(environ={k: str(v) for k, v in values.items()}, dotenv_path=None)


def test_every_default_of_the_contract():
    s = from_env()
    assert s.api_key == "" and s.secret_key == ""
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.database_path == "whatsapp_queue.db"
    assert s.default_country == ""
    assert s.max_upload_mb == 20 and s.max_upload_bytes == 20 * 1024 * 1024
    assert (s.min_delay, s.max_delay) == (4, 8)
    assert (s.long_pause_every, s.long_pause_min, s.long_pause_max) == (10, 20, 40)
    assert s.max_attempts == 3
    assert s.worker_channel == "whatsapp"
    assert s.worker_id == f"{socket.gethostname()}-whatsapp"
    assert s.whatsapp_web_url == "https://web.whatsapp.com"
    assert s.selectors_file == "worker/selectors.json"
    assert (s.chrome_binary, s.chromedriver_path) == ("", "")  # "" means auto
    assert s.chrome_profile_dir == "chrome_profile"
    assert s.headless is True
    assert (s.sms_gateway_url, s.sms_gateway_username, s.sms_gateway_password) == ("", "sms", "")
    assert (s.log_level, s.log_format) == ("INFO", "text")


def test_values_are_read_and_typed():
    s = from_env(
        API_KEY=GOOD_KEY,
        HOST="0.0.0.0",
        PORT="9000",
        DATABASE_PATH="/tmp/q.db",
        DEFAULT_COUNTRY="br",
        MAX_UPLOAD_MB="2.5",
        MIN_DELAY="1",
        MAX_DELAY="1.5",
        LONG_PAUSE_EVERY="0",
        MAX_ATTEMPTS="5",
        WORKER_CHANNEL="SMS",
        HEADLESS="no",
        LOG_LEVEL="debug",
        LOG_FORMAT="JSON",
        SMS_GATEWAY_URL="http://192.168.1.5:8080",
        CHROME_BINARY="/opt/chrome",
    )
    assert (s.api_key, s.host, s.port, s.database_path) == (GOOD_KEY, "0.0.0.0", 9000, "/tmp/q.db")
    assert s.default_country == "BR" and s.max_upload_mb == 2.5
    assert (s.min_delay, s.max_delay, s.long_pause_every, s.max_attempts) == (1, 1.5, 0, 5)
    assert s.worker_channel == "sms" and s.worker_id == f"{socket.gethostname()}-sms"
    assert s.headless is False and (s.log_level, s.log_format) == ("DEBUG", "json")
    assert s.sms_gateway_url == "http://192.168.1.5:8080" and s.chrome_binary == "/opt/chrome"


def test_explicit_worker_id_and_blank_values_keep_defaults():
    s = from_env(WORKER_ID="wa-left", PORT="  ", MIN_DELAY="")
    assert s.worker_id == "wa-left" and s.port == 8080 and s.min_delay == 4


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# written by make run\nAPI_KEY=from-dotenv-0123456789\nPORT=9001\n"
        "MIN_DELAY=2\nDEFAULT_COUNTRY=IN\nSECRET_KEY='quoted secret'\n"
    )
    s = Settings.from_env(environ={"PORT": "9002", "MAX_DELAY": "3"}, dotenv_path=str(dotenv))
    assert s.api_key == "from-dotenv-0123456789"
    assert s.port == 9002  # the real environment wins over .env
    assert (s.min_delay, s.max_delay) == (2, 3)
    assert s.default_country == "IN" and s.secret_key == "quoted secret"


def test_missing_dotenv_file_is_fine(tmp_path):
    s = Settings.from_env(environ={"PORT": "81"}, dotenv_path=str(tmp_path / "nope.env"))
    assert s.port == 81


def test_reads_os_environ_when_no_dict_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("LONG_PAUSE_EVERY", "7")
    assert Settings.from_env(dotenv_path=str(tmp_path / "none")).long_pause_every == 7


@pytest.mark.parametrize(
    "values, setting",
    [
        ({"MIN_DELAY": "abc"}, "MIN_DELAY"),
        ({"MAX_DELAY": "8s"}, "MAX_DELAY"),
        ({"MIN_DELAY": "nan"}, "MIN_DELAY"),
        ({"MAX_DELAY": "inf"}, "MAX_DELAY"),
        ({"MIN_DELAY": "-1"}, "MIN_DELAY"),
        ({"MIN_DELAY": "9", "MAX_DELAY": "8"}, "MIN_DELAY"),
        ({"MIN_DELAY": "9"}, "MIN_DELAY"),  # above the default MAX_DELAY of 8
        ({"LONG_PAUSE_MIN": "50"}, "LONG_PAUSE_MIN"),
        ({"LONG_PAUSE_EVERY": "ten"}, "LONG_PAUSE_EVERY"),
        ({"LONG_PAUSE_EVERY": "-1"}, "LONG_PAUSE_EVERY"),
        ({"MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"),
        ({"MAX_ATTEMPTS": "2.5"}, "MAX_ATTEMPTS"),
        ({"MAX_UPLOAD_MB": "lots"}, "MAX_UPLOAD_MB"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"WORKER_CHANNEL": "telegram"}, "WORKER_CHANNEL"),
        ({"WORKER_CHANNEL": "whatsapp_then_sms"}, "WORKER_CHANNEL"),
        ({"DEFAULT_COUNTRY": "XX"}, "DEFAULT_COUNTRY"),
        ({"DEFAULT_COUNTRY": "Brazil"}, "DEFAULT_COUNTRY"),
        ({"HEADLESS": "maybe"}, "HEADLESS"),
        ({"HEADLESS": "2"}, "HEADLESS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_stop_with_an_error_naming_the_setting(values, setting):
    with pytest.raises(ConfigError) as caught:
        from_env(**values)
    text = str(caught.value)
    assert setting in text and "\n" not in text


def test_bad_value_in_dotenv_is_named_too(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("MAX_DELAY=eight\n")
    with pytest.raises(ConfigError, match="MAX_DELAY"):
        Settings.from_env(environ={}, dotenv_path=str(dotenv))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "   ",
        "change-me",
        "CHANGEME",
        "your-api-key",
        "secret",
        "short-key",
        "abcdefghijk",
        " " * 20,
        "password1234",
        "a" * 40,
        "0123456789" * 2,
    ],
)
def test_require_api_key_refuses_empty_placeholder_and_short_keys(key):
    with pytest.raises(ConfigError, match="API_KEY"):
        Settings(api_key=key).require_api_key()


def test_require_api_key_accepts_a_real_key():
    Settings(api_key=GOOD_KEY).require_api_key()
    Settings(api_key="correct-horse-battery-staple").require_api_key()  # a passphrase


def test_settings_are_frozen_and_replace_copies():
    s = from_env()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
    t = s.replace(port=1234)
    assert t.port == 1234 and s.port == 8080


# ---------------------------------------------------------------- `python app.py`


def run_app(tmp_path, **env):
    """`python app.py` with only these variables, in a folder without `.env`."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT),
        "HOME": str(tmp_path),
        "DATABASE_PATH": str(tmp_path / "queue.db"),
        **env,
    }
    return subprocess.run(
        [sys.executable, str(PROJECT / "app.py")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=15,
    )


def test_app_refuses_to_start_without_an_api_key(tmp_path):
    assert not (tmp_path / ".env").exists()
    done = run_app(tmp_path, API_KEY="")
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "API_KEY" in lines[0], lines
    assert not (tmp_path / "queue.db").exists()


def test_app_refuses_to_start_with_a_bad_setting(tmp_path):
    done = run_app(tmp_path, API_KEY=GOOD_KEY, MIN_DELAY="9", MAX_DELAY="3")
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "MIN_DELAY" in lines[0], lines
    assert not (tmp_path / "queue.db").exists()
