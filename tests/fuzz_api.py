"""`make fuzz`: schemathesis against the live API under gunicorn, checked against api/openapi.json.

Starts the API on a free loopback port with a throw-away database, runs every operation of
the description with generated inputs (valid and invalid), and fails on any 5xx or any answer
that does not match the description. Prints one summary line.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(folder: Path, key: str, port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        API_KEY=key,
        DATABASE_PATH=str(folder / "q.db"),
        UPLOAD_DIR=str(folder / "uploads"),
        SECRET_KEY=secrets.token_hex(16),
        DEFAULT_COUNTRY="US",
        LOG_LEVEL="WARNING",
    )
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "api.log", "w"),  # noqa: SIM115 - the server's whole life
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return api
        except OSError:
            time.sleep(0.1)
    api.kill()
    raise SystemExit("the API did not start; see " + str(folder / "api.log"))


def main(argv: list[str]) -> int:
    examples = argv[1] if len(argv) > 1 else "100"
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        api = start_api(folder, key, port)
        try:
            started = time.monotonic()
            result = subprocess.run(
                [
                    str(Path(sys.executable).with_name("schemathesis")),
                    "run",
                    f"http://127.0.0.1:{port}/openapi.json",
                    "-H",
                    f"X-API-Key: {key}",
                    "--checks",
                    "all",
                    "--max-examples",
                    examples,
                    "--seed",
                    "1",
                    # A request valid by the schema may still name an unknown {placeholder} or hold
                    # no valid number: 422 is right there, so "valid data accepted" is not checked.
                    "--exclude-checks",
                    "positive_data_acceptance",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            seconds = time.monotonic() - started
        finally:
            api.terminate()
            api.wait(10)
        if os.environ.get("FUZZ_KEEP"):  # a path for the whole report: failures come first
            Path(os.environ["FUZZ_KEEP"]).write_text(result.stdout)
        print(result.stdout[-4000:])
        errors = (folder / "api.log").read_text()
        server_errors = len(re.findall(r"unhandled error", errors))
    summary = [
        line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)
    ]
    print(
        f"fuzz: {summary[-1].strip() if summary else 'no summary'}; "
        f"{server_errors} unhandled server errors; {seconds:.0f} s; exit {result.returncode}"
    )
    return 1 if result.returncode or server_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
