"""Section 2b of docs/BENCHMARKS.md (bench/careful_claims.py): its summary rows and details."""

from __future__ import annotations

GOAL = ">= 0.7x"


def careful_summary_rows(c: dict) -> list[tuple]:
    """The summary table's rows for careful claims."""
    by = {x["name"]: x for x in c["rows"]}
    careful, g = by["careful"], c["goals"]
    scans = [p["what"] for p in c["plans"] if p["scans_messages"]]
    return [
        (
            2,
            f"Careful claims on {c['rows_total']:,} rows, half outside the window: rate vs "
            "bare loop",
            f"{careful['vs_floor']:.2f}x ({careful['rate']:,.0f}/s; without rules "
            f"{by['plain']['vs_floor']:.2f}x)",
            GOAL,
            g["vs_floor_ok"],
        ),
        (
            2,
            "Careful claims: statements of a claim + mark sent that scan messages",
            ", ".join(scans) if scans else f"none of {len(c['plans'])}",
            "none",
            g["no_scan"],
        ),
        (
            2,
            "Careful claims: rows claimed that may not go now",
            f"{careful['outside']}",
            "0",
            g["nothing_outside"],
        ),
    ]


def careful_section(c: dict) -> list[str]:
    """The details: what was measured, the table, then every statement's query plan."""
    out = [
        "## 2b. Careful claims: caps, a send window and schedules",
        "",
        f"One file: a {c['rows_total']:,}-row job whose numbers alternate between São Paulo "
        "(window open) and Kolkata (window closed), an older job of 100 rows at its own "
        "hourly cap of 1, and a job of 1,000 rows scheduled for the next day. The clock stands "
        f"still at {c['at']} (12:00 in São Paulo, 20:30 in Kolkata), SEND_WINDOW "
        f"{c['window']}, sender caps 200 a day and 60 an hour, auto-pause at 0.5 over 20 sends "
        f"(bench/careful_claims.py). Each run drains {c['claims']:,} rows (only the open half "
        "may go) from a fresh copy of the file in one process, claim then mark sent; "
        f"{c['repeats']} runs per loop, the three loops taking turns. Caps count a sender's "
        "sends of the last hour by claim time and the clock does not move, so the sender "
        f"changes every {c['rotate']} claims (in all three loops): each claim counts the "
        "sender's recent sends, as in production, and no sender reaches its cap.",
        "",
        "The floor is the bare loop of section 2 (`BEGIN IMMEDIATE` + `UPDATE ... RETURNING`, "
        "then the mark) told the big job and its open zone, as a claim that already knew "
        "the answer to every rule would be. Time per cycle is wall time; CPU is this "
        "process's CPU time, less disturbed by the neighbours.",
        "",
        "| loop | cycles/s | runs | vs bare loop | claims/s (claim alone) | claim µs "
        "| mark µs | CPU µs a cycle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in c["rows"]:
        out.append(
            f"| {x['label']} | {x['rate']:,.0f} | "
            + ", ".join(f"{r:,.0f}" for r in x["rates"])
            + f" | {x['vs_floor']:.2f}x | {x['claim_rate']:,.0f} ({x['claim_vs_floor']:.2f}x) "
            f"| {x['claim_us']:.0f} | {x['mark_us']:.0f} | {x['cpu_us']:.0f} |"
        )
    careful = next(x for x in c["rows"] if x["name"] == "careful")
    out += [
        "",
        f"Rows the careful product claimed that may not go now (Kolkata's, the capped "
        f"job's, the scheduled job's): {careful['outside']}.",
        "",
        "Query plans (EXPLAIN QUERY PLAN) of every statement one careful claim_next + "
        "mark_sent ran, values bound as they ran, and of the failure-rate check mark_sent "
        "makes once a job's failures could reach the rate. `SCAN` of messages would read "
        "the whole table; every access to it is a `SEARCH` of an index or of the rowid.",
        "",
    ]
    for p in c["plans"]:
        flag = " — **scans messages**" if p["scans_messages"] else ""
        out += [
            f"- {p['what']}{flag}:",
            "",
            "  ```sql",
            f"  {p['sql']}",
            "  ```",
            "",
            "  ```text",
            *[f"  {line}" for line in (p["plan"] or ["(no table read: a plain insert)"])],
            "  ```",
            "",
        ]
    return out[:-1]
