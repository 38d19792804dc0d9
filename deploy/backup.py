"""`make backup`: a consistent copy of the live queue, taken while the API and workers run.

SQLite's online backup API copies pages under a read lock, so the copy is a snapshot of
committed transactions, never a torn file (a plain `cp` of a WAL database can be).

A queue on PostgreSQL (DATABASE_URL) is copied by PostgreSQL's own pg_dump, which reads one
snapshot too; the copy is checked by listing it with pg_restore, and restored with
`pg_restore --clean --if-exists --dbname "$DATABASE_URL" <file>`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import ConfigError, Settings  # noqa: E402
from message_queue import Queue  # noqa: E402


def main(argv: list[str]) -> int:
    try:
        settings = Settings.from_env(dotenv_path=str(ROOT / ".env"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = Path(argv[1]) if len(argv) > 1 else ROOT / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        return dump_postgres(settings.database_url, folder)
    target = folder / f"{Path(settings.database_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}.db"
    queue = Queue(settings.database_path)
    queue.backup(target)
    copy = Queue(target)
    verdict = copy.integrity_check()
    copy.close()
    if verdict != "ok":
        print(f"error: the backup {target} failed its integrity check: {verdict}", file=sys.stderr)
        return 1
    print(f"backed up {settings.database_path} to {target}")
    return 0


def dump_postgres(url: str, folder: Path) -> int:
    """pg_dump's custom format into `folder`, checked by pg_restore --list."""
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        print(
            "error: pg_dump and pg_restore are needed (Debian: apt install postgresql-client)",
            file=sys.stderr,
        )
        return 2
    target = folder / f"queue-{time.strftime('%Y%m%d-%H%M%S')}.dump"
    dumped = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", url],
        capture_output=True,
        text=True,
    )
    if dumped.returncode != 0:
        print(f"error: pg_dump failed: {dumped.stderr.strip()}", file=sys.stderr)
        return 1
    target.chmod(0o600)  # every contact list and message is in it
    listed = subprocess.run(["pg_restore", "--list", str(target)], capture_output=True, text=True)
    if listed.returncode != 0 or "TABLE DATA" not in listed.stdout:
        print(f"error: the backup {target} cannot be read back: {listed.stderr}", file=sys.stderr)
        return 1
    print(f"backed up the PostgreSQL queue to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
