"""Create `.env` with a random API_KEY and SECRET_KEY when it has none (for `make run`).

The key is printed once, so the person starting the service can sign in to /app with it.
"""
from __future__ import annotations

import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values

ENV = Path(__file__).resolve().parent.parent / ".env"


def main() -> int:
    current = dotenv_values(ENV) if ENV.exists() else {}
    lines = []
    if not (current.get("API_KEY") or "").strip():
        key = secrets.token_urlsafe(24)
        lines.append(f"API_KEY={key}")
        print(f"Created API_KEY in .env: {key}\n(sign in to http://127.0.0.1:8080/app with it;"
              " it stays in .env)")
    if not (current.get("SECRET_KEY") or "").strip():
        lines.append(f"SECRET_KEY={secrets.token_hex(32)}")
    if lines:
        existing = ENV.read_text() if ENV.exists() else ""
        if existing and not existing.endswith("\n"):
            existing += "\n"
        ENV.write_text(existing + "\n".join(lines) + "\n")
        ENV.chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
