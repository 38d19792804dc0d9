"""The systemd units and Chromium's sandbox: what runs on a server must be hardened, and
hardening must not stop Chromium.

Chromium is started by the product's own `build_driver` in a forked child that has become an
unprivileged user (when the tests run as root) and, for the unit tests, has the unit's
seccomp-level restrictions applied (tests/unit_restrictions.py says which, and which not).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import fields
from pathlib import Path

import pytest
import requests

# Imported here, not lazily by Selenium inside the forked child: see in_child().
import selenium.webdriver.chrome.webdriver  # noqa: F401

from config import Settings
from tests import unit_restrictions
from tests.chaos_api import free_port
from tests.wa_e2e_support import wait_until
from worker.whatsapp.browser import (
    build_driver,
    process_tree,
    sandbox_args,
    user_namespaces_allowed,
)

ROOT = Path(__file__).resolve().parent.parent
API_UNIT = ROOT / "deploy" / "whatsapp-api.service"
WORKER_UNIT = ROOT / "deploy" / "whatsapp-worker.service"
UNITS = (API_UNIT, WORKER_UNIT)
# Both units keep these; each line is one `systemd-analyze security` finding fixed.
HARDENING = {
    "UMask": "0077",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/bulk-sender",
    "ProtectHome": "true",
    "PrivateTmp": "true",
    "PrivateDevices": "true",
    "ProtectKernelTunables": "true",
    "ProtectKernelModules": "true",
    "ProtectKernelLogs": "true",
    "ProtectControlGroups": "true",
    "ProtectClock": "true",
    "ProtectHostname": "true",
    "CapabilityBoundingSet": "",
    "NoNewPrivileges": "true",
    "LockPersonality": "true",
    "RestrictRealtime": "true",
    "RestrictSUIDSGID": "true",
    "SystemCallArchitectures": "native",
    "User": "bulksender",
}
# Worst `systemd-analyze security` exposure accepted (10 = unsafe; 9.2 and 8.8 before).
MAX_EXPOSURE = {API_UNIT: 2.0, WORKER_UNIT: 3.0}
HOT_LOOP = "let s = 0; for (let i = 0; i < 5e6; i++) { s += i % 7; } return s;"
HOT_LOOP_TOTAL = 714285 * 21 + (0 + 1 + 2 + 3 + 4)  # 5e6 = 714285 weeks of 7, and 5 more


def settings_of(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in unit_restrictions.directives(unit):
        found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_keep_files_private_and_the_service_fenced_in(unit):
    found = settings_of(unit)
    for key, value in HARDENING.items():
        assert found.get(key, [None])[-1] == value, f"{unit.name}: {key}={value} missing"
    # Only the data folder is writable, and it is the service user's alone.
    assert found["StateDirectory"] == ["bulk-sender"]
    assert found["StateDirectoryMode"] == ["0700"]
    families = set(found["RestrictAddressFamilies"][-1].split())
    assert (
        {"AF_UNIX", "AF_INET", "AF_INET6"}
        <= families
        <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    )
    assert found["SystemCallFilter"][0].split()[0] == "@system-service"


def test_only_the_worker_may_make_namespaces_and_wx_memory():
    api, worker = settings_of(API_UNIT), settings_of(WORKER_UNIT)
    assert api["RestrictNamespaces"] == ["true"]
    assert api["MemoryDenyWriteExecute"] == ["true"]
    # Chromium's sandbox needs exactly these three; V8's JIT needs W+X memory.
    assert set(worker["RestrictNamespaces"][-1].split()) == {"user", "pid", "net"}
    assert "MemoryDenyWriteExecute" not in worker


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_rates_the_units_ok(unit):
    if shutil.which("systemd-analyze") is None:
        pytest.skip(
            "systemd-analyze is missing (Debian package systemd); the unit lines are "
            "checked by the test above"
        )
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out).group(1))
    assert score <= MAX_EXPOSURE[unit], out[-3000:]


def test_chromium_is_unsandboxed_only_as_root():
    assert sandbox_args(euid=0) == ("--no-sandbox",)
    if user_namespaces_allowed():
        assert sandbox_args(euid=1000) == ()


# --- Chromium started by the worker's code as an unprivileged user --------------------------


def unprivileged_user() -> pwd.struct_passwd | None:
    """Who the browser runs as: ourselves when not root, else the system's `nobody`."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def in_child(user: pwd.struct_passwd, restrictions, work) -> dict:
    """Run `work()` in a forked child that is `user` (and restricted), return its result.

    A fork, not a new interpreter: the one the tests run may live where `user` cannot read
    (pyenv under /root). Everything `work` needs is imported before the fork for that reason.
    """
    home = tempfile.mkdtemp(prefix="bulk-sender-sandbox-")
    os.chown(home, user.pw_uid, user.pw_gid)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
            os.environ["HOME"] = home
            os.chdir(home)
            if restrictions is not None:
                restrictions.apply()
            result = work(home)
        except BaseException:
            result = {"error": traceback.format_exc()}
        with os.fdopen(write, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read) as answer:
            raw = answer.read()
        os.waitpid(pid, 0)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result = json.loads(raw)
    assert "error" not in result, result["error"]
    return result


def open_a_page_and_look(home: str) -> dict:
    """Start Chromium the worker's way, run some JavaScript hot enough for V8 to compile it,
    and count the processes that are sandboxed (a seccomp filter and their own pid
    namespace, which only Chromium's namespace sandbox gives them)."""
    user_namespaces_allowed.cache_clear()  # the parent's answer was root's
    args = sandbox_args()
    driver = build_driver(profile_dir=f"{home}/profile")
    try:
        driver.get("data:text/html,<title>started</title><p>hello</p>")
        total = driver.execute_script(HOT_LOOP)
        tree = process_tree(driver.service.process.pid)
        sandboxed = sum(1 for pid, _ in tree if is_sandboxed(pid))
        return {
            "title": driver.title,
            "total": total,
            "args": list(args),
            "processes": len(tree),
            "sandboxed": sandboxed,
        }
    finally:
        driver.quit()


def is_sandboxed(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    return fields.get("Seccomp", "0").strip() == "2" and len(fields.get("NSpid", "").split()) > 1


@pytest.fixture
def user(chromium):
    found = unprivileged_user()
    if found is None:
        # As root a user can always be had on a real system; CI must not skip this silently.
        if os.environ.get("CI") == "true":
            pytest.fail("no `nobody` user to run Chromium as; create one (useradd nobody)")
        pytest.skip("running as root and there is no `nobody` user to run Chromium as")
    if not user_namespaces_allowed():
        # Then no unprivileged Chromium on this host can have a sandbox: the worker falls
        # back to --no-sandbox and says so. CI is meant to prove the sandbox, so it fails.
        message = (
            "this kernel refuses unprivileged user namespaces (Debian: sysctl "
            "kernel.unprivileged_userns_clone=1; user.max_user_namespaces > 0)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_chromium_keeps_its_sandbox_as_an_unprivileged_user(user):
    seen = in_child(user, None, open_a_page_and_look)
    assert seen["title"] == "started" and seen["total"] == HOT_LOOP_TOTAL
    assert "--no-sandbox" not in seen["args"]
    assert seen["sandboxed"] >= 1, seen


def test_chromium_keeps_its_sandbox_under_the_worker_units_filters(user):
    why_not = unit_restrictions.available()
    if why_not:
        pytest.skip(why_not)
    seen = in_child(user, unit_restrictions.Restrictions(WORKER_UNIT), open_a_page_and_look)
    assert seen["title"] == "started" and seen["total"] == HOT_LOOP_TOTAL
    assert "--no-sandbox" not in seen["args"]
    assert seen["sandboxed"] >= 1, seen


def test_the_api_answers_under_its_units_filters(tmp_path):
    why_not = unit_restrictions.available()
    if why_not:
        pytest.skip(why_not)
    restrictions = unit_restrictions.Restrictions(API_UNIT)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "API_KEY": "restricted-key-0123456789",
        "SECRET_KEY": "s" * 32,
        "DATABASE_PATH": str(tmp_path / "queue.db"),
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=restrictions.apply,
        )
    try:

        def healthy() -> bool:
            assert api.poll() is None, log.read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(healthy, 30, "the restricted API to answer /health", interval=0.1)
        answer = requests.get(
            f"http://127.0.0.1:{port}/jobs", headers={"X-API-Key": env["API_KEY"]}, timeout=5
        )
        assert answer.status_code == 200, answer.text
    finally:
        api.terminate()
        api.wait(30)


# --- What a person installing it reads ------------------------------------------------------


def test_env_example_names_every_setting_a_person_may_set():
    text = (ROOT / "deploy" / "env.example").read_text()
    # Set per process by the units or by systemd itself, not by a person in .env.
    per_process = {"WORKER_CHANNEL", "WORKER_ID", "SELECTORS_FILE", "NOTIFY_SOCKET"}
    missing = [
        f.name.upper()
        for f in fields(Settings)
        if f.name.upper() not in per_process
        and not re.search(rf"^(# )?{f.name.upper()}=", text, re.MULTILINE)
    ]
    assert missing == []


def test_readme_installs_env_private_and_the_data_folder_for_the_service_user_only():
    readme = (ROOT / "README.md").read_text()
    assert "install -m 600 -o bulksender -g bulksender deploy/env.example .env" in readme
    assert "install -d -m 700 -o bulksender -g bulksender /var/lib/bulk-sender" in readme
    assert "cp deploy/env.example .env" not in readme
    assert "## Behind a reverse proxy (TLS)" in readme and "SESSION_COOKIE_SECURE=true" in readme
