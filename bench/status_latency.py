"""3. Reading status under load: GET /status/<id> and GET /jobs on a 100,000-message job.

The API runs under gunicorn as deployed (2 workers x 4 threads); 8 client threads, each with
its own requests.Session, alternate the two reads for a fixed time while a writer process
claims and marks messages as fast as it can (a worst case: a real worker writes about once a
second). Beside it, in turn: the floor (a bare WSGI app under the same gunicorn, same load),
the product with the writer off, and the product with a single client. Latency is at the
client, so it includes the client's own Python (8 threads share one GIL) and loopback HTTP.
"""
from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests

from .common import API_KEY, median, percentile, say
from .procs import ApiServer
from .queue_contestants import CHANNEL, product_fill, product_open

GOAL_P99_MS = 10.0
CLIENTS = 8
WARMUP = 5  # first requests of each session: connection set-up, not steady state


def _writer(db_folder: str, ready, stop, done) -> None:
    queue = product_open(Path(db_folder), "bench-writer")
    ready.set()
    cycles = 0
    while not stop.is_set():
        message = queue.claim_next(CHANNEL, "bench-writer")
        if message is None:
            break
        queue.mark_sent(message["id"], "bench-writer")
        cycles += 1
    done.put(cycles)


def _client(url: str, job_id: str, until: float, out: list) -> None:
    session = requests.Session()
    session.headers["X-API-Key"] = API_KEY
    paths = [("status", f"{url}/status/{job_id}"), ("jobs", f"{url}/jobs")]
    i = 0
    while time.monotonic() < until:
        name, target = paths[i % 2]
        start = time.perf_counter()
        response = session.get(target, timeout=10)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {target} answered {response.status_code}")
        if i >= WARMUP:
            out.append((name, elapsed))
        i += 1


MODES = {  # name: (served app, clients, writer running)
    "product": ("app:create_app()", CLIENTS, True),
    "floor": ("bench.floor_wsgi:app", CLIENTS, True),
    "product_no_writer": ("app:create_app()", CLIENTS, False),
    "product_1_client": ("app:create_app()", 1, True),
}


def one_run(seconds: float, mode: str, filled: Path) -> dict:
    """A copy of the 100,000-message job, the API on it, the clients for `seconds`; p50/p99."""
    app, clients, with_writer = MODES[mode]
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        shutil.copyfile(filled / "queue.db", Path(tmp) / "queue.db")
        job_id = _job_id(Path(tmp))
        with ApiServer(Path(tmp), str(Path(tmp) / "queue.db"), app=app) as api:
            ready, stop, done = ctx.Event(), ctx.Event(), ctx.Queue()
            writer = None
            if with_writer:
                writer = ctx.Process(target=_writer, args=(tmp, ready, stop, done))
                writer.start()
                ready.wait(60)
            samples: list[tuple[str, float]] = []
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=_client, args=(api.url, job_id, until, samples))
                       for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cycles = 0
            if writer is not None:
                stop.set()
                cycles = done.get(timeout=60)
                writer.join(30)
    result = {"requests": len(samples), "writer_per_s": cycles / seconds,
              "rps": len(samples) / seconds}
    for name in ("status", "jobs"):
        values = [ms for n, ms in samples if n == name]
        result[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99),
                        "max": max(values), "n": len(values)}
    return result


def _job_id(folder: Path) -> str:
    from message_queue import Queue

    queue = Queue(folder / "queue.db")
    job_id = queue.list_jobs()[0]["id"]
    queue.close()
    return job_id


def in_process_ms(folder: Path, n: int = 500) -> dict:
    """Mean time of one request inside Flask (test client: no HTTP, no client), no writer."""
    from app import create_app
    from config import Settings

    settings = Settings(api_key=API_KEY, database_path=str(folder / "queue.db"),
                        upload_dir=str(folder / "uploads"))
    client = create_app(settings).test_client()
    headers = {"X-API-Key": API_KEY}
    out = {}
    for name, path in (("status", f"/status/{_job_id(folder)}"), ("jobs", "/jobs")):
        for _ in range(20):
            client.get(path, headers=headers)
        start = time.perf_counter()
        for _ in range(n):
            client.get(path, headers=headers)
        out[name] = (time.perf_counter() - start) / n * 1000
    return out


def run(quick: bool) -> dict:
    """Every mode in turn inside each repeat; medians of p50 and p99 per endpoint."""
    seconds = 3.0 if quick else 8.0
    repeats = 3
    modes = ("product", "floor") if quick else tuple(MODES)
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-status-fill-") as filled:
        product_fill(Path(filled), 100_000)
        for rep in range(repeats):
            say(f"status: repeat {rep + 1}/{repeats}")
            for mode in modes:
                runs[mode].append(one_run(seconds, mode, Path(filled)))
        inside = in_process_ms(Path(filled))
    summary = {}
    for mode, results in runs.items():
        summary[mode] = {
            name: {q: median([r[name][q] for r in results]) for q in ("p50", "p99", "max")}
            for name in ("status", "jobs")}
        summary[mode]["rps"] = median([r["rps"] for r in results])
        summary[mode]["writer_per_s"] = median([r["writer_per_s"] for r in results])
        summary[mode]["clients"] = MODES[mode][1]
    p99_ratio = median([max(p["status"]["p99"], p["jobs"]["p99"]) /
                        max(f["status"]["p99"], f["jobs"]["p99"])
                        for p, f in zip(runs["product"], runs["floor"])])
    worst = max(summary["product"]["status"]["p99"], summary["product"]["jobs"]["p99"])
    return {"seconds": seconds, "repeats": repeats, "runs": runs, "summary": summary,
            "in_process_ms": inside,
            "p99_vs_floor": p99_ratio, "goal_met": worst < GOAL_P99_MS}
