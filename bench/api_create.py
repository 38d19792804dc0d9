"""1. Creating a big job: POST /send with a 100,000-row CSV, against its floor.

Product: real HTTP to the API under gunicorn (deploy/whatsapp-api.service's 2 workers x 4
threads) on a fresh database; wall time at the client, peak RSS = VmHWM of the gunicorn worker
that served the request. Floor, in a process of its own: csv + phonenumbers parse/validate/E.164
of the same numbers + the same template filled + one sqlite3 `executemany` into the same schema.
Runs alternate product / floor so both see the same machine weather.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from .api_stages import stages
from .common import API_KEY, ROOT, TEMPLATE, contacts_csv, median, say, vm_hwm_mb, vm_rss_mb
from .procs import ApiServer

GOAL_RATIO, GOAL_MB = 1.3, 250


def post_job(url: str, data: bytes) -> requests.Response:
    return requests.post(
        url + "/send",
        headers={"X-API-Key": API_KEY},
        timeout=600,
        files={"file": ("contacts.csv", data, "text/csv")},
        data={"message": TEMPLATE, "name": "bench"},
    )


def product_run(data: bytes, rows: int) -> dict:
    """One POST /send to a freshly started API: wall seconds, CPU seconds of the worker that
    served it, and its peak RSS."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        ApiServer(Path(tmp), str(Path(tmp) / "queue.db")) as api,
    ):
        idle = {pid: vm_rss_mb(pid) for pid in api.worker_pids()}
        cpu = {pid: _cpu(pid) for pid in api.worker_pids()}
        start = time.perf_counter()
        response = post_job(api.url, data)
        seconds = time.perf_counter() - start
        if response.status_code != 202 or response.json()["total"] != rows:
            raise RuntimeError(f"POST /send answered {response.status_code}: {response.text[:300]}")
        # The worker that did the work is the one that used the CPU (a worker gunicorn
        # replaced meanwhile is skipped: it cannot have served the request).
        alive = set(api.worker_pids())
        used = {pid: _cpu(pid) - before for pid, before in cpu.items() if pid in alive}
        pid = max(used, key=used.get, default=None)
        if pid is None or used[pid] < 0.3 * seconds:
            raise RuntimeError(
                "the gunicorn worker that served POST /send is gone:\n" + api.log_tail()
            )
        peak = vm_hwm_mb(pid)
    return {
        "seconds": seconds,
        "cpu_seconds": used[pid],
        "peak_mb": peak,
        "idle_mb": idle.get(pid, 0.0),
    }


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def floor_run(csv_path: Path) -> dict:
    """The floor in a fresh process, so its peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.api_create",
                "floor",
                str(csv_path),
                str(Path(tmp) / "floor.db"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out)


def _floor_main(csv_path: str, db_path: str) -> None:
    import csv
    import resource
    import sqlite3

    import phonenumbers

    from message_queue.db import SCHEMA

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(SCHEMA)
    data = Path(csv_path).read_bytes()
    cpu_start = _own_cpu()
    start = time.perf_counter()
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    next(reader)
    now, rows = time.time(), []
    for line, (raw, name) in enumerate(reader, start=2):
        number = phonenumbers.parse(raw, None)
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            rows.append(
                ("j_floor", line, e164, name, TEMPLATE.replace("{name}", name), "whatsapp", now)
            )
    parsed = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO jobs (id, channel, status, template, total, created_at,"
        " updated_at) VALUES ('j_floor', 'whatsapp', 'pending', ?, ?, ?, ?)",
        (TEMPLATE, len(rows), now, now),
    )
    conn.executemany(
        "INSERT INTO messages (job_id, row, phone, name, text, channel, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    end = time.perf_counter()
    cpu = _own_cpu() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": end - start,
                "cpu_seconds": cpu,
                "parse_seconds": parsed - start,
                "insert_seconds": end - parsed,
                "rows": len(rows),
                "peak_mb": peak,
            }
        )
    )


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def profile_request(data: bytes, top: int = 14) -> dict:
    """Where POST /send spends its time: pyinstrument on the app in-process (test client)."""
    from pyinstrument import Profiler

    from app import create_app
    from config import Settings

    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        settings = Settings(
            api_key=API_KEY,
            database_path=str(Path(tmp) / "q.db"),
            upload_dir=str(Path(tmp) / "uploads"),
        )
        client = create_app(settings).test_client()
        profiler = Profiler(interval=0.001)
        profiler.start()
        response = client.post(
            "/send",
            headers={"X-API-Key": API_KEY},
            data={"message": TEMPLATE, "name": "prof", "file": (io.BytesIO(data), "contacts.csv")},
        )
        session = profiler.stop()
    if response.status_code != 202:
        raise RuntimeError(f"profiled POST /send answered {response.status_code}")
    return summarise(session.root_frame(), top)


def summarise(root, top: int) -> dict:
    """Self time per function, and total time inside the product's own functions."""
    self_time, inside = {}, {}

    def walk(frame, stack):
        key = f"{frame.function} ({_short(frame.file_path)}:{frame.line_no})"
        self_time[key] = self_time.get(key, 0.0) + frame.total_self_time
        if _is_product(frame.file_path) and key not in stack:
            inside[key] = inside.get(key, 0.0) + frame.time
        for child in frame.children:
            if not child.is_synthetic:
                walk(child, stack | {key})

    walk(root, frozenset())
    total = root.time
    view = max((v for k, v in inside.items() if k.startswith("send (api/send.py")), default=total)
    return {
        "total_s": total,
        "view_s": view,
        "self": sorted(self_time.items(), key=lambda kv: -kv[1])[:top],
        "inside": sorted(inside.items(), key=lambda kv: -kv[1])[:top],
    }


def _short(path) -> str:
    path = str(path or "")
    return (
        path[len(str(ROOT)) + 1 :]
        if path.startswith(str(ROOT))
        else path.rsplit("site-packages/", 1)[-1]
    )


def _is_product(path) -> bool:
    path = str(path or "")
    return path.startswith(str(ROOT)) and "/.venv/" not in path and "/bench/" not in path


def run(quick: bool) -> dict:
    """Alternate product and floor runs; medians, the ratio, and a profile when off the goal."""
    rows = 100_000
    repeats = 3
    data = contacts_csv(rows)
    product, floor = [], []
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp:
        csv_path = Path(tmp) / "contacts.csv"
        csv_path.write_bytes(data)
        for i in range(repeats):
            say(f"create job: run {i + 1}/{repeats}")
            product.append(product_run(data, rows))
            floor.append(floor_run(csv_path))
    result = {
        "rows": rows,
        "csv_mb": len(data) / 1e6,
        "repeats": repeats,
        "product": product,
        "floor": floor,
        "product_s": median([r["seconds"] for r in product]),
        "floor_s": median([r["seconds"] for r in floor]),
        "product_peak_mb": median([r["peak_mb"] for r in product]),
        "product_idle_mb": median([r["idle_mb"] for r in product]),
        "floor_peak_mb": median([r["peak_mb"] for r in floor]),
        "floor_parse_s": median([r["parse_seconds"] for r in floor]),
        "floor_insert_s": median([r["insert_seconds"] for r in floor]),
        "ratios": [p["seconds"] / f["seconds"] for p, f in zip(product, floor, strict=True)],
        # CPU seconds are less disturbed by other tenants of a shared machine than wall time.
        "cpu_ratios": [
            p["cpu_seconds"] / f["cpu_seconds"] for p, f in zip(product, floor, strict=True)
        ],
        "product_cpu_s": median([r["cpu_seconds"] for r in product]),
        "floor_cpu_s": median([r["cpu_seconds"] for r in floor]),
    }
    result["ratio"] = median(result["ratios"])
    result["cpu_ratio"] = median(result["cpu_ratios"])
    result["goal_met"] = result["ratio"] <= GOAL_RATIO and result["product_peak_mb"] < GOAL_MB
    if not quick:  # another ~25 s: the full run always says where the time goes
        say("create job: timing each stage in-process, then profiling POST /send")
        result["stages"] = stages(data)
        result["profile"] = profile_request(data)
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["floor"]:
        _floor_main(sys.argv[2], sys.argv[3])
