"""Turn one run's results into docs/BENCHMARKS.md: a summary against the goals, then details."""

from __future__ import annotations

from .careful_report import careful_section, careful_summary_rows
from .pg_report import pg_section, pg_status_section, pg_summary_rows, pool_section
from .report_sections import (
    api_section,
    browser_section,
    conversations_section,
    inbox_section,
    inputs_section,
    pacing_section,
    queue_section,
    service_section,
    status_section,
    yes,
)


def render(r: dict) -> str:
    """The whole Markdown document for the results dict `bench.run` collected."""
    m = r["meta"]
    mc = m["machine"]
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/run.py); do not edit by hand. Every number is the median "
        "of several runs, and each comparison was measured side by side in the same run, "
        "alternating product and floor so both saw the same machine load. On this shared "
        "machine absolute times swing with the neighbours' load; the ratios, measured side by "
        "side, are the numbers to compare between runs.",
        "",
        f"- **Date:** {m['date']} ({'quick' if m['quick'] else 'full'} run, "
        f"{m.get('minutes', float('nan')):.1f} minutes)",
        f"- **Command:** `{m['command']}`",
        f"- **Code:** `{m['revision']}`{m['dirty']}" + _changed(m),
        f"- **Machine:** {mc['nproc']} CPUs ({mc['cpu']}), {mc['memory_gb']} GB memory; "
        f"Python {mc['python']}, SQLite {mc['sqlite']}, {m['chromium']}; kernel {mc['kernel']}",
        f"- **Load average** (1 min) at start / end: {mc['load'][0]:.1f} / "
        f"{m.get('load_end', float('nan')):.1f} "
        "— a shared machine: other jobs ran beside the bench.",
        "",
        "## Summary",
        "",
        "| # | What | Measured | Goal | Met |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {yes(row[4])} |" for row in summary_rows(r)
    ]
    for name, error in r.get("failed", {}).items():
        out.append(f"| - | {name} | failed: `{error[:200]}` | - | **no** |")
    for key, section in (
        ("api", api_section),
        ("inputs", inputs_section),
        ("queue", queue_section),
        ("careful", careful_section),
        ("status", status_section),
        ("browser", browser_section),
        ("service", service_section),
        ("pacing", pacing_section),
        ("conversations", conversations_section),
        ("inbox", inbox_section),
        ("pg", pg_section),
        ("pg_status", pg_status_section),
        ("pool", pool_section),
    ):
        if key in r:
            out += ["", *section(r[key])]
    return "\n".join(out) + "\n"


def _changed(m: dict) -> str:
    """Others edit the product while it is measured: say so when it changed during the run."""
    end = (m.get("revision_end"), m.get("dirty_end"))
    if end[0] is None or end == (m["revision"], m["dirty"]):
        return ""
    return (
        f"; **the product changed during the run**: at the end it was `{end[0]}`{end[1]}, "
        "so later sections may have measured newer code"
    )


def summary_rows(r: dict) -> list[tuple]:
    rows = []
    if "api" in r:
        a = r["api"]
        rows.append(
            (
                1,
                "POST /send, 100,000-row CSV: time vs floor",
                f"{a['ratio']:.2f}x ({a['product_s']:.1f} s vs {a['floor_s']:.1f} s)",
                "<= 1.3x",
                a["ratio"] <= 1.3,
            )
        )
        rows.append(
            (
                1,
                "POST /send: peak RSS of the API worker",
                f"{a['product_peak_mb']:.0f} MB",
                "< 250 MB",
                a["product_peak_mb"] < 250,
            )
        )
    if "inputs" in r:
        i = r["inputs"]
        done = [x for x in i["rows"] if x["cpu_s"] is not None]
        worst_cpu = max((x["cpu_s"] for x in done), default=float("nan"))
        worst_mb = max((x["rss_growth_mb"] for x in done), default=float("nan"))
        within = sum(x["ok"] for x in i["rows"])
        rows.append(
            (
                1,
                "Crafted requests under 1 MB (/preview and /send): worst cost",
                f"{worst_cpu:.2f} s CPU, {worst_mb:.0f} MB; {within}/{len(i['rows'])} within",
                f"<= {i['cpu_goal_s']:g} s, <= {i['memory_goal_mb']:g} MB",
                i["goal_met"],
            )
        )
    if "queue" in r:
        q = r["queue"]
        by = {(x["name"], x["procs"]): x for x in q["rows"]}
        for procs, g in sorted(q["goals"].items(), key=lambda kv: int(kv[0])):
            p = by[("product", int(procs))]
            rows.append(
                (
                    2,
                    f"Queue, {procs} process(es): rate vs bare loop",
                    f"{p['vs_floor']:.2f}x ({p['rate']:,.0f}/s)",
                    ">= 0.7x",
                    g["vs_floor_ok"],
                )
            )
            rows.append(
                (
                    2,
                    f"Queue, {procs} process(es): double deliveries / lost",
                    f"{p['duplicates']} / {p['missing']}",
                    "0 / 0",
                    g["no_duplicates"],
                )
            )
            libs = ", ".join(
                f"{n} {by[(n, int(procs))]['rate']:,.0f}/s" for n in ("persist-queue", "huey")
            )
            rows.append(
                (
                    2,
                    f"Queue, {procs} process(es): ahead of the libraries",
                    libs,
                    "product faster",
                    g["ahead_of_libraries"],
                )
            )
    if "careful" in r:
        rows += careful_summary_rows(r["careful"])
    if "status" in r:
        summary = r["status"]["summary"]
        if "product_paced" in summary:
            rows.append(
                (
                    3,
                    "GET /status and /jobs, 8 clients every 50 ms, a writer at 100 msg/s: p99",
                    f"{_worst(summary['product_paced']):.1f} ms (floor "
                    f"{_worst(summary['floor_paced']):.1f} ms)"
                    if "floor_paced" in summary
                    else f"{_worst(summary['product_paced']):.1f} ms",
                    "< 10 ms",
                    r["status"]["goal_met"],
                )
            )
        rows.append(
            (
                3,
                "Stress: 8 saturating clients, writer flat out (2 busy cores): p99",
                f"{_worst(summary['product']):.1f} ms (floor {_worst(summary['floor']):.1f} "
                f"ms, {r['status']['p99_vs_floor']:.2f}x)",
                "< 10 ms",
                _worst(summary["product"]) < 10,
            )
        )
    if "browser" in r:
        b = r["browser"]
        floor = max(b["summary"][k]["rate"] for k in ("floor", "floor_slow") if k in b["summary"])
        rows.append(
            (
                4,
                "Browser path: floor rate / product rate",
                f"{b['slowdown_vs_floor']:.2f}x ({b['summary']['product']['rate']:.0f} vs "
                f"{floor:.0f} msg/min)",
                "<= 1.2x",
                b["goal_met"],
            )
        )
    if "service" in r:
        v = r["service"]
        own = sum(
            pct for role, pct in v["idle"]["roles"].items() if not role.startswith("chromium")
        )
        rows.append(
            (
                4,
                "Worker idle CPU (worker + ChromeDriver + Chromium)",
                f"{v['idle']['percent']:.1f} % (worker and ChromeDriver alone: {own:.2f} %;"
                f" a bare Chromium on the same page: {v['idle_floor']['percent']:.1f} %)",
                "< 1 %",
                v["goals"]["idle_cpu"],
            )
        )
        rows.append(
            (
                4,
                "POST /send -> first message at WhatsApp (median)",
                f"{v['first_message_median_s']:.2f} s",
                "< 2 s",
                v["goals"]["first_message"],
            )
        )
        mem = v["memory"][1:]
        uss, rss = [s["uss_mb"] for s in mem], [s["rss_mb"] for s in mem]
        rows.append(
            (
                4,
                f"Worker + Chromium memory over {v['n']:,} messages",
                f"USS {min(uss):.0f}-{max(uss):.0f} MB (first {uss[0]:.0f}, last "
                f"{uss[-1]:.0f}); RSS summed {min(rss):.0f}-{max(rss):.0f} MB",
                "flat",
                v["goals"]["memory_flat"],
            )
        )
    if "pacing" in r:
        p = r["pacing"]
        rows.append(
            (
                5,
                "Pacing follows MIN/MAX_DELAY and long pauses",
                f"short {p['short']['min'] * 1000:.0f}-{p['short']['max'] * 1000:.0f} ms "
                f"(median {p['short']['median'] * 1000:.0f}), long "
                f"{p['long']['min'] * 1000:.0f}-{p['long']['max'] * 1000:.0f} ms; "
                f"{sum(p['checks'].values())}/{len(p['checks'])} checks pass",
                "40-80 / 200-400 ms, every 10th",
                p["goal_met"],
            )
        )
    if "conversations" in r:
        c = r["conversations"]
        worst = max(c["list"]["p99"], c["thread"]["p99"])
        rows.append(
            (
                8,
                "Inbox on 10,000 threads: p99 of the list and of one thread",
                f"{c['list']['p99']:.1f} / {c['thread']['p99']:.1f} ms",
                "<= 10 ms",
                worst <= 10,
            )
        )
        if "under_load" in c:
            u = c["under_load"]
            rows.append(
                (
                    8,
                    "Inbox under the status load: p99 of the list / one thread / /status",
                    f"{u['list']['p99']:.1f} / {u['thread']['p99']:.1f} / "
                    f"{u['status']['p99']:.1f} ms",
                    "<= 10 ms",
                    max(u["list"]["p99"], u["thread"]["p99"]) <= 10,
                )
            )
    if "inbox" in r:
        b = r["inbox"]
        rows.append(
            (
                9,
                f"Reading {b['chats']} unread WhatsApp chats between sends: longest poll",
                f"{b['longest_poll']:.2f} s ({b['per_chat_ms']:.0f} ms a chat)",
                "< 4 s (MIN_DELAY)",
                b["longest_poll"] < 4,
            )
        )
    rows += pg_summary_rows(r)
    return rows


def _worst(s: dict) -> float:
    return max(s["status"]["p99"], s["jobs"]["p99"])
