"""`make backup`: a consistent copy of the live queue, taken while the API and workers run.

SQLite's online backup API copies pages under a read lock, so the copy is a snapshot of
committed transactions, never a torn file (a plain `cp` of a WAL database can be).
"""

from __future__ import annotations

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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
