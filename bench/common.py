"""What every benchmark shares: statistics, the machine, test data, the settings' environment."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

from config import Settings

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key-0123456789abcdef"
TEMPLATE = "Hi {name}, your order is ready for pickup. Reply STOP to opt out."


def median(values) -> float:
    """The median of a non-empty sequence."""
    return statistics.median(values)


def percentile(values, p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def phone(i: int) -> str:
    """The i-th of a series of distinct, valid Brazilian mobile numbers, as people write them."""
    digits = f"{96_000_000 + i:08d}"
    return f"+55 11 9{digits[:4]}-{digits[4:]}"


def contacts_csv(n: int) -> bytes:
    """A contact list of `n` rows (phone,name) as a spreadsheet would export it."""
    lines = ["phone,name"] + [f"{phone(i)},Customer {i}" for i in range(n)]
    return ("\r\n".join(lines) + "\r\n").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(**values) -> dict:
    """The environment of a product process: every setting explicit, none inherited.

    The process also runs in a temporary folder, so no developer's `.env` can change the run.
    """
    names = {f.name.upper() for f in fields(Settings)}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    for f in fields(Settings):
        value = values.pop(f.name, f.default)
        if value is MISSING:
            continue
        env[f.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    if values:
        raise TypeError(f"unknown settings: {sorted(values)}")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def machine() -> dict:
    """What the numbers were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import sqlite3  # the floor's and the product's SQLite are the same library

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "load": os.getloadavg(),
    }


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process so far, in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def vm_rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a process now, in MB."""
    return _status_kb(pid, "VmRSS") / 1024


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll until `predicate()` is truthy and return it; RuntimeError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def say(text: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rate_rows(raw: dict, labels: dict) -> list[dict]:
    """One row per (contestant, processes) from `raw`'s runs: the median rate, every run's,
    the median of the ratios to the bare floor taken within each repeat (same minute, same
    load), and the double deliveries and losses summed."""
    rows = []
    for (name, procs), runs in raw.items():
        row = {
            "name": name,
            "label": labels[name],
            "procs": procs,
            "rate": median([r["rate"] for r in runs]),
            "rates": [r["rate"] for r in runs],
            "duplicates": sum(r["duplicates"] for r in runs),
            "missing": sum(r["missing"] for r in runs),
        }
        # Against the bare floor and, where there is one, the second floor: the same bare
        # statements on the product's own table ("schema").
        for key, floor in (("vs_floor", "bare"), ("vs_schema", "schema")):
            if (floor, procs) in raw:
                pairs = zip(runs, raw[(floor, procs)], strict=True)
                row[key] = median([r["rate"] / f["rate"] for r, f in pairs])
        rows.append(row)
    return rows


def race(target, args: tuple, procs: int) -> tuple[list, float]:
    """Run `procs` forked processes of `target(*args, worker_id, ready, start, results)`,
    held at a start line until all are ready; (what each put in `results`, the start time,
    time.monotonic()). Each process puts one item in `ready`, waits for `start`, then puts its
    result, whose second field is its own end time."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # the parent holds no connection, so nothing is shared
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [
        ctx.Process(target=target, args=(*args, f"w{i}", ready, start, results))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=60)
    began = time.monotonic()
    start.set()
    got = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(30)
    return got, began
