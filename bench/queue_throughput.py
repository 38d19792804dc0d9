"""2. The queue: claim + mark-sent cycles per second, 1 and 4 worker processes on one file.

Each run fills a fresh file with N items, starts P processes that each open the store and
wait at a start line, then lets them drain it together. Throughput = N / (last process done -
start). Every id any process claimed is sent back, so double deliveries and lost items are
counted, not assumed. Contestants take turns inside each repeat, so they share the weather.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from .common import race, rate_rows, say
from .queue_contestants import CONTESTANTS, LABELS

GOAL_VS_FLOOR = 0.7


def _worker(name: str, folder: str, who: str, ready, start, results) -> None:
    _, open_store, drain = CONTESTANTS[name]
    try:
        store = open_store(Path(folder), who)
        ready.put(who)
        start.wait()
        ids = drain(store, who)
        results.put((who, time.monotonic(), ids, None))
    except BaseException as exc:  # reported to the parent, which fails the benchmark
        ready.put(who)
        results.put((who, time.monotonic(), [], repr(exc)))


def one_run(name: str, procs: int, n: int) -> dict:
    """Fill a fresh store with `n` items and drain it with `procs` processes."""
    fill = CONTESTANTS[name][0]
    with tempfile.TemporaryDirectory(prefix=f"bench-q-{name}-") as tmp:
        fill(Path(tmp), n)
        got, began = race(_worker, (name, tmp), procs)
    errors = [e for _, _, _, e in got if e]
    if errors:
        raise RuntimeError(f"{name} with {procs} processes failed: {errors[0]}")
    ids = [i for _, _, chunk, _ in got for i in chunk]
    seconds = max(end for _, end, _, _ in got) - began
    counts = Counter(ids)
    return {
        "rate": n / seconds,
        "seconds": seconds,
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "missing": n - len(counts),
        "per_process": [len(c) for _, _, c, _ in got],
    }


def per_call_us(n: int = 3_000) -> dict:
    """CPU microseconds per call, one process, no contention: product calls vs bare statements.

    With 4 processes each write transaction holds SQLite's write lock for its whole length,
    and the others wait in the busy handler's sleeps: the longer the transaction, the more
    they collide. These numbers say how long each one is.
    """
    out = {}
    for name in ("product", "bare"):
        fill, open_store, _ = CONTESTANTS[name]
        with tempfile.TemporaryDirectory(prefix="bench-q-calls-") as tmp:
            fill(Path(tmp), n)
            store = open_store(Path(tmp), "w0")
            claim, mark = _steps(name, store)
            spent = {"claim": 0.0, "mark": 0.0}
            for _ in range(n):
                start = time.process_time()
                item = claim()
                middle = time.process_time()
                mark(item)
                spent["claim"] += middle - start
                spent["mark"] += time.process_time() - middle
        out[name] = {k: v / n * 1e6 for k, v in spent.items()}
    return out


def _steps(name: str, store):
    """(claim, mark) of one contestant as two separate calls."""
    if name == "product":
        return (
            lambda: store.claim_next("whatsapp", "w0"),
            lambda m: store.mark_sent(m["id"], "w0"),
        )
    from .queue_contestants import bare_claim, bare_mark

    return (lambda: bare_claim(store, "w0"), lambda i: bare_mark(store, i, "w0"))


def run(quick: bool) -> dict:
    """Every contestant at 1 and 4 processes, `repeats` times, interleaved; medians."""
    n = 2_000 if quick else 8_000
    repeats = 3
    raw: dict[tuple[str, int], list[dict]] = {}
    for rep in range(repeats):
        for procs in (1, 4):
            say(f"queue: repeat {rep + 1}/{repeats}, {procs} process(es)")
            for name in CONTESTANTS:
                raw.setdefault((name, procs), []).append(one_run(name, procs, n))
    rows = rate_rows(raw, LABELS)
    by = {(r["name"], r["procs"]): r for r in rows}
    goals = {}
    for procs in (1, 4):
        p = by[("product", procs)]
        goals[procs] = {
            "vs_floor_ok": p["vs_floor"] >= GOAL_VS_FLOOR,
            "no_duplicates": p["duplicates"] == 0 and p["missing"] == 0,
            "ahead_of_libraries": all(
                p["rate"] > by[(lib, procs)]["rate"] for lib in ("persist-queue", "huey")
            ),
        }
    return {"n": n, "repeats": repeats, "rows": rows, "goals": goals, "per_call_us": per_call_us()}
