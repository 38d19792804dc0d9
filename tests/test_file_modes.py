"""Files that hold keys or other people's contacts are readable by their owner only.

Each test sets a permissive umask (022, the usual default) first, so a private mode can only
come from the code creating the file that way, never from the environment it ran in.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import stat
import sys
from pathlib import Path

import pytest

from message_queue import Queue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import make_env  # noqa: E402


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_queue_database_and_its_wal_files_are_private(tmp_path):
    queue = Queue(tmp_path / "queue.db")  # writes the schema: the WAL and its index exist
    try:
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["queue.db", "queue.db-shm", "queue.db-wal"]
        for name in names:
            assert mode(tmp_path / name) == 0o600, name
    finally:
        queue.close()


def test_make_env_creates_a_private_env_with_both_keys(tmp_path):
    env = tmp_path / ".env"
    make_env.make_env(env)
    assert mode(env) == 0o600
    text = env.read_text()
    assert "API_KEY=" in text and "SECRET_KEY=" in text


def test_make_env_tightens_an_env_others_can_read(tmp_path, capsys):
    env = tmp_path / ".env"
    env.write_text("API_KEY=kept-as-it-was-0123456789abc\nDEFAULT_COUNTRY=BR")  # no last \n
    env.chmod(0o644)
    make_env.make_env(env)
    assert mode(env) == 0o600
    assert "readable by other users" in capsys.readouterr().out
    lines = env.read_text().splitlines()
    assert lines[:2] == ["API_KEY=kept-as-it-was-0123456789abc", "DEFAULT_COUNTRY=BR"]
    assert lines[2].startswith("SECRET_KEY=") and len(lines) == 3


def test_a_new_env_is_private_even_when_writing_the_keys_fails(tmp_path):
    """No write-then-chmod: the file is 0600 from the moment it exists. A write that fails
    (here: a file-size limit of 0 bytes) leaves a private empty file, not a readable one."""
    env = tmp_path / ".env"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        sys.stdout = io.StringIO()  # pytest's capture file is bound by the size limit too
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        try:
            make_env.make_env(env)
        except OSError:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the write should have failed"
    assert env.exists() and env.stat().st_size == 0
    assert mode(env) == 0o600
