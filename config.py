"""Settings, read once from the environment and `.env`, validated, then passed down.

Nothing else in the project reads `os.environ`: the API and the worker call
`Settings.from_env()` at start-up and hand the frozen result to what they build.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, fields, replace
from pathlib import Path

from dotenv import dotenv_values

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Keys people leave in place from examples; a service guarded by one of these is open.
PLACEHOLDER_KEYS = {
    "",
    "change-me",
    "changeme",
    "change_me",
    "your-api-key",
    "your_api_key",
    "api-key",
    "apikey",
    "secret",
    "replace-me",
    "xxx",
    "test",
    "example",
}
MIN_KEY_CHARS = 24
MIN_KEY_DISTINCT = 10


class ConfigError(ValueError):
    """A setting has a value the program cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    api_key: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    database_path: str = "whatsapp_queue.db"
    # A libpq URI (postgresql://user@host/db) puts the queue on PostgreSQL, shared by several
    # machines; empty keeps the SQLite file at DATABASE_PATH.
    database_url: str = ""
    upload_dir: str = "uploads"
    default_country: str = ""
    max_upload_mb: float = 20.0
    min_delay: float = 4.0
    max_delay: float = 8.0
    long_pause_every: int = 10
    long_pause_min: float = 20.0
    long_pause_max: float = 40.0
    max_attempts: int = 3
    retry_backoff: float = 30.0
    worker_channel: str = "whatsapp"
    worker_id: str = ""
    whatsapp_web_url: str = "https://web.whatsapp.com"
    selectors_file: str = "worker/selectors.json"
    chrome_binary: str = ""
    chromedriver_path: str = ""
    chrome_profile_dir: str = "chrome_profile"
    headless: bool = True
    send_timeout: float = 45.0
    browser_recycle_after: int = 300
    sms_gateway_url: str = ""
    sms_gateway_username: str = "sms"
    sms_gateway_password: str = ""
    # Seconds to wait for the phone's answer to one request (a slow Wi-Fi phone needs some).
    sms_gateway_timeout: float = 15.0
    # Android lets an app send about 30 SMS a minute before asking the user, and carriers
    # throttle far below that: SMS is paced on its own, slower than WhatsApp by default.
    sms_min_delay: float = 8.0
    sms_max_delay: float = 15.0
    sms_ttl: int = 21600
    # /app sign-in sessions end after this long without a request, and this long after sign-in.
    session_idle_timeout: float = 3600.0
    session_max_age: float = 43200.0
    # Set when /app is served over https (behind a reverse proxy): the cookie is then never
    # sent over plain http.
    session_cookie_secure: bool = False
    # Attachments of jobs finished this many days ago are deleted; 0 keeps them for ever.
    attachment_retention_days: float = 30.0
    # Replies that are only one of these words (case, accents, punctuation and spaces aside)
    # add their number to the suppression list, or take it off again.
    opt_out_keywords: str = (
        "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT,PARAR,SAIR,CANCELAR,DESCADASTRAR,BAJA,ALTO"
    )
    opt_in_keywords: str = "START,UNSTOP,VOLTAR,ALTA"
    # The one message that still goes to a number that just opted out; empty: none.
    opt_out_confirmation: str = ""
    # Where the phone posts sms:received (https, or http://127.0.0.1 on the phone itself).
    sms_webhook_url: str = ""
    sms_webhook_signing_key: str = ""
    # Careful sending (contract section 8). Caps count what one sender (WORKER_ID) really
    # sent in the last 24 hours / 60 minutes, rolling; 0 is no cap. The defaults are what a
    # normal personal account sends without looking like a robot.
    whatsapp_daily_cap: int = 200
    whatsapp_hourly_cap: int = 60
    sms_daily_cap: int = 400
    sms_hourly_cap: int = 100
    # A new sender starts at WARMUP_FIRST_DAY a day and reaches its daily cap on day
    # WARMUP_DAYS; 0 days is no warm-up.
    warmup_days: int = 0
    warmup_first_day: int = 20
    # "HH:MM-HH:MM" in each recipient's own time zone; empty: any time.
    send_window: str = ""
    # The zone of numbers whose zone the number does not tell (nor the job's `timezone`).
    timezone: str = "UTC"
    # A job pauses itself when more than this share of its last AUTO_PAUSE_WINDOW sends
    # failed; 0 turns it off.
    auto_pause_failure_rate: float = 0.5
    auto_pause_window: int = 20
    # Rows a sender left `sending` wait for it to come back and check them (only its own chat
    # or phone can tell); silent this long, it is gone and they end `unknown`.
    sender_gone_after: float = 3600.0
    notify_socket: str = ""
    log_level: str = "INFO"
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: dict | None = None, dotenv_path: str | None = ".env") -> Settings:
        """Build settings from `.env` overlaid by the real environment (which wins)."""
        values: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        kwargs = {}
        for f in fields(cls):
            raw = values.get(f.name.upper())
            if raw is not None and raw.strip() != "":
                kwargs[f.name] = _convert(f.name, raw.strip(), type(getattr(cls, f.name)))
        settings = cls(**kwargs)
        settings.validate()
        if not settings.worker_id:
            settings = settings.replace(
                worker_id=f"{socket.gethostname()}-{settings.worker_channel}"
            )
        return settings

    def replace(self, **changes) -> Settings:
        """A copy with some values changed (tests and the worker's defaults use it)."""
        return replace(self, **changes)

    def validate(self) -> None:
        """Refuse combinations no run could use, naming the setting at fault."""
        for name in (
            "min_delay",
            "max_delay",
            "sms_min_delay",
            "sms_max_delay",
            "long_pause_min",
            "long_pause_max",
            "retry_backoff",
            "max_upload_mb",
            "send_timeout",
            "attachment_retention_days",
            "sender_gone_after",
            "whatsapp_daily_cap",
            "whatsapp_hourly_cap",
            "sms_daily_cap",
            "sms_hourly_cap",
            "warmup_days",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.upper()} must not be negative")
        if self.min_delay > self.max_delay:
            raise ConfigError("MIN_DELAY must not be greater than MAX_DELAY")
        if self.sms_min_delay > self.sms_max_delay:
            raise ConfigError("SMS_MIN_DELAY must not be greater than SMS_MAX_DELAY")
        if not self.sms_gateway_timeout > 0:
            raise ConfigError("SMS_GATEWAY_TIMEOUT must be a positive number of seconds")
        if self.sms_ttl < 60:
            raise ConfigError("SMS_TTL must be at least 60 seconds")
        if self.long_pause_min > self.long_pause_max:
            raise ConfigError("LONG_PAUSE_MIN must not be greater than LONG_PAUSE_MAX")
        if self.long_pause_every < 0:
            raise ConfigError("LONG_PAUSE_EVERY must not be negative (0 turns long pauses off)")
        if not (self.session_idle_timeout > 0 and self.session_max_age > 0):
            raise ConfigError("SESSION_IDLE_TIMEOUT and SESSION_MAX_AGE must be positive seconds")
        if self.warmup_first_day < 1:
            raise ConfigError("WARMUP_FIRST_DAY must be at least 1")
        if not 0 <= self.auto_pause_failure_rate <= 1:
            raise ConfigError("AUTO_PAUSE_FAILURE_RATE must be between 0 and 1 (0 turns it off)")
        if self.auto_pause_window < 1:
            raise ConfigError("AUTO_PAUSE_WINDOW must be at least 1")
        from utils.sendwindow import SendWindow
        from utils.zones import is_known_zone

        try:
            SendWindow.parse(self.send_window)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not is_known_zone(self.timezone):
            raise ConfigError(
                f"TIMEZONE {self.timezone!r} is not a known time zone (e.g. UTC, "
                "America/Sao_Paulo, Asia/Kolkata)"
            )
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "DATABASE_URL must be a PostgreSQL URI (postgresql://user:password@host/db)"
                " or empty for the SQLite file at DATABASE_PATH"
            )
        if self.max_attempts < 1:
            raise ConfigError("MAX_ATTEMPTS must be at least 1")
        if not 0 < self.port < 65536:
            raise ConfigError("PORT must be between 1 and 65535")
        from message_queue.channels import TRANSPORTS

        if self.worker_channel not in TRANSPORTS:
            raise ConfigError(f"WORKER_CHANNEL must be one of {', '.join(TRANSPORTS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("LOG_FORMAT must be text or json")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        if self.default_country:
            from utils.phones import is_known_region

            if not is_known_region(self.default_country):
                raise ConfigError(
                    f"DEFAULT_COUNTRY {self.default_country!r} is not a known "
                    "ISO region code (e.g. BR, IN, US)"
                )

    @property
    def database(self) -> str:
        """Where the queue lives: DATABASE_URL when set, else the SQLite file."""
        return self.database_url or self.database_path

    def require_api_key(self) -> None:
        """The API must not start unguarded: refuse an empty, example or guessable key."""
        key = self.api_key.strip()
        # A key is the only lock on everyone's contact list: "password1234" is 12 characters
        # and the first thing a guesser tries. 24 characters of some variety are out of reach.
        if (
            key.lower() in PLACEHOLDER_KEYS
            or len(key) < MIN_KEY_CHARS
            or len(set(key)) < MIN_KEY_DISTINCT
        ):
            raise ConfigError(
                f"API_KEY is missing, a placeholder or too easy to guess: set a "
                f"random key of {MIN_KEY_CHARS}+ characters (make run generates "
                "one in .env; python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))' prints one)"
            )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _convert(name: str, raw: str, kind: type):
    """Turn one environment string into the field's type, or say which setting is wrong."""
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
    except ValueError:
        article = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
        raise ConfigError(f"{name.upper()} must be {article}, not {raw!r}") from None
    if name == "default_country":
        return raw.upper()
    if name == "log_level":
        return raw.upper()
    if name in ("worker_channel", "log_format"):
        return raw.lower()
    return raw
