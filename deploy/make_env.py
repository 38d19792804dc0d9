"""Create `.env` with a random API_KEY and SECRET_KEY when it has none (for `make run`).

The key is printed once, so the person starting the service can sign in to /app with it.
`.env` holds the key that opens every contact list, so it is created readable by its owner
only, and an existing one that others may read is tightened (and the user told).
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

from dotenv import dotenv_values

ENV = Path(__file__).resolve().parent.parent / ".env"


def make_env(env: Path = ENV) -> None:
    """Give `env` an API_KEY and a SECRET_KEY if it lacks them, and make it private."""
    tighten(env)
    current = dotenv_values(env) if env.exists() else {}
    lines = []
    if not (current.get("API_KEY") or "").strip():
        key = secrets.token_urlsafe(24)
        lines.append(f"API_KEY={key}")
        print(
            f"Created API_KEY in {env.name}: {key}\n(sign in to http://127.0.0.1:8080/app"
            f" with it; it stays in {env.name})"
        )
    if not (current.get("SECRET_KEY") or "").strip():
        lines.append(f"SECRET_KEY={secrets.token_hex(32)}")
    if lines:
        append_private(env, "\n".join(lines) + "\n")


def tighten(env: Path) -> None:
    """Take group and world access away from an existing `env`, saying so."""
    try:
        mode = stat.S_IMODE(env.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        env.chmod(mode & 0o700)
        print(
            f"{env} was readable by other users (mode {mode:o}); it is now {mode & 0o700:o}."
            " Change API_KEY and SECRET_KEY if someone else may have read them."
        )


def append_private(env: Path, text: str) -> None:
    """Append `text` to `env`, creating it 0600 so the keys are never readable by others,
    not even for the moment between a write and a chmod."""
    fd = os.open(env, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as f:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = "\n" + text  # a hand-written last line without its newline
        f.write(text.encode())


def main(argv: list[str]) -> int:
    make_env(Path(argv[1]) if len(argv) > 1 else ENV)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
