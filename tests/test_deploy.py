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
import shlex
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
from dotenv import dotenv_values

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
# A template: one worker per sender, `bulk-sender-worker@<WORKER_ID>`.
WORKER_UNIT = ROOT / "deploy" / "bulk-sender-worker@.service"
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
    rating = re.search(r"Overall exposure level for \S+: ([\d.]+)", out)
    assert rating is not None, out[-3000:]
    assert float(rating.group(1)) <= MAX_EXPOSURE[unit], out[-3000:]


def test_chromium_is_unsandboxed_only_as_root():
    assert sandbox_args(euid=0) == ("--no-sandbox",)
    if user_namespaces_allowed():
        assert sandbox_args(euid=1000) == ()


# --- One worker per sender: the template unit -----------------------------------------------

CODE = "/opt/bulk-sender"
PROFILES = "/var/lib/bulk-sender/profiles"
# What the worker would run with: printed by a stand-in for run_worker.py.
SHOW_SETTINGS = (
    "import json; from config import Settings; s = Settings.from_env(); print(json.dumps("
    "{k: getattr(s, k) for k in ('worker_id', 'worker_channel', 'chrome_profile_dir', "
    "'sms_gateway_url', 'sms_gateway_password')}))"
)
SHARED_ENV = (
    "WORKER_ID=everyone\nCHROME_PROFILE_DIR=chrome_profile\n"
    "SMS_GATEWAY_URL=http://10.0.0.9:8080\nSMS_GATEWAY_PASSWORD=shared-secret\n"
)


def instance_lines(name: str) -> dict[str, list[str]]:
    """The template's [Service] lines for instance `name`: %i is the instance name as typed
    (systemd fills it in after unquoting, so its `\\x..` escapes stay as they are)."""
    return {
        key: [value.replace("%i", name) for value in values]
        for key, values in settings_of(WORKER_UNIT).items()
    }


def command(line: str, name: str) -> list[str]:
    """An Exec*= line of the template as the argv systemd runs for instance `name`."""
    return [word.replace("%i", name).replace("$$", "$") for word in shlex.split(line)]


def started_as_systemd_would(name: str, code: Path) -> dict:
    """Instance `name`'s ExecStart with the environment systemd gives it, `code` standing for
    /opt/bulk-sender, and the worker replaced by a script printing the settings it would use.

    systemd's order: Environment= lines, then each EnvironmentFile= in turn, later ones
    winning; then the worker's own reading of .env, under the environment it was given.
    """
    lines = settings_of(WORKER_UNIT)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    for line in lines["Environment"]:
        for word in shlex.split(line):
            key, value = word.split("=", 1)
            env[key] = value
    for path in lines["EnvironmentFile"]:
        here = Path(path.lstrip("-").replace("%i", name).replace(CODE, str(code)))
        if here.exists() or not path.startswith("-"):  # only `-` files may be missing
            env.update({k: v for k, v in dotenv_values(here).items() if v is not None})
    argv = command(lines["ExecStart"][-1], name)
    worker = argv.index(f"{CODE}/.venv/bin/python")
    assert argv[worker:] == [f"{CODE}/.venv/bin/python", "run_worker.py"]
    argv[worker:] = [sys.executable, "-c", SHOW_SETTINGS]
    assert lines["WorkingDirectory"] == [CODE]  # where the worker finds the shared .env
    done = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_instance_name_is_the_worker_id_and_names_its_profile():
    argv = command(settings_of(WORKER_UNIT)["ExecStart"][-1], "shop-1")
    assert argv == [
        "/usr/bin/env",
        "WORKER_ID=shop-1",
        f"CHROME_PROFILE_DIR={PROFILES}/shop-1",
        f"{CODE}/.venv/bin/python",
        "run_worker.py",
    ]


def test_an_instance_file_is_optional_and_read_after_the_shared_env():
    assert settings_of(WORKER_UNIT)["EnvironmentFile"] == [
        f"{CODE}/.env",
        f"-{CODE}/workers/%i.env",
    ]


def test_the_shared_env_cannot_rename_a_worker_or_move_its_profile(tmp_path):
    (tmp_path / ".env").write_text(SHARED_ENV)
    # No file of its own: a WhatsApp account, named and profiled by its instance alone.
    assert started_as_systemd_would("shop-1", tmp_path) == {
        "worker_id": "shop-1",
        "worker_channel": "whatsapp",
        "chrome_profile_dir": f"{PROFILES}/shop-1",
        "sms_gateway_url": "http://10.0.0.9:8080",
        "sms_gateway_password": "shared-secret",
    }
    assert started_as_systemd_would("shop-2", tmp_path)["chrome_profile_dir"] == (
        f"{PROFILES}/shop-2"
    )


def test_an_instance_file_makes_an_sms_worker_with_its_own_phone(tmp_path):
    (tmp_path / ".env").write_text(SHARED_ENV)
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / "phone-2.env").write_text(
        "WORKER_CHANNEL=sms\nSMS_GATEWAY_URL=http://192.168.1.23:8080\n"
        "SMS_GATEWAY_PASSWORD=phone-2-secret\n"
        # Not even its own file renames a worker: the instance name is its WORKER_ID.
        "WORKER_ID=renamed\nCHROME_PROFILE_DIR=elsewhere\n"
    )
    assert started_as_systemd_would("phone-2", tmp_path) == {
        "worker_id": "phone-2",
        "worker_channel": "sms",
        "chrome_profile_dir": f"{PROFILES}/phone-2",
        "sms_gateway_url": "http://192.168.1.23:8080",
        "sms_gateway_password": "phone-2-secret",
    }
    assert started_as_systemd_would("shop-1", tmp_path)["worker_channel"] == "whatsapp"


def start_condition(name: str) -> subprocess.CompletedProcess:
    """Run the template's ExecCondition= for instance `name`."""
    argv = command(settings_of(WORKER_UNIT)["ExecCondition"][-1], name)
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", ["shop-1", "acct_2", "srv1-whatsapp", "Sales.BR", "5511987654321"])
def test_an_instance_named_like_a_worker_id_starts(name):
    assert start_condition(name).returncode == 0


# Names systemd accepts (unit names hold letters, digits, `:_.-` and `\` escapes) that make
# no safe WORKER_ID: a profile folder `..` or `.x`, an option-like `-x`, escapes such as
# `shop\x2d1` (systemd-escape's "shop-1", which would be a second unit for the same sender).
@pytest.mark.parametrize("name", ["..", ".", ".x", "-x", "_x", "a:b", r"shop\x2d1", r"a\x20b"])
def test_an_instance_named_unlike_a_worker_id_is_refused_and_not_retried(name):
    done = start_condition(name)
    # 1 (not 255): systemd skips the unit, not failed, so Restart=always does not loop on it.
    assert done.returncode == 1
    assert "WORKER_ID" in done.stderr


def systemd_binary() -> str | None:
    return next(
        (p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.access(p, os.X_OK)),
        None,
    )


def systemd_loads(name: str) -> dict[str, list]:
    """Instance `name` of the template as systemd itself loads it. `systemd --test` needs no
    PID 1: it loads the units a start would pull in and prints them (as an ordinary user:
    it refuses to run so as root)."""
    binary, user = systemd_binary(), unprivileged_user()
    if binary is None or user is None:
        pytest.skip("no systemd binary (Debian package systemd) or no user to run it as")
    folder = Path(tempfile.mkdtemp(prefix="bulk-sender-units-"))
    try:
        folder.chmod(0o755)
        shutil.copyfile(WORKER_UNIT, folder / WORKER_UNIT.name)
        (folder / WORKER_UNIT.name).chmod(0o644)
        as_user: dict = {}
        if os.geteuid() == 0:
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [binary, "--test", "--system", f"--unit=bulk-sender-worker@{name}.service"],
            # The trailing `:` keeps the system's own units (sysinit.target and the rest).
            env={"SYSTEMD_UNIT_PATH": f"{folder}:", "HOME": str(folder), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **as_user,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    block = done.stdout.split(f"-> Unit bulk-sender-worker@{name}.service:\n", 1)
    assert done.returncode == 0 and len(block) == 2, (done.stdout + done.stderr)[-3000:]
    loaded: dict[str, list] = {}
    key = ""
    for line in block[1].split("\n\t-> Unit ", 1)[0].splitlines():
        line = line.strip()
        if line.startswith("-> Exec"):
            key = line[3:].rstrip(":")
        elif line.startswith("Command Line: "):  # quoted like a shell's, `$` as `\$`
            words = shlex.split(line.removeprefix("Command Line: "))
            loaded.setdefault(key, []).append([w.replace("\\$", "$") for w in words])
        elif ": " in line:
            field, value = line.split(": ", 1)
            loaded.setdefault(field, []).append(value)
    return loaded


@pytest.mark.parametrize("name", ["shop-1", r"shop\x2d1"])
def test_systemd_loads_an_instance_as_these_tests_read_it(name):
    loaded, mine = systemd_loads(name), instance_lines(name)
    assert loaded["Instance"] == [name]
    assert loaded["Environment"] == mine["Environment"]
    assert loaded["EnvironmentFile"] == mine["EnvironmentFile"]
    for key in ("ExecCondition", "ExecStart"):
        assert [[w.replace("$$", "$") for w in argv] for argv in loaded[key]] == [
            command(line, name) for line in settings_of(WORKER_UNIT)[key]
        ]


def test_systemd_finds_nothing_wrong_in_an_instance(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    shutil.copyfile(WORKER_UNIT, tmp_path / WORKER_UNIT.name)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "bulk-sender-worker@shop-1.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    # Mistakes in a unit file (an unknown key, a bad value) are warnings that name the file.
    complaints = [line for line in done.stderr.splitlines() if WORKER_UNIT.name in line]
    assert done.returncode == 0 and complaints == [], done.stderr


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


def test_readme_runs_one_worker_per_sender_from_the_template():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it as a service (systemd)", 1)[1].split("\n## ", 1)[0]
    assert "sudo systemctl enable --now bulk-sender-worker@shop-1 bulk-sender-worker@shop-2" in (
        section
    )
    assert "/opt/bulk-sender/workers/" in section and "WORKER_CHANNEL=sms" in section
    assert "/session/qr.png?worker_id=" in section
    # Every unit the README installs is in deploy/.
    for unit in re.findall(r"deploy/[\w@.-]+\.service", readme):
        assert (ROOT / unit).is_file(), unit
