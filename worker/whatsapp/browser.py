"""Find Chromium + ChromeDriver and start a WebDriver session for WhatsApp Web.

The distribution's pair (/usr/bin/chromium and /usr/bin/chromedriver) is preferred: the two
are built together, and updated together by the system. webdriver-manager is the fallback
only where neither is installed. The driver path is always handed to ``Service``, so Selenium
Manager never tries to download a driver of its own on a server that may have no path to
the internet, or would fetch one that does not match the installed browser.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import signal
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

# Real WhatsApp Web answers the headless user agent ("HeadlessChrome/...") with a
# "WhatsApp works with Google Chrome 60+" page, so we always present a desktop one.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

INSTALL_HINT = "install Chromium and its driver: apt-get install chromium chromium-driver"

# /dev/shm is small in containers, and background services (updates, sync, field trials) only
# add noise and memory.
COMMON_ARGS = (
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    # QUIC through some proxies/firewalls stalls WhatsApp's websocket; plain TCP is reliable.
    "--disable-quic",
)

# Debian's Chromium has no setuid sandbox helper: its sandbox puts renderers in new user, pid
# and network namespaces, which an unprivileged process may create only where the kernel
# allows it (Debian's kernel.unprivileged_userns_clone=1, its default since Debian 11;
# user.max_user_namespaces > 0; no AppArmor restriction as on Ubuntu 24.04; no seccomp filter
# such as systemd's RestrictNamespaces= forbidding them).
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)

log = logging.getLogger(__name__)


class BrowserUnavailable(RuntimeError):
    """No usable Chromium/ChromeDriver pair could be found."""


def _first_existing(*candidates: str) -> str | None:
    for name in candidates:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def find_chrome(chrome_binary: str = "", chromedriver_path: str = "") -> tuple[str | None, str]:
    """Return ``(chrome_binary or None, chromedriver_path)``; explicit values win.

    ``None`` for the binary means "let ChromeDriver find Chrome where it normally looks".
    """
    binary = chrome_binary or _first_existing(
        "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"
    )
    driver = chromedriver_path or _first_existing("/usr/bin/chromedriver", "chromedriver")
    if chrome_binary and not os.path.isfile(chrome_binary):
        raise BrowserUnavailable(f"CHROME_BINARY {chrome_binary!r} does not exist; {INSTALL_HINT}")
    if chromedriver_path and not os.path.isfile(chromedriver_path):
        raise BrowserUnavailable(
            f"CHROMEDRIVER_PATH {chromedriver_path!r} does not exist; {INSTALL_HINT}"
        )
    if driver is None:
        driver = _driver_from_webdriver_manager()
    return binary, driver


def _driver_from_webdriver_manager() -> str:
    # Imported lazily: it is only a fallback, and it needs the network to download a driver.
    try:
        from webdriver_manager.chrome import ChromeDriverManager

        return ChromeDriverManager().install()
    except Exception as exc:  # any failure here means the same thing to the user
        raise BrowserUnavailable(
            f"no ChromeDriver found and webdriver-manager could not fetch one ({exc}); "
            f"{INSTALL_HINT}"
        ) from exc


def sandbox_args(euid: int | None = None) -> tuple[str, ...]:
    """`--no-sandbox` where Chromium's sandbox cannot work, else nothing: the sandbox stays.

    As root Chromium refuses to start sandboxed, and without user namespaces Debian's
    Chromium has no sandbox to start; everywhere else a page that exploits the renderer
    must not reach the WhatsApp profile or the contact lists.
    """
    if (os.geteuid() if euid is None else euid) == 0:
        return ("--no-sandbox",)
    if not user_namespaces_allowed():
        log.warning(
            "user namespaces are not allowed here, so Chromium runs without its sandbox "
            "(README: Run it as a service)"
        )
        return ("--no-sandbox",)
    return ()


@functools.lru_cache(maxsize=1)
def user_namespaces_allowed() -> bool:
    """Whether this process may create the namespaces Chromium's sandbox needs.

    Tried in a forked child rather than read from sysctls, because a seccomp filter
    (systemd's RestrictNamespaces=) or an LSM can forbid them whatever the sysctls say; the
    child inherits exactly what Chromium will, and only calls unshare() before it exits.
    """
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _LIBC.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def build_driver(
    *,
    chrome_binary: str = "",
    chromedriver_path: str = "",
    profile_dir: str | None,
    headless: bool = True,
    user_agent: str = DESKTOP_UA,
    window_size: tuple[int, int] = (1280, 900),
    extra_args: tuple[str, ...] | list[str] = (),
) -> webdriver.Chrome:
    """Start Chromium under ChromeDriver and return the WebDriver (no implicit waits)."""
    binary, driver_path = find_chrome(chrome_binary, chromedriver_path)
    options = webdriver.ChromeOptions()
    if binary:
        options.binary_location = binary
    if profile_dir:
        # A persistent profile keeps the WhatsApp login across restarts (no QR re-scan).
        options.add_argument(f"--user-data-dir={os.path.abspath(profile_dir)}")
    if headless:
        options.add_argument("--headless=new")
    # English labels, because a few locators fall back on aria-labels and placeholders.
    options.add_argument("--lang=en-US")
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.add_argument(f"--user-agent={user_agent}")
    options.add_argument(f"--window-size={window_size[0]},{window_size[1]}")
    for arg in (*COMMON_ARGS, *sandbox_args(), *extra_args):
        options.add_argument(arg)
    # "eager": return from get() once the DOM is ready; the app shell is awaited explicitly.
    options.page_load_strategy = "eager"
    # Errors from here on (profile already in use, driver/browser version mismatch) are
    # Selenium's own and already say what went wrong, so they are not re-wrapped.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def is_hung(exc: BaseException) -> bool:
    """Whether a WebDriver call failed because the browser stopped answering in time."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return isinstance(exc, (ReadTimeoutError, TimeoutError))


def process_tree(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of `pid` and every process below it, read from /proc.

    Taken before a browser is quit, so whatever of it survives the quit can be killed, and
    the start time makes sure a pid the system gave to someone else since is left alone.
    """
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(entry))
            started[int(entry)] = stat[1]
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in started:
            tree.append((current, started[current]))
        todo.extend(children.get(current, []))
    return tree


def kill_tree(tree: list[tuple[int, int]], grace: float = 0.0) -> int:
    """SIGKILL what is still alive of a `process_tree` snapshot after `grace` seconds (for
    processes already on their way out); how many were killed."""
    deadline = time.monotonic() + grace
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = 0
    for pid, _ in _alive(tree):
        try:
            os.kill(pid, signal.SIGKILL)  # works on a stopped process too
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def _alive(tree: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The processes of a snapshot still running: same pid, same start time, not a zombie."""
    alive = []
    for pid, start in tree:
        stat = _stat(pid)
        if stat is not None and stat[1] == start and stat[2] != "Z":
            alive.append((pid, start))
    return alive


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks, state letter) from /proc/<pid>/stat, None when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may hold spaces and brackets: the fields after it follow the last ")".
    fields = raw.rsplit(b")", 1)[-1].split()
    try:
        return int(fields[1]), int(fields[19]), fields[0].decode()
    except (IndexError, ValueError):
        return None
