"""`make run`: the API under gunicorn plus the workers, in the foreground; Ctrl-C stops all.

Each part is its own process, exactly as under systemd, so what works here works there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import ConfigError, Settings  # noqa: E402
from message_queue import Queue  # noqa: E402


def commands(settings: Settings) -> list[tuple[str, list[str], dict]]:
    """What to start: (name, argv, extra environment)."""
    python = sys.executable
    parts: list[tuple[str, list[str], dict]] = [
        (
            "api",
            [
                python,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"{settings.host}:{settings.port}",
                "--access-logfile",
                "-",
                "app:create_app()",
            ],
            {},
        )
    ]
    if (ROOT / "run_worker.py").exists():
        parts.append(("whatsapp-worker", [python, "run_worker.py"], {"WORKER_CHANNEL": "whatsapp"}))
        if settings.sms_gateway_url:
            parts.append(("sms-worker", [python, "run_worker.py"], {"WORKER_CHANNEL": "sms"}))
    return parts


def main() -> int:
    # Everything the API and workers create (database, uploads, Chromium's profile with the
    # WhatsApp login) holds other people's contacts or opens the account: private to us, as
    # UMask=0077 makes it under systemd. Children inherit the umask.
    os.umask(0o077)
    try:
        settings = Settings.from_env(dotenv_path=str(ROOT / ".env"))
        settings.require_api_key()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Queue(settings.database).close()  # creates the database file and its tables
    children = []
    for name, argv, extra in commands(settings):
        print(f"starting {name}: {' '.join(argv[1:])}")
        children.append(subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **extra}))
    print(f"API on http://{settings.host}:{settings.port}  (open /app; Ctrl-C stops everything)")
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.time() + 30
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
