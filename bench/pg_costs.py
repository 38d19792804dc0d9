"""What one claim + complete, and one status read, cost on PostgreSQL, statement by statement.

Measured on a server of our own (tests/pg_server.Throwaway, started with pg_stat_statements
and auto_explain loaded, fsync on as by default), so nothing else's statements are counted.
The statements are not copied here: the product runs them, and the server's log (every
statement with its duration) and pg_stat_statements (the statements run inside them, such as
a trigger's) say what was sent and what it cost. bench/pg_plans.py shows their plans.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

from .pg_contestants import (
    BARE_CLAIM,
    BARE_SENT,
    CHANNEL,
    bare_fill,
    bare_open,
    product_fill,
    product_open,
)


def recording_server():
    """A PostgreSQL server of our own that can count and explain what it runs; `.remove()`."""
    from tests.pg_server import Throwaway

    class Recording(Throwaway):
        """Throwaway's server with the two recording modules loaded, fsync on as by default."""

        def start(self) -> None:
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
                " -c shared_preload_libraries=pg_stat_statements,auto_explain"
                " -c pg_stat_statements.track=all -c autovacuum=off"
            )
            log = f"{self.folder}/log"
            self._run(self.pg_ctl, "-D", self.data, "-o", options, "-l", log, "-w", "start")

    server = Recording()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return server


def make_schema(server, name: str) -> None:
    """An empty schema `name` on `server` (its URL: schema_url)."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")


def schema_url(server, schema: str, options: str = "") -> str:
    """`server`'s URL with every connection's search_path at `schema`, plus `options`."""
    return f"{server.url}?options={quote(f'{options} -csearch_path={schema}'.strip())}"


def cycles_of(name: str, url: str):
    """(one claim + complete cycle as a function, close) of the product or the bare loop."""
    if name == "product":
        queue = product_open(url, "w0")

        def cycle():
            message = queue.claim_next(CHANNEL, "w0")
            queue.mark_sent(message["id"], "w0")

        return cycle, queue.close
    conn = bare_open(url, "w0")

    def bare_cycle():
        row = conn.execute(BARE_CLAIM, ("w0",)).fetchone()
        conn.execute(BARE_SENT, (row[0], "w0"))

    return bare_cycle, conn.close


def statements_per_cycle(cycles: int = 500) -> dict:
    """Per contestant, one process, no contention: the client's wall and CPU µs per cycle
    (no logging), then, from the server's log of a second pass, every statement the client
    sent per cycle (each one a round trip) with the server's µs for it (bind, which plans,
    plus execute), and from pg_stat_statements the statements run inside (a trigger's)."""
    server = recording_server()
    try:
        out = {}
        for name, fill in (("product", product_fill), ("bare", bare_fill)):
            make_schema(server, name)
            fill(schema_url(server, name), 2 * cycles + 100)
            wall, cpu = _timed(name, schema_url(server, name), cycles)
            logged = schema_url(server, name, "-c log_min_duration_statement=0")
            cycle, close = cycles_of(name, logged)
            for _ in range(20):  # prepared statements, the sender's row: not steady state
                cycle()
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
            log = Path(server.folder) / "log"
            start = log.stat().st_size
            for _ in range(cycles):
                cycle()
            close()
            time.sleep(0.2)  # the server's log is written by another process
            sent = _sent(log.read_text(errors="replace")[start:], cycles)
            out[name] = {
                "wall_us": wall,
                "cpu_us": cpu,
                "sent": sent,
                "round_trips": sum(s["per_cycle"] for s in sent),
                "server_us": sum(s["per_cycle"] * s["server_us"] for s in sent),
                "nested": _nested(server.url, cycles),
            }
        return out
    finally:
        server.remove()


def _timed(name: str, url: str, cycles: int) -> tuple[float, float]:
    cycle, close = cycles_of(name, url)
    for _ in range(20):
        cycle()
    cpu, began = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        cycle()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    close()
    return wall / cycles * 1e6, cpu / cycles * 1e6


_LOGGED = re.compile(r"LOG:\s+duration: ([\d.]+) ms\s+(bind|execute|parse|statement)[^:]*: (.*)$")


def _sent(text: str, cycles: int) -> list[dict]:
    """[{sql, per_cycle, server_us}] of a log with every statement's duration: an `execute`
    (or a simple `statement`) is one round trip; its `parse` and `bind` are server time."""
    found: dict[str, dict] = {}
    for line in text.splitlines():
        match = _LOGGED.search(line)
        if not match or is_housekeeping(match[3]):
            continue
        sql = " ".join(match[3].split())
        entry = found.setdefault(sql, {"sql": sql, "calls": 0, "ms": 0.0})
        entry["ms"] += float(match[1])
        entry["calls"] += match[2] in ("execute", "statement")
    return [
        {
            "sql": e["sql"],
            "per_cycle": e["calls"] / cycles,
            "server_us": e["ms"] / e["calls"] * 1000,
        }
        for e in found.values()
        if e["calls"]
    ]


def _nested(url: str, cycles: int) -> list[dict]:
    """Statements run inside the client's (a trigger's), from pg_stat_statements."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements"
            " WHERE NOT toplevel ORDER BY calls DESC, total_exec_time DESC"
        ).fetchall()
    return [
        {"sql": " ".join(q.split()), "per_cycle": calls / cycles, "server_us": ms / calls * 1000}
        for q, calls, ms in rows
    ]


def statements_per_request(rows: int, n: int = 200) -> dict:
    """Per read of the status benchmark (/status/<id>, /jobs), inside Flask (test client, no
    HTTP), one at a time on a `rows`-message job: wall ms per request, round trips and the
    server's µs, from the server's log as in statements_per_cycle."""
    from app import create_app
    from config import Settings
    from message_queue import Queue

    from .common import API_KEY

    server = recording_server()
    try:
        make_schema(server, "api")
        product_fill(schema_url(server, "api"), rows)
        out = {}
        for logged in (False, True):
            url = schema_url(server, "api", "-c log_min_duration_statement=0" if logged else "")
            queue = Queue(url)
            job_id = queue.list_jobs()[0]["id"]
            queue.close()
            settings = Settings(api_key=API_KEY, database_url=url, upload_dir=server.folder)
            client = create_app(settings).test_client()
            for name, path in (("status", f"/status/{job_id}"), ("jobs", "/jobs")):
                for _ in range(20):
                    client.get(path, headers={"X-API-Key": API_KEY})
                log = Path(server.folder) / "log"
                start, began = log.stat().st_size, time.perf_counter()
                for _ in range(n):
                    client.get(path, headers={"X-API-Key": API_KEY})
                ms = (time.perf_counter() - began) / n * 1000
                if not logged:
                    out[name] = {"ms": ms}
                    continue
                time.sleep(0.2)  # the server's log is written by another process
                sent = _sent(log.read_text(errors="replace")[start:], n)
                out[name]["round_trips"] = sum(s["per_cycle"] for s in sent)
                out[name]["server_us"] = sum(s["per_cycle"] * s["server_us"] for s in sent)
        return out
    finally:
        server.remove()


def is_housekeeping(sql: str) -> bool:
    """Statements of the pool or the migration check, not of the claim or the mark."""
    return sql.startswith(("SELECT max(version)", "SELECT extract(epoch"))
