"""The inbox at size: 10,000 threads over 200,000 messages, read through the Flask test client.

Twenty campaigns of 10,000 rows each go to the same 10,000 numbers; the first campaign is sent
(so every number has its conversation row, taken in by `follow_sent`) and 2,000 of the numbers
reply. Then each read is asked `N` times in one process with no other load: the page's list
(all, unread, a search by name, by number and by a word they wrote), one thread's newest page,
and /status of the campaign that got the replies, for comparison.

`python -m bench.conversations` prints p50 and p99 in milliseconds per read.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from .common import API_KEY, percentile, say

THREADS = 10_000
CAMPAIGNS = 20  # x THREADS = 200,000 messages
REPLIES = 2_000
N = 300
WORKER = "bench-worker"


def fill(folder: Path) -> str:
    """The database described above; the id of the campaign that was sent."""
    from message_queue import NewJob, Queue, Recipient

    queue = Queue(folder / "queue.db")
    jobs = []
    for c in range(CAMPAIGNS):
        job, _ = queue.create_job(
            NewJob(channel="whatsapp", template="Hi {name}", name=f"Campaign {c}"),
            (
                Recipient(
                    f"+55119{60_000_000 + i}", f"Hi Ana {i}, offer {c}", "whatsapp", f"Ana {i}"
                )
                for i in range(THREADS)
            ),
        )
        jobs.append(job["id"])
    for other in jobs[1:]:  # only the first one sends; the rest wait, as queued campaigns do
        queue.pause_job(other)
    queue.heartbeat(WORKER, "whatsapp", "logged_in")
    while (message := queue.claim_next("whatsapp", WORKER)) is not None:
        queue.mark_sent(message["id"], WORKER)
    while queue.follow_sent(WORKER, batch=5_000):  # the worker's chore takes the sends in
        pass
    now = time.time()
    for i in range(0, THREADS, THREADS // REPLIES):
        queue.record_inbound(f"+55119{60_000_000 + i}", "whatsapp", WORKER, f"reply {i} pizza", now)
    queue.close()
    return jobs[0]


def measure(folder: Path, job_id: str) -> dict:
    """p50 and p99 (ms) of each read, asked N times after a short warm-up."""
    from app import create_app
    from config import Settings

    settings = Settings(
        api_key=API_KEY, database_path=str(folder / "queue.db"), upload_dir=str(folder / "up")
    )
    client = create_app(settings).test_client()
    headers = {"X-API-Key": API_KEY}
    reads = {
        "list": "/conversations",
        "list_unread": "/conversations?filter=unread",
        "search_name": "/conversations?q=Ana%204242",
        "search_number": "/conversations?q=11%209600",
        "search_reply_text": "/conversations?q=pizza",
        "thread": "/conversations/%2B5511960004242/messages",
        "status": f"/status/{job_id}",
    }
    out = {}
    for name, path in reads.items():
        for _ in range(20):
            assert client.get(path, headers=headers).status_code == 200, path
        times = []
        for _ in range(N):
            start = time.perf_counter()
            client.get(path, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
        out[name] = {"p50": percentile(times, 50), "p99": percentile(times, 99)}
    return out


def under_load(folder: Path, job_id: str, seconds: float) -> dict:
    """p50/p99 (ms) of the list, one thread and /status under the status benchmark's load.

    gunicorn as deployed; 8 client processes, each asking every 50 ms in turn for the list,
    one thread and /status; a writer process sends 100 messages a second of a waiting
    campaign into the same database (taking its sends into the inbox list every 20 sends, as a
    worker does between sends).
    """
    import multiprocessing as mp

    from message_queue import Queue

    from .procs import ApiServer
    from .status_latency import CLIENTS, PACE, WORKER_RATE, client_process, writer

    queue = Queue(folder / "queue.db")
    waiting = [j["id"] for j in queue.list_jobs() if j["status"] == "paused"][0]
    queue.resume_job(waiting)
    queue.close()
    ctx = mp.get_context("fork")
    with ApiServer(folder, str(folder / "queue.db")) as api:
        ready, stop, done = ctx.Event(), ctx.Event(), ctx.Queue()
        sender = ctx.Process(target=writer, args=(str(folder), WORKER_RATE, ready, stop, done))
        sender.start()
        ready.wait(60)
        paths = [
            ("list", f"{api.url}/conversations"),
            ("thread", f"{api.url}/conversations/%2B5511960004242/messages"),
            ("status", f"{api.url}/status/{job_id}"),
        ]
        until, results = time.monotonic() + seconds, ctx.Queue()
        clients = [
            ctx.Process(target=client_process, args=(paths, until, PACE, results))
            for _ in range(CLIENTS)
        ]
        for c in clients:
            c.start()
        samples = [s for _ in clients for s in results.get(timeout=seconds + 60)]
        for c in clients:
            c.join(30)
        stop.set()
        sent = done.get(timeout=60)
        sender.join(30)
    out = {"writer_per_s": sent / seconds, "rps": len(samples) / seconds}
    for name, _ in paths:
        values = [ms for n, ms in samples if n == name]
        out[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99)}
    return out


def run(quick: bool = False) -> dict:
    """Fill once, measure alone, then under load."""
    with tempfile.TemporaryDirectory(prefix="bench-conversations-") as tmp:
        started = time.monotonic()
        job_id = fill(Path(tmp))
        say(f"conversations: filled in {time.monotonic() - started:.0f} s")
        result = measure(Path(tmp), job_id)
        say("conversations: under the status benchmark's load")
        result["under_load"] = under_load(Path(tmp), job_id, 3.0 if quick else 8.0)
        result["meta"] = {"threads": THREADS, "messages": THREADS * CAMPAIGNS, "requests": N}
        return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
