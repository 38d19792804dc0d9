"""3. Reading status under load: GET /status/<id> and GET /jobs on a 100,000-message job.

The API runs under gunicorn as deployed (2 workers x 4 threads); 8 client processes, each with
its own requests.Session, alternate the two reads for a fixed time while a writer process
claims and marks messages. Two loads:

- the goal's: each client asks every 50 ms, 160 requests a second in all, as many as 240 open
  /app pages (a page asks every 1.5 s), while the writer claims and marks 100 messages a
  second, 12 times what the worker sends at most (about 470 a minute with every delay at 0).
- stress: each client asks again the moment an answer arrives and the writer goes as fast as
  it can. Then the 2 cores are always busy and latency is mostly waiting for a CPU (Little's
  law: 8 requests always in flight), so these runs are compared with the floor, a bare WSGI
  app under the same gunicorn and load.

Latency is at the client, so it includes the client's own Python and loopback HTTP; each client
is a process of its own, so no client waits for another's GIL.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
from pathlib import Path

import requests

from .common import API_KEY, median, percentile, say
from .procs import ApiServer
from .queue_contestants import CHANNEL, product_fill, product_open

GOAL_P99_MS = 10.0
CLIENTS = 8
PACE = 0.05  # seconds between one paced client's requests
WORKER_RATE = 100.0  # messages a second the writer claims and marks beside paced clients
WARMUP = 5  # first requests of each session: connection set-up, not steady state


def writer(db_folder: str, rate: float | None, ready, stop, done) -> None:
    """Claim and mark messages of the database in `db_folder`, `rate` a second (None: flat out)."""
    queue = product_open(Path(db_folder), "bench-writer")
    ready.set()
    cycles = 0
    started = time.monotonic()
    while not stop.is_set():
        if rate is not None:  # like a worker: one message, then wait for the next one's turn
            stop.wait(max(0.0, started + cycles / rate - time.monotonic()))
        message = queue.claim_next(CHANNEL, "bench-writer")
        if message is None:
            break
        queue.mark_sent(message["id"], "bench-writer")
        cycles += 1
        if cycles % 20 == 0:  # as a worker does between sends: the inbox's list follows
            queue.follow_sent("bench-writer")
    done.put(cycles)


def client_process(paths: list, until: float, pace: float | None, results) -> None:
    """One client: asks each (name, url) of `paths` in turn until `until`; puts its samples."""
    out: list[tuple[str, float]] = []
    try:
        _client(paths, until, out, pace)
    finally:
        results.put(out)


def _client(paths: list, until: float, out: list, pace: float | None) -> None:
    session = requests.Session()
    session.headers["X-API-Key"] = API_KEY
    i = 0
    next_at = time.monotonic()
    while time.monotonic() < until:
        if pace is not None:  # on a fixed schedule; a late answer is not made up for in a burst
            next_at = max(next_at + pace, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))
        name, target = paths[i % len(paths)]
        start = time.perf_counter()
        response = session.get(target, timeout=10)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {target} answered {response.status_code}")
        if i >= WARMUP:
            out.append((name, elapsed))
        i += 1


FLAT_OUT = 0.0
# name: (served app, clients, seconds between a client's requests (None: at once),
#        writer's messages a second (None: no writer, FLAT_OUT: as fast as it can))
MODES = {
    "product_paced": ("app:create_app()", CLIENTS, PACE, WORKER_RATE),
    "floor_paced": ("bench.floor_wsgi:app", CLIENTS, PACE, WORKER_RATE),
    "product": ("app:create_app()", CLIENTS, None, FLAT_OUT),
    "floor": ("bench.floor_wsgi:app", CLIENTS, None, FLAT_OUT),
    "product_no_writer": ("app:create_app()", CLIENTS, None, None),
    "product_1_client": ("app:create_app()", 1, None, FLAT_OUT),
}


def one_run(seconds: float, mode: str, filled: Path) -> dict:
    """A copy of the 100,000-message job, the API on it, the clients for `seconds`; p50/p99."""
    app, clients, pace, rate = MODES[mode]
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        shutil.copyfile(filled / "queue.db", Path(tmp) / "queue.db")
        job_id = _job_id(Path(tmp))
        with ApiServer(Path(tmp), str(Path(tmp) / "queue.db"), app=app) as api:
            ready, stop, done = ctx.Event(), ctx.Event(), ctx.Queue()
            writer_proc = None
            if rate is not None:
                writer_proc = ctx.Process(
                    target=writer, args=(tmp, rate or None, ready, stop, done)
                )
                writer_proc.start()
                ready.wait(60)
            # A process per client: threads of one process would queue for its GIL, which
            # hands over every 5 ms, and that wait would be counted as the server's latency.
            until = time.monotonic() + seconds
            results = ctx.Queue()
            paths = [("status", f"{api.url}/status/{job_id}"), ("jobs", f"{api.url}/jobs")]
            procs = [
                ctx.Process(target=client_process, args=(paths, until, pace, results))
                for _ in range(clients)
            ]
            for p in procs:
                p.start()
            samples = [s for _ in procs for s in results.get(timeout=seconds + 60)]
            for p in procs:
                p.join(30)
            cycles = 0
            if writer_proc is not None:
                stop.set()
                cycles = done.get(timeout=60)
                writer_proc.join(30)
    result = {
        "requests": len(samples),
        "writer_per_s": cycles / seconds,
        "rps": len(samples) / seconds,
    }
    for name in ("status", "jobs"):
        values = [ms for n, ms in samples if n == name]
        result[name] = {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "max": max(values),
            "n": len(values),
        }
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

    settings = Settings(
        api_key=API_KEY, database_path=str(folder / "queue.db"), upload_dir=str(folder / "uploads")
    )
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
    modes = ("product_paced", "floor_paced", "product", "floor") if quick else tuple(MODES)
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
            for name in ("status", "jobs")
        }
        summary[mode]["rps"] = median([r["rps"] for r in results])
        summary[mode]["writer_per_s"] = median([r["writer_per_s"] for r in results])
        summary[mode]["clients"] = MODES[mode][1]
    p99_ratio = median(
        [
            max(p["status"]["p99"], p["jobs"]["p99"]) / max(f["status"]["p99"], f["jobs"]["p99"])
            for p, f in zip(runs["product"], runs["floor"], strict=True)
        ]
    )
    worst = max(summary["product_paced"]["status"]["p99"], summary["product_paced"]["jobs"]["p99"])
    return {
        "seconds": seconds,
        "repeats": repeats,
        "runs": runs,
        "summary": summary,
        "in_process_ms": inside,
        "p99_vs_floor": p99_ratio,
        "goal_met": worst < GOAL_P99_MS,
    }
