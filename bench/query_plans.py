"""What SQLite plans for each statement of a careful claim + mark sent (EXPLAIN QUERY PLAN).

The statements are not copied here: the product runs them once on a copy of the benchmark's
file while sqlite3's trace callback notes each one as it ran (values bound in), and each noted
statement is then explained. The claim itself is also explained as claim_next builds it, with
its parameters bound. A plan line `SCAN messages` (or `SCAN` of an alias of messages) would
mean the statement reads the whole table, or a whole index of it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .queue_contestants import _BARE_CLAIM, CHANNEL

_IS_CLAIM = "SET status = 'sending', attempts = attempts + 1"
_ALIAS = re.compile(r"\bmessages\s+(?:AS\s+)?([a-z_]\w*)", re.IGNORECASE)
_NOT_ALIAS = {"where", "set", "join", "on", "inner", "left", "order", "group", "limit", "indexed"}


def claim_plans(template: Path, rules, at: float) -> list[dict]:
    """[{what, sql, plan, scans_messages}]: the bare loop's claim, then every statement of
    one careful claim_next + mark_sent at `at` as it ran (the claim's UPDATE first), and the
    failure-rate check mark_sent skips in this file."""
    from message_queue import Queue, holds

    with tempfile.TemporaryDirectory(prefix="bench-plans-") as tmp:
        for f in template.iterdir():
            shutil.copy(f, Path(tmp) / f.name)
        queue = Queue(Path(tmp) / "queue.db", clock=lambda: at, rules=rules)
        conn = queue.db.connection()
        seen: list[tuple[str, str]] = []
        conn.set_trace_callback(lambda sql: seen.append((_caller(), sql)))
        message = queue.claim_next(CHANNEL, "w-plans")
        if message is None:
            raise RuntimeError("the careful claim claimed nothing")
        queue.mark_sent(message["id"], "w-plans")
        # mark_sent judges a job's failure rate only once its failures could reach the rate,
        # which they never do here, so the check is called as judge_failures would call it.
        holds.too_many_failures(conn, rules, message["job_id"], None)
        conn.set_trace_callback(None)
        zone = conn.execute("SELECT zone FROM messages WHERE id = ?", (message["id"],)).fetchone()
        floor = ("w", message["job_id"], zone[0], CHANNEL)
        out = [_explained(conn, "the bare loop's claim (the floor)", _BARE_CLAIM, floor)]
        done: set[str] = set()
        # The claim itself comes first, as it ran (the UPDATE that takes the row).
        seen.sort(key=lambda item: _IS_CLAIM not in item[1])
        for what, sql in seen:
            if sql in done or not _explainable(sql):
                continue
            done.add(sql)
            if what == "too_many_failures":
                what += " (as mark_sent > _finish > judge_failures calls it)"
            out.append(_explained(conn, what, sql, ()))
        queue.close()
    return out


def _caller() -> str:
    """The product functions that ran the statement being traced: "claim_next > held_jobs"."""
    frame, names = sys._getframe(2), []  # 0: here, 1: the trace callback
    while frame is not None and f"{os.sep}message_queue{os.sep}" in frame.f_code.co_filename:
        if not frame.f_code.co_name.startswith("<"):  # a comprehension's frame
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return " > ".join(reversed(names)) or "?"


def _explainable(sql: str) -> bool:
    """A statement of the product's own, not BEGIN/COMMIT or a trigger's line."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")


def _explained(conn, what: str, sql: str, params) -> dict:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    depth = {0: -1}
    plan = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        plan.append("  " * depth[node] + detail)
    aliases = {"messages"} | {a.lower() for a in _ALIAS.findall(sql) if a.lower() not in _NOT_ALIAS}
    scan = re.compile(rf"^\s*SCAN ({'|'.join(sorted(aliases))})\b", re.IGNORECASE)
    return {
        "what": what,
        "sql": " ".join(sql.split()),
        "plan": plan,
        "scans_messages": any(scan.match(line) for line in plan),
    }
