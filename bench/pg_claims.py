"""10. The queue on PostgreSQL: claim + complete cycles per second, 1, 4 and 16 processes.

Each run fills a fresh schema with N items, starts P processes that each open the queue and
wait at a start line, then lets them drain it together; throughput = N / (last process done -
start). Every id any process claimed is sent back, so double deliveries and lost items are
counted. The contestants (bench/pg_contestants.py) take turns inside each repeat, the order
rotating, so they share the weather. The server is the tests' (tests/pg_server.py: the one on
127.0.0.1:5432 here), as configured, with fsync on.

Beside the rates: the statements one claim_next + mark_sent sends and the plan of the claim
on 100,000 queued rows (bench/pg_plans.py).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from .common import race, rate_rows, say
from .pg_contestants import CONTESTANTS, LABELS

GOAL_VS_FLOOR = 0.7
PROCS = (1, 4, 16)


def _worker(name: str, url: str, who: str, ready, start, results) -> None:
    _, open_queue, drain = CONTESTANTS[name]
    try:
        opened = open_queue(url, who)
        ready.put(who)
        start.wait()
        ids = drain(opened, who)
        results.put((who, time.monotonic(), ids, None))
    except BaseException as exc:  # reported to the parent, which fails the benchmark
        ready.put(who)
        results.put((who, time.monotonic(), [], repr(exc)))


def one_run(name: str, procs: int, n: int) -> dict:
    """Fill a fresh schema with `n` items and drain it with `procs` processes."""
    from tests.pg_server import drop_schema, new_schema

    schema, url = new_schema()
    try:
        CONTESTANTS[name][0](url, n)
        got, seconds = _drain(name, url, procs)
    finally:
        drop_schema(schema)
    errors = [e for _, _, _, e in got if e]
    if errors:
        raise RuntimeError(f"{name} with {procs} processes failed: {errors[0]}")
    counts = Counter(i for _, _, chunk, _ in got for i in chunk)
    return {
        "rate": n / seconds,
        "seconds": seconds,
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "missing": n - len(counts),
        "per_process": sorted(len(c) for _, _, c, _ in got),
    }


def _drain(name: str, url: str, procs: int) -> tuple[list, float]:
    # The fill closed its own connection: the forked drainers share none.
    got, began = race(_worker, (name, url), procs)
    return got, max(end for _, end, _, _ in got) - began


def _installed(module: str) -> bool:
    """A library of bench/requirements.txt is there (`make bench` installs it)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        say(f"pg: {module} is not installed (bench/requirements.txt): left out")
        return False
    return True


def server_settings() -> dict:
    """What the numbers were measured on: the server's version and the settings that matter."""
    import psycopg

    from tests.pg_server import server_url

    names = ("fsync", "synchronous_commit", "shared_buffers", "max_connections", "autovacuum")
    with psycopg.connect(server_url(), autocommit=True) as conn:
        out = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}
        out["version"] = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return out


def run(quick: bool) -> dict:
    """Every contestant at 1, 4 and 16 processes, `repeats` times, in turn; medians."""
    from .pg_costs import statements_per_cycle
    from .pg_plans import claim_plans

    n, repeats = (1_000, 3) if quick else (3_000, 3)
    names = [name for name in CONTESTANTS if name != "procrastinate" or _installed(name)]
    raw: dict[tuple[str, int], list[dict]] = {}
    for rep in range(repeats):
        for procs in PROCS:
            say(f"pg: repeat {rep + 1}/{repeats}, {procs} process(es)")
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                raw.setdefault((name, procs), []).append(one_run(name, procs, n))
    rows = rate_rows(raw, LABELS)
    by = {(r["name"], r["procs"]): r for r in rows}
    goals = {
        procs: {
            "vs_floor_ok": by[("product", procs)]["vs_floor"] >= GOAL_VS_FLOOR,
            "no_duplicates": all(
                by[(name, procs)]["duplicates"] == 0 and by[(name, procs)]["missing"] == 0
                for name in names
            ),
        }
        for procs in PROCS
    }
    say("pg: the statements of one cycle, and the claim's plan on 100,000 rows")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "server": server_settings(),
        "n": n,
        "repeats": repeats,
        "left_out": [name for name in CONTESTANTS if name not in names],
        "rows": rows,
        "goals": goals,
        "statements": statements_per_cycle(),
        "plans": claim_plans(),
    }
