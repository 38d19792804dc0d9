"""10b. Reading status on PostgreSQL: several API instances on one database while workers claim.

Benchmark 3 (bench/status_latency.py) on PostgreSQL: INSTANCES gunicorn servers as deployed
(2 workers x 4 threads each, on their own 127.0.0.1 ports, as on several machines) on one
database holding a 100,000-message job; 8 client processes, each with its own
requests.Session, alternate GET /status/<id> and GET /jobs, each request going to the next
instance in turn (as a load balancer would spread them); WRITERS worker processes claim and
mark messages meanwhile, each as its own sender. The floor is the bare WSGI app
(bench/floor_wsgi.py) under the same gunicorns, with the same writers on the database.

Two loads, as in benchmark 3: the goal's (each client asks every 50 ms; the writers claim and
mark 100 messages a second in all) and stress (clients ask again at once, writers flat out).
The job is filled once and every run goes on claiming from it.
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from .common import API_KEY, ROOT, free_port, median, percentile, say, settings_env, wait_for
from .pg_contestants import CHANNEL, product_fill, product_open
from .procs import PYTHON, ApiServer
from .status_latency import CLIENTS, PACE, WORKER_RATE, client_process

GOAL_P99_MS = 10.0
INSTANCES = 3
WRITERS = 2
ROWS = 100_000
# name: (served app, seconds between a client's requests (None: at once),
#        writers' messages a second in all (None: flat out))
MODES = {
    "product_paced": ("app:create_app()", PACE, WORKER_RATE),
    "floor_paced": ("bench.floor_wsgi:app", PACE, WORKER_RATE),
    "product": ("app:create_app()", None, None),
    "floor": ("bench.floor_wsgi:app", None, None),
}


class PgApiServer(ApiServer):
    """ApiServer with DATABASE_URL: gunicorn as deployed, on the queue in PostgreSQL."""

    def __init__(self, workdir: Path, url: str, app: str, workers: int = 2, threads: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gunicorn.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the server's whole life
        env = settings_env(
            api_key=API_KEY,
            database_url=url,
            upload_dir=str(workdir / "uploads"),
            log_level="WARNING",
        )
        command = [PYTHON, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{self.port}", "--pythonpath", str(ROOT)]
        self.proc = subprocess.Popen(
            [*command, "--log-level", "warning", app],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.workers = workers

    def ready(self) -> PgApiServer:
        """Wait until it answers and all its workers are up (instances start side by side)."""
        try:
            wait_for(self._answers, 60, "gunicorn to answer /health")
            wait_for(lambda: len(self.worker_pids()) == self.workers, 60, "gunicorn's workers")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log:\n{self.log_tail()}") from None
        return self


def writer(url: str, who: str, rate: float | None, ready, stop, done) -> None:
    """Claim and mark messages as sender `who`, `rate` a second (None: flat out)."""
    queue = product_open(url, who)
    ready.set()
    cycles = 0
    started = time.monotonic()
    while not stop.is_set():
        if rate is not None:  # like a worker: one message, then wait for the next one's turn
            stop.wait(max(0.0, started + cycles / rate - time.monotonic()))
        message = queue.claim_next(CHANNEL, who)
        if message is None:
            break
        queue.mark_sent(message["id"], who)
        cycles += 1
        if cycles % 20 == 0:  # as a worker does between sends: the inbox's list follows
            queue.follow_sent(who)
    queue.close()
    done.put(cycles)


def one_run(seconds: float, mode: str, url: str, job_id: str) -> dict:
    """INSTANCES gunicorns on `url`, the writers, 8 clients for `seconds`; p50/p99 per read."""
    app, pace, rate = MODES[mode]
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="bench-pg-status-") as tmp, ExitStack() as stack:
        apis = []
        for i in range(INSTANCES):
            Path(tmp, f"api{i}").mkdir()
            apis.append(stack.enter_context(PgApiServer(Path(tmp, f"api{i}"), url, app)))
        for api in apis:
            api.ready()
        stop, done = ctx.Event(), ctx.Queue()
        writers = []
        for i in range(WRITERS):
            ready = ctx.Event()
            share = None if rate is None else rate / WRITERS
            writers.append(
                ctx.Process(target=writer, args=(url, f"writer-{i}", share, ready, stop, done))
            )
            writers[-1].start()
            ready.wait(60)
        until = time.monotonic() + seconds
        results = ctx.Queue()
        clients = [
            ctx.Process(target=client_process, args=(_paths(apis, job_id, c), until, pace, results))
            for c in range(CLIENTS)
        ]
        for p in clients:
            p.start()
        samples = [s for _ in clients for s in results.get(timeout=seconds + 60)]
        for p in clients:
            p.join(30)
        stop.set()
        cycles = sum(done.get(timeout=60) for _ in writers)
        for w in writers:
            w.join(30)
    result = {"requests": len(samples), "writer_per_s": cycles / seconds}
    result["rps"] = len(samples) / seconds
    for name in ("status", "jobs"):
        values = [ms for n, ms in samples if n == name]
        result[name] = {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "max": max(values),
            "n": len(values),
        }
    return result


def _paths(apis: list, job_id: str, client: int) -> list[tuple[str, str]]:
    """/status and /jobs in turn, each request to the next instance; clients start apart."""
    out = []
    for k in range(2 * len(apis)):
        api = apis[(client + k) % len(apis)]
        out.append(
            ("status", f"{api.url}/status/{job_id}") if k % 2 == 0 else ("jobs", f"{api.url}/jobs")
        )
    return out


def run(quick: bool) -> dict:
    """Every mode in turn inside each repeat; medians of p50 and p99 per endpoint."""
    from message_queue import Queue
    from tests.pg_server import drop_schema, new_schema

    from .pg_claims import server_settings
    from .pg_costs import statements_per_request

    seconds = 3.0 if quick else 8.0
    repeats = 3
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    schema, url = new_schema()
    try:
        say(f"pg_status: filling {ROWS:,} rows")
        product_fill(url, ROWS)
        queue = Queue(url)
        job_id = queue.list_jobs()[0]["id"]
        queue.close()
        for rep in range(repeats):
            say(f"pg_status: repeat {rep + 1}/{repeats}")
            for mode in MODES:
                runs[mode].append(one_run(seconds, mode, url, job_id))
    finally:
        drop_schema(schema)
    say("pg_status: one request at a time inside Flask, and its statements")
    inside = statements_per_request(ROWS)
    summary = {}
    for mode, results in runs.items():
        summary[mode] = {
            name: {q: median([r[name][q] for r in results]) for q in ("p50", "p99", "max")}
            for name in ("status", "jobs")
        }
        summary[mode]["rps"] = median([r["rps"] for r in results])
        summary[mode]["writer_per_s"] = median([r["writer_per_s"] for r in results])
    p99_ratio = median(
        [
            max(p["status"]["p99"], p["jobs"]["p99"]) / max(f["status"]["p99"], f["jobs"]["p99"])
            for p, f in zip(runs["product"], runs["floor"], strict=True)
        ]
    )
    worst = max(summary["product_paced"]["status"]["p99"], summary["product_paced"]["jobs"]["p99"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "server": server_settings(),
        "instances": INSTANCES,
        "writers": WRITERS,
        "clients": CLIENTS,
        "rows": ROWS,
        "seconds": seconds,
        "repeats": repeats,
        "runs": runs,
        "summary": summary,
        "p99_vs_floor": p99_ratio,
        "in_process": inside,
        "goal_met": worst < GOAL_P99_MS,
    }
