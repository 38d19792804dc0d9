"""What PostgreSQL plans for each statement of a claim + mark sent, as they ran (the
PostgreSQL half of bench/query_plans.py).

On a server of our own (bench/pg_costs.py), for connections that ask through their URL,
auto_explain logs the plan of every statement with the rows and pages it really touched,
nested ones (a trigger's) included. A claim seeks when it reaches its row without passing
over others: a `Seq Scan` on messages, or an index walked past the rows already sent, reads
more of the table with every message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg

from .pg_contestants import bare_fill, product_fill
from .pg_costs import cycles_of, is_housekeeping, make_schema, recording_server, schema_url

PLAN_ROWS = 100_000
_PLANS = (
    "-c auto_explain.log_min_duration=0 -c auto_explain.log_analyze=on"
    " -c auto_explain.log_buffers=on -c auto_explain.log_timing=off"
    " -c auto_explain.log_nested_statements=on"
)
_SCAN = re.compile(r"Seq Scan on (messages|bare_queue)\b")
# Rows already sent before a plan is shown, as claim_next + mark_sent would have left them
# (status, sender, times), in one statement: draining them one by one would take minutes.
SENT_BEFORE = 20_000
_SENT_ALREADY = {
    "product": (
        "UPDATE messages SET status = 'sent', claimed_by = 'earlier', attempts = 1,"
        " claimed_at = extract(epoch FROM now()), sent_at = extract(epoch FROM now())"
        " WHERE id IN (SELECT id FROM messages WHERE status = 'pending' ORDER BY id LIMIT %s)"
    ),
    "bare": (
        "UPDATE bare_queue SET status = 'sent', claimed_by = 'earlier', claimed_at = now(),"
        " sent_at = now() WHERE id IN"
        " (SELECT id FROM bare_queue WHERE status = 'pending' ORDER BY id LIMIT %s)"
    ),
}
# (what, contestant, before the claim: nothing, send SENT_BEFORE rows, or ANALYZE as
# autovacuum would)
SCENARIOS = (
    ("product: a fresh table, the first claim", "product", None),
    (f"product: a fresh table, {SENT_BEFORE:,} rows sent before", "product", "sent"),
    (f"product: after ANALYZE, {SENT_BEFORE:,} rows sent before", "product", "analyze"),
    (f"bare loop: after ANALYZE, {SENT_BEFORE:,} rows sent before", "bare", "both"),
)


def claim_plans(rows: int = PLAN_ROWS) -> dict:
    """The plans of one claim_next + mark_sent on `rows` queued rows, as they ran: on a fresh
    table, once SENT_BEFORE rows went out, and after ANALYZE (which autovacuum runs on a
    table that changed); and of the bare loop's claim + mark, for comparison."""
    server = recording_server()
    try:
        log = Path(server.folder) / "log"
        for schema, fill in (("product", product_fill), ("bare", bare_fill)):
            make_schema(server, schema)
            fill(schema_url(server, schema), rows)  # without plans: 100,000 inserts are not shown
        out: dict = {"rows": rows, "sent_before": SENT_BEFORE, "scenarios": []}
        for what, name, before in SCENARIOS:
            with psycopg.connect(schema_url(server, name), autocommit=True) as conn:
                if before in ("sent", "both"):
                    conn.execute(_SENT_ALREADY[name], (SENT_BEFORE,))
                if before in ("analyze", "both"):
                    conn.execute("ANALYZE")
            cycle, close = cycles_of(name, schema_url(server, name, _PLANS))
            start = log.stat().st_size  # after the open: its migration check is not the claim
            cycle()
            close()
            time.sleep(0.2)  # the server's log is written by another process
            plans = _plans(log.read_text(errors="replace")[start:])
            out["scenarios"].append({"what": what, "plans": plans, "claim": _claim(plans)})
        return out
    finally:
        server.remove()


_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")
_WALK = 1_000  # rows passed over by one claim beyond which it reads the table, not seeks


def _claim(plans: list[dict]) -> dict:
    """How the claim found its row: the access path, rows passed over, pages, time."""
    claim = next((p for p in plans if "SKIP LOCKED" in p["sql"]), None)
    if claim is None:
        return {}
    lines = claim["plan"]
    path = next((m[0] for line in lines if (m := _PATH.search(line))), "")
    removed = sum(int(m[1]) for line in lines if (m := _REMOVED.search(line)))
    pages = next((x.strip() for x in lines if x.strip().startswith("Buffers:")), "")
    return {
        "path": path,
        "removed": removed,
        "pages": pages.removeprefix("Buffers: "),
        "ms": claim["ms"],
        "seek": not _SCAN.search("\n".join(lines)) and removed < _WALK,
    }


# The claim's first access path (its subquery's, under LockRows).
_PATH = re.compile(r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)( using \w+)? on \w+")


_HEAD = re.compile(r"LOG:\s+duration: ([\d.]+) ms\s+plan:\s*$")


def _plans(text: str) -> list[dict]:
    """The auto_explain entries of a server log: [{sql, ms, plan: [lines]}] in order."""
    out: list[dict] = []
    current: dict | None = None
    for line in text.splitlines():
        head = _HEAD.search(line)
        if head:
            current = {"ms": float(head[1]), "sql": "", "plan": []}
            out.append(current)
        elif current is not None and line.startswith("\t"):
            body = line[1:]
            if body.startswith("Query Text:"):
                current["sql"] = body.split(":", 1)[1].strip()
            elif current["plan"] or not current["sql"] or body.strip():
                current["plan"].append(body.rstrip())
        else:
            current = None
    return [p for p in out if not is_housekeeping(p["sql"])]
