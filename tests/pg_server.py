"""The PostgreSQL server the tests put the queue on, and one fresh schema per test.

TEST_DATABASE_URL when set; else the server on 127.0.0.1:5432 (database `test`) when one
answers; else a throw-away server of our own, started from Debian's programs
(`deploy/ensure-postgres.sh` installs them) in a temporary folder, stopped at exit. With
CI=true a PostgreSQL that cannot be had is a failure, never a skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from urllib.parse import quote

import psycopg

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


class NoPostgres(RuntimeError):
    """No server is reachable and none could be started."""


def answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


_url: str | None = None


def server_url() -> str:
    """The URL of a database the tests may fill and empty (found or started once)."""
    global _url
    if _url is None:
        given = os.environ.get("TEST_DATABASE_URL", "")
        if given:
            if not answers(given):
                raise NoPostgres(f"TEST_DATABASE_URL {given} does not answer")
            _url = given
        elif answers(LOCAL_URL):
            _url = LOCAL_URL
        else:
            _url = start_throwaway()
    return _url


def schema_url(base: str, schema: str) -> str:
    """`base` with every connection's search_path set to `schema`."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options={quote(f'-csearch_path={schema}')}"


def new_schema() -> tuple[str, str]:
    """A fresh, empty schema: (its name, a URL whose connections use it)."""
    base = server_url()
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name, schema_url(base, name)


def drop_schema(name: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise NoPostgres(
            f"no PostgreSQL server answers on 127.0.0.1:5432 and {name} is missing:"
            " install Debian's postgresql (make test does when it may)"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Throwaway:
    """A PostgreSQL server of our own in a temporary folder: for the tests that stop and
    restart it, and for machines where no other server answers. Stopped and removed at exit."""

    def __init__(self):
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self.folder = tempfile.mkdtemp(prefix="queue-pg-")
        self.data, self.port = os.path.join(self.folder, "data"), _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as its own user
            shutil.chown(self.folder, "postgres")
            os.chmod(self.folder, 0o700)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run(self.initdb, "-D", self.data, "-U", "postgres", "-A", "trust")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.start()
        atexit.register(self.remove)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = f"{self.folder}/log"
        self._run(self.pg_ctl, "-D", self.data, "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Stop at once, as a crash or a power cut would (no shutdown checkpoint)."""
        self._run(self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", self.data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_throwaway() -> str:
    """A throw-away server's URL (its own database `postgres`)."""
    return Throwaway().url
