"""The PostgreSQL sections of docs/BENCHMARKS.md: claims (10), status (10b), the pool (10c)."""

from __future__ import annotations

import re

from .report_sections import _list, yes  # noqa: F401 - yes: the summary's own renderer


def pg_summary_rows(r: dict) -> list[tuple]:
    """Summary rows of the PostgreSQL benchmarks present in `r`."""
    rows: list[tuple] = []
    if "pg" in r:
        rows += _claims_rows(r["pg"])
    if "pg_status" in r:
        s = r["pg_status"]
        paced, stress = s["summary"]["product_paced"], s["summary"]["product"]
        rows.append(
            (
                10,
                f"PostgreSQL, {s['instances']} API instances, {s['clients']} clients every "
                f"50 ms, {s['writers']} workers at 100 msg/s: p99 of /status and /jobs",
                f"{_worst(paced):.1f} ms (floor {_worst(s['summary']['floor_paced']):.1f} ms)",
                "< 10 ms",
                s["goal_met"],
            )
        )
        rows.append(
            (
                10,
                "PostgreSQL stress: saturating clients, workers flat out: p99",
                f"{_worst(stress):.1f} ms (floor {_worst(s['summary']['floor']):.1f} ms, "
                f"{s['p99_vs_floor']:.2f}x)",
                "< 10 ms",
                _worst(stress) < 10,
            )
        )
    if "pool" in r:
        p = r["pool"]
        rates = " / ".join(f"{x['per_min']:.0f}" for x in p["rows"])
        scaling = " / ".join(f"{x['efficiency']:.2f}x" for x in p["rows"])
        rows.append(
            (
                10,
                f"Sender pool, SMS at {p['pacing']:g} s pacing: msg/min with "
                f"{', '.join(str(x['senders']) for x in p['rows'])} senders",
                f"{rates} ({scaling} of linear)",
                f">= {0.9:.1f}x of linear",
                p["goals"]["linear"],
            )
        )
        rows.append(
            (
                10,
                "Sender pool: messages received twice",
                str(sum(x["duplicates"] for x in p["rows"])),
                "0",
                p["goals"]["no_duplicates"],
            )
        )
    return rows


def _claims_rows(p: dict) -> list[tuple]:
    by = {(x["name"], x["procs"]): x for x in p["rows"]}
    rows = []
    for procs, g in sorted(p["goals"].items(), key=lambda kv: int(kv[0])):
        x = by[("product", int(procs))]
        other = by.get(("procrastinate", int(procs)))
        beside = [f"{x['rate']:,.0f}/s"]
        if "vs_schema" in x:
            beside.append(f"{x['vs_schema']:.2f}x the same loop on its own table")
        if other:
            beside.append(f"procrastinate {other['rate']:,.0f}/s")
        rows.append(
            (
                10,
                f"PostgreSQL queue, {procs} process(es): rate vs bare SKIP LOCKED loop",
                f"{x['vs_floor']:.2f}x ({'; '.join(beside)})",
                ">= 0.7x",
                g["vs_floor_ok"],
            )
        )
    doubles = sum(x["duplicates"] for x in p["rows"])
    lost = sum(x["missing"] for x in p["rows"])
    rows.append(
        (
            10,
            "PostgreSQL queue: double deliveries / lost, every contestant and run",
            f"{doubles} / {lost}",
            "0 / 0",
            doubles == 0 and lost == 0,
        )
    )
    plans = p.get("plans")
    if plans:
        product = [sc for sc in plans["scenarios"] if sc["what"].startswith("product")]
        rows.append(
            (
                10,
                f"PostgreSQL claim on {plans['rows']:,} rows: an index seek in every case",
                "; ".join(_claim_read(sc) for sc in product),
                "a seek",
                all(sc["claim"]["seek"] for sc in product),
            )
        )
    return rows


def _why_not(p: dict) -> list[str]:
    """What stands between the product and the goal, from this run's own numbers."""
    by = {(x["name"], x["procs"]): x for x in p["rows"]}
    procs = sorted(n for name, n in by if name == "schema")
    if not procs:
        return []
    schema = _list([by[("schema", n)]["vs_floor"] for n in procs], fmt="{:.2f}x")
    counts = _list(procs, fmt="{}")
    return [
        f"The second floor, two bare statements on the product's own table, reaches {schema} "
        f"of the first at {counts} processes: that is its schema's price alone (the indexes "
        "that /status, the inbox, caps, opt-outs and crash checks read through, and the "
        "trigger that keeps each job's counts), before any of the product's code runs, so no "
        "claim on this schema could reach 0.7x of the minimal table on this machine. Beside "
        "it the product pays for its own steps: a transaction per claim and per mark, each "
        "opened with the write lock and the server's clock, the job list the rules are "
        "applied to, and the job's counts the mark reads for the failure judge and completion."
    ]


def _claim_read(sc: dict) -> str:
    c, what = sc["claim"], sc["what"].removeprefix("product: ")
    if c["seek"]:
        return f"{what}: seek on {c['path'].split(' using ')[-1].split(' on ')[0]}"
    return f"{what}: walks {c['path'].split(' using ')[-1]} past {c['removed']:,} rows"


def _worst(s: dict) -> float:
    return max(s["status"]["p99"], s["jobs"]["p99"])


def _measured(p: dict) -> str:
    """When, and on which code when the section was measured apart from the header's run."""
    code = f" (code `{p['code']}`)" if p.get("code") else ""
    return f"Measured {p['date']}{code}"


def _server(s: dict) -> str:
    return (
        f"PostgreSQL {s['version']} on 127.0.0.1 (fsync={s['fsync']}, synchronous_commit="
        f"{s['synchronous_commit']}, shared_buffers={s['shared_buffers']}, autovacuum="
        f"{s['autovacuum']})"
    )


def pg_section(p: dict) -> list[str]:
    out = [
        "## 10. The queue on PostgreSQL: claims per second",
        "",
        f"{_measured(p)} on {_server(p['server'])}, the machine above. "
        f"{p['n']:,} items per run in a fresh schema, drained by 1, 4 or 16 processes that "
        "wait at a start line; every claimed id is collected to count double deliveries and "
        "lost items. The product is `Queue.claim_next` + `mark_sent` on a `postgresql://` "
        "URL. The floor is a minimal table (id, phone, text, status, who, two times; a "
        "partial index on id of the pending rows) and two autocommit statements: `UPDATE ... "
        "WHERE id = (SELECT id ... ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING` and "
        "the mark. The second floor runs the same two statements on the product's own table, "
        "so the gap between the floors is what the schema costs (its indexes and the trigger "
        "that keeps job_counts) and the gap between it and the product is what the product's "
        f"code costs. Cycles per second are medians of {p['repeats']} runs per cell, the "
        "contestants taking turns in each repeat; each ratio is taken within a repeat, then "
        "the median. procrastinate (bench/requirements.txt) is set up as its "
        "documentation says: `batch_defer` of the items, then in each process a worker with "
        "`wait=False` and an async task; its pool is held to 3 connections a process (its "
        "default of 4 would pass the server's max_connections at 16 processes).",
        "",
        "| contestant | processes | cycles/s | runs | vs bare loop | vs the same loop on the "
        "product's table | double | lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in sorted(p["rows"], key=lambda x: (x["procs"], -x["rate"])):
        schema = f"{x['vs_schema']:.2f}x" if "vs_schema" in x else ""
        out.append(
            f"| {x['label']} | {x['procs']} | {x['rate']:,.0f} | "
            f"{_list(x['rates'], fmt='{:,.0f}')} | {x['vs_floor']:.2f}x | {schema} | "
            f"{x['duplicates']} | {x['missing']} |"
        )
    out += ["", *_why_not(p)]
    if p.get("left_out"):
        out += ["", f"Left out, not installed: {', '.join(p['left_out'])}."]
    if "statements" in p:
        out += ["", *_statements(p["statements"])]
    if "plans" in p:
        out += ["", *_plans(p["plans"])]
    return out


def _statements(st: dict) -> list[str]:
    prod, bare = st["product"], st["bare"]
    out = [
        "What one claim + mark costs, one process, no contention (bench/pg_plans.py, on a "
        "server of its own): the client's wall and CPU time per cycle without logging, then "
        "every statement the client sent, from the server's log of a second pass (each one "
        "is a round trip: nothing is pipelined), with the server's time for it (bind, which "
        "plans it, plus execute). The floor's commits happen when its autocommit statement "
        "ends, outside the logged time; the product's are its `COMMIT` lines.",
        "",
        "| | round trips per cycle | client wall µs | client CPU µs | server µs (logged) |",
        "|---|---|---|---|---|",
        f"| product | {prod['round_trips']:.1f} | {prod['wall_us']:,.0f} | "
        f"{prod['cpu_us']:,.0f} | {prod['server_us']:,.0f} |",
        f"| bare loop | {bare['round_trips']:.1f} | {bare['wall_us']:,.0f} | "
        f"{bare['cpu_us']:,.0f} | {bare['server_us']:,.0f} |",
        "",
        "| product statement | per cycle | server µs |",
        "|---|---|---|",
    ]
    out += [
        f"| `{_short(s['sql'])}` | {s['per_cycle']:.2f} | {s['server_us']:,.0f} |"
        for s in prod["sent"]
    ]
    out += [
        f"| inside: `{_short(s['sql'])}` | {s['per_cycle']:.2f} | {s['server_us']:,.0f} |"
        for s in prod["nested"]
    ]
    return out


def _plans(pl: dict) -> list[str]:
    out = [
        f"The claim's plan on {pl['rows']:,} queued rows (bench/pg_plans.py): each statement "
        "of one `claim_next` + `mark_sent` as it ran, logged by auto_explain with ANALYZE and "
        "BUFFERS (the rows and pages it really touched). On a fresh table, as the tests' "
        f"server (autovacuum off) keeps it; after {pl['sent_before']:,} rows went out; and "
        "after ANALYZE, which autovacuum runs by itself on a server as installed once a "
        "table has changed. A claim seeks when it reaches its row without passing over "
        "others; one that passes over the rows already sent reads more of the table with "
        "every message.",
        "",
        "| case | the claim reads | rows passed over | pages | ms | seek |",
        "|---|---|---|---|---|---|",
    ]
    for sc in pl["scenarios"]:
        c = sc["claim"]
        out.append(
            f"| {sc['what']} | {c['path']} | {c['removed']:,} | {c['pages']} | "
            f"{c['ms']:.3f} | {yes(c['seek'])} |"
        )
    # Every statement's access paths for the last case of each contestant (the product's
    # is after ANALYZE, as on a server as installed); the claim's plan in full for each.
    last = {sc["what"].split(":")[0]: sc["what"] for sc in pl["scenarios"]}
    for sc in pl["scenarios"]:
        claim = next((p for p in sc["plans"] if "SKIP LOCKED" in p["sql"]), None)
        out += ["", f"**{sc['what']}**", ""]
        if claim is not None:
            out += [f"`{_short(claim['sql'], 400)}`", "", "```", *claim["plan"], "```"]
        if sc["what"] not in last.values():
            continue
        out += ["", "| every statement | reads | pages (top node) |", "|---|---|---|"]
        for plan in sc["plans"]:
            out.append(
                f"| `{_short(plan['sql'], 90)}` | {_reads(plan['plan'])} | "
                f"{_buffers(plan['plan'])} |"
            )
    return out


_ACCESS = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"( using \w+)? on \w+"
)


def _reads(plan: list[str]) -> str:
    """The plan's access paths ("Index Scan using messages_ready on messages"), once each."""
    found = list(dict.fromkeys(m[0] for line in plan if (m := _ACCESS.search(line))))
    return "; ".join(found) or "no table"


def _buffers(plan: list[str]) -> str:
    line = next((x for x in plan if x.strip().startswith("Buffers:")), "")
    return line.strip().removeprefix("Buffers: ") or "-"


def _short(sql: str, width: int = 110) -> str:
    sql = sql.replace("|", "\\|")
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def pg_status_section(s: dict) -> list[str]:
    labels = {
        "product_paced": "product, clients every 50 ms, workers 100 msg/s in all",
        "floor_paced": "floor: bare WSGI app, clients every 50 ms, workers 100 msg/s",
        "product": "product, saturating clients, workers flat out",
        "floor": "floor: bare WSGI app, saturating clients, workers flat out",
    }
    out = [
        "## 10b. Reading status with several API instances on PostgreSQL",
        "",
        f"{_measured(s)}. Benchmark 3 on {_server(s['server'])}: {s['instances']} gunicorn "
        "instances as deployed (2 workers x 4 threads each, their own ports, as on "
        f"{s['instances']} machines) on one database holding a {s['rows']:,}-message job; "
        f"{s['clients']} client processes alternate GET /status/<id> and GET /jobs, each "
        "request to the next instance in turn, while "
        f"{s['writers']} worker processes (each its own sender) claim and mark messages; "
        f"{s['seconds']:g} s per run, {s['repeats']} runs, medians. The floor is the bare "
        "WSGI app of benchmark 3 under the same gunicorns, with the same workers writing to "
        "the database. Latency is at the client. On 2 CPUs the instances, the workers, the "
        "clients and the server share the cores, so the stress lines mostly measure waiting "
        "for a CPU.",
        "",
        "| mode | /status p50 | /status p99 | /jobs p50 | /jobs p99 | requests/s "
        "| worker cycles/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, x in s["summary"].items():
        out.append(
            f"| {labels.get(mode, mode)} | {x['status']['p50']:.1f} ms | "
            f"{x['status']['p99']:.1f} ms | {x['jobs']['p50']:.1f} ms | "
            f"{x['jobs']['p99']:.1f} ms | {x['rps']:.0f} | {x['writer_per_s']:.0f} |"
        )
    out += [
        "",
        f"Goal (p99 < 10 ms with clients every 50 ms): {yes(s['goal_met'])}. Stress p99, "
        f"product / floor, per run then median: {s['p99_vs_floor']:.2f}x.",
    ]
    if "in_process" in s:
        st, jobs = s["in_process"]["status"], s["in_process"]["jobs"]
        out += [
            "",
            "One request at a time inside Flask (test client: no HTTP, no client, no writer) "
            f"on PostgreSQL: /status {st['ms']:.2f} ms in {st['round_trips']:.0f} round "
            f"trips ({st['server_us']:.0f} µs of them in the server), /jobs {jobs['ms']:.2f} "
            f"ms in {jobs['round_trips']:.0f} round trips ({jobs['server_us']:.0f} µs in the "
            "server); benchmark 3 gives the same reads on SQLite.",
        ]
    return out


def pool_section(p: dict) -> list[str]:
    out = [
        "## 10c. The sender pool: messages a minute with 1, 2 and 3 senders",
        "",
        f"{_measured(p)}. Each sender is a `run_worker.py` process on the SMS channel "
        "with its own WORKER_ID and its own gateway stand-in (tests/sms_standin, answering "
        "and reporting delivery at once), all on one PostgreSQL database; one SMS job for "
        "all of them. Pacing is fixed (SMS_MIN_DELAY = SMS_MAX_DELAY = "
        f"{p['pacing']:g} s) and caps and long pauses are off, so one sender can send at "
        f"most {p['ceiling_per_sender']:.0f} a minute and N senders N times that. A "
        f"sender's rate is counted at its gateway over {p['seconds']:g} s once each sender "
        f"had sent its first messages; {p['repeats']} runs per count of senders, the counts "
        "taking turns; linear scaling is the pool's rate over N times the single sender's "
        "of the same repeat.",
        "",
        "| senders | msg/min | runs | per sender (median per run) | vs linear | received twice |",
        "|---|---|---|---|---|---|",
    ]
    for x in p["rows"]:
        out.append(
            f"| {x['senders']} | {x['per_min']:.0f} | {_list(x['runs'], fmt='{:.0f}')} | "
            f"{_list(x['per_sender'], fmt='{:.0f}')} | {x['efficiency']:.2f}x | "
            f"{x['duplicates']} |"
        )
    return out
