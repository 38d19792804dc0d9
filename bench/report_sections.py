"""The detail sections of docs/BENCHMARKS.md, one function per benchmark."""

from __future__ import annotations

import statistics

from .input_costs import table as inputs_table


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def api_section(a: dict) -> list[str]:
    out = [
        "## 1. Creating a big job",
        "",
        f"POST /send (multipart) with a {a['rows']:,}-row CSV ({a['csv_mb']:.1f} MB, phone + "
        "name, template with {name}) over real HTTP to gunicorn on 127.0.0.1 (2 workers x 4 "
        "threads, as deployed), a fresh database each run. Peak RSS is VmHWM of the gunicorn "
        "worker that served it. Floor, in its own process: csv + `phonenumbers` parse, "
        "validate and format E.164 of the same numbers, the template filled by "
        "`str.replace`, and one sqlite3 `executemany` of the same rows into the same schema.",
        "",
        "| | wall, median | wall, runs | CPU s, median | peak RSS |",
        "|---|---|---|---|---|",
        f"| product (HTTP, gunicorn) | {a['product_s']:.2f} s | "
        f"{_list(r['seconds'] for r in a['product'])} | {a['product_cpu_s']:.2f} | "
        f"{a['product_peak_mb']:.0f} MB (idle worker: {a['product_idle_mb']:.0f} MB) |",
        f"| floor (phonenumbers + executemany) | {a['floor_s']:.2f} s | "
        f"{_list(r['seconds'] for r in a['floor'])} | {a['floor_cpu_s']:.2f} | "
        f"{a['floor_peak_mb']:.0f} MB |",
        "",
        f"Ratio product / floor, wall time: **{a['ratio']:.2f}x** (per run: "
        f"{_list(a['ratios'], 'x')}); CPU time (the serving worker's vs the floor's, less "
        f"disturbed by other tenants): {a['cpu_ratio']:.2f}x (per run: "
        f"{_list(a['cpu_ratios'], 'x')}). Inside the floor, numbers take "
        f"{a['floor_parse_s']:.2f} s and the insert {a['floor_insert_s']:.2f} s.",
    ]
    if "stages" in a:
        out += [
            "",
            "Stages timed one by one in-process, no profiler (CPU seconds, median of 3), "
            "in the view's order:",
            "",
            "| stage | CPU s |",
            "|---|---|",
        ]
        out += [f"| {name} | {sec:.2f} |" for name, sec in a["stages"]]
    if "profile" in a:
        p = a["profile"]
        out += [
            "",
            f"Profile of one POST /send in-process (pyinstrument, Flask test client; "
            f"{p['total_s']:.1f} s under the profiler, {p['view_s']:.1f} s in the view):",
            "",
            "| product function (inclusive) | s | share of the view |",
            "|---|---|---|",
        ]
        out += [f"| `{k}` | {v:.2f} | {v / p['view_s']:.0%} |" for k, v in p["inside"]]
        out += ["", "| hottest functions (self time) | s |", "|---|---|"]
        out += [f"| `{k}` | {v:.2f} |" for k, v in p["self"]]
    return out


def inputs_section(i: dict) -> list[str]:
    return [
        "## 1b. Small inputs with large costs",
        "",
        f"Each crafted request (at most 1 MB) is posted once to /preview and once to /send "
        "through the Flask test client, in a fresh subprocess after a warm-up request "
        "(bench/input_costs.py). CPU is the process's CPU time for that one request; memory "
        "is the growth of its peak RSS (ru_maxrss). Goal: at most "
        f"{i['cpu_goal_s']:g} s of CPU and {i['memory_goal_mb']:g} MB, and no 5xx. A case "
        f"still running after {i['timeout_s']} s is killed.",
        "",
        *inputs_table(i),
    ]


def queue_section(q: dict) -> list[str]:
    out = [
        "## 2. The queue: claim + mark sent",
        "",
        f"{q['n']:,} items per run, drained by 1 or 4 processes on one file; cycles per "
        f"second, median of {q['repeats']} runs per cell; every claimed id is collected to "
        "count double deliveries (claimed twice) and lost items (never claimed). The bare "
        "loop uses the product's schema and file with only the two statements a claim needs "
        "(`BEGIN IMMEDIATE` + `UPDATE ... RETURNING` naming its job and that job's one zone, "
        "a seek of the same index messages_ready as the product's claim, then the mark). "
        "The libraries run with "
        "their own defaults, as a user gets them: both leave SQLite at synchronous=FULL (an "
        "fsync per commit in WAL) where the product and the bare loop use NORMAL; huey's "
        "claim deletes the row and its mark stores a result (`put_data`), persist-queue's "
        "is `get` + `ack`.",
        "",
        "| contestant | processes | cycles/s | runs | vs bare loop | double | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in sorted(q["rows"], key=lambda x: (x["procs"], -x["rate"])):
        out.append(
            f"| {x['label']} | {x['procs']} | {x['rate']:,.0f} | "
            f"{_list(x['rates'], fmt='{:,.0f}')} | {x['vs_floor']:.2f}x | "
            f"{x['duplicates']} | {x['missing']} |"
        )
    c = q["per_call_us"]
    out += [
        "",
        "CPU time per call in one process without contention (µs): product "
        f"`claim_next` {c['product']['claim']:.0f} + `mark_sent` {c['product']['mark']:.0f}"
        f" = {sum(c['product'].values()):.0f}; bare loop claim {c['bare']['claim']:.0f} + "
        f"mark {c['bare']['mark']:.0f} = {sum(c['bare'].values()):.0f}. Each call is one "
        "write transaction, and with 4 processes the write lock is held for all of it "
        "while the others wait in SQLite's busy handler (which sleeps in steps of "
        "milliseconds): the longer the transaction, the more the processes collide.",
    ]
    return out


def status_section(s: dict) -> list[str]:
    labels = {
        "product_paced": "product, 8 clients every 50 ms, writer 100 msg/s",
        "floor_paced": "floor: bare WSGI app, 8 clients every 50 ms, writer 100 msg/s",
        "product": "product, 8 saturating clients, writer flat out",
        "floor": "floor: bare WSGI app, 8 saturating clients, writer flat out",
        "product_no_writer": "product, 8 saturating clients, no writer",
        "product_1_client": "product, 1 saturating client, writer flat out",
    }
    out = [
        "## 3. Reading status under load",
        "",
        f"GET /status/<id> and GET /jobs alternating on a 100,000-message job, for "
        f"{s['seconds']:g} s per run ({s['repeats']} runs, medians), each client a process "
        "with its own requests.Session, against gunicorn as deployed, while a writer process "
        "claims and marks messages. The floor is a bare WSGI callable under the same "
        "gunicorn returning a same-size JSON body: HTTP, gunicorn, loopback and the client "
        "only. Latency is at the client.",
        "",
        "The goal is judged on the first line: each client asks every 50 ms (160 requests "
        "a second in all, as many as 240 open /app pages, which ask every 1.5 s) while the "
        "writer claims and marks 100 messages a second, 12 times the most the worker sends "
        "(about 470 a minute with every delay at 0). The stress lines below have clients "
        "that ask again the moment an answer arrives and a writer that never waits: 8 "
        "requests are then always in flight on 2 cores that the writer and the clients "
        "share, so latency is mostly waiting for a CPU (Little's law), the floor's included.",
        "",
        "| mode | /status p50 | /status p99 | /jobs p50 | /jobs p99 | requests/s "
        "| writer cycles/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, v in s["summary"].items():
        out.append(
            f"| {labels[mode]} | {v['status']['p50']:.1f} ms | {v['status']['p99']:.1f} ms"
            f" | {v['jobs']['p50']:.1f} ms | {v['jobs']['p99']:.1f} ms | {v['rps']:,.0f} |"
            f" {v['writer_per_s']:,.0f} |"
        )
    i = s["in_process_ms"]
    out += [
        "",
        f"p99 product / floor: {s['p99_vs_floor']:.2f}x. Inside Flask alone (test "
        f"client, no HTTP, no writer) one request takes {i['status']:.2f} ms (/status) and "
        f"{i['jobs']:.2f} ms (/jobs): the rest of the latency above is HTTP, the client and "
        "waiting for a CPU (8 clients, 2 gunicorn workers and the writer share 2 cores).",
    ]
    return out


def browser_section(b: dict) -> list[str]:
    labels = {
        "product": "product: Worker + WhatsAppTransport",
        "floor": "bare Selenium, 10 ms polling",
        "floor_slow": "bare Selenium, 0.1 s polling (WebDriverWait's usual interval)",
    }
    out = [
        "## 4. The browser path",
        "",
        f"{b['n']} messages per run, {b['repeats']} runs, all delays 0, stand-in ticks at "
        "once; same Chromium build and flags (worker.whatsapp.browser.build_driver). Rate "
        "from the stand-in's arrival times, first to last message. The product asks the page "
        "one question per round trip (worker/whatsapp/page.js: every locator alternative, the "
        "tick, the bubble's text) and waits by polling inside the page every 25 ms.",
        "",
        "| | messages/min | WebDriver commands per message "
        "| ms per other command (page loads and clicks aside) |",
        "|---|---|---|---|",
    ]
    for k, v in b["summary"].items():
        ms = median_of(b["runs"][k], "command_ms")
        out.append(f"| {labels[k]} | {v['rate']:.0f} | {v['commands']:.1f} | {ms:.1f} |")
    out += [
        "",
        f"Floor rate / product rate: **{b['slowdown_vs_floor']:.2f}x** (the floor of "
        "each repeat is the faster of the two bare scripts).",
        "",
        "Where the product's time goes, per message (last run; WebDriver round trips "
        "charged to the worker function that issued them):",
        "",
        "| worker function, command | calls/message | ms/message |",
        "|---|---|---|",
    ]
    sites = sorted(b["sites"].items(), key=lambda kv: -kv[1][1])
    out += [f"| `{k}` | {c:.2f} | {ms:.1f} |" for k, (c, ms) in sites if c >= 0.5]
    return out


def service_section(v: dict) -> list[str]:
    out = [
        "### Worker as a service",
        "",
        "`run_worker.py` as its own process with the API under gunicorn, delays 0. CPU and "
        "memory cover the whole tree: worker, ChromeDriver, Chromium and its helpers. USS is "
        "the memory only this tree holds (what a leak grows); PSS splits shared pages "
        "between all their users, so it moves when other Chromiums on the machine come and "
        "go; RSS summed counts shared pages once per process.",
        "",
        f"Idle for {v['idle_seconds']:g} s, logged in, no work: **{v['idle']['percent']:.1f} "
        f"%** of one core; a bare Chromium on the same stand-in page: "
        f"{v['idle_floor']['percent']:.1f} %. The stand-in page, like the real one on its "
        "websocket, waits for news on one held request (tests/wa_standin), so an idle page "
        "costs next to nothing; the worker meanwhile checks its queue every second and the "
        "session every 5 s.",
        "",
        "| process | worker tree % | bare Chromium % |",
        "|---|---|---|",
    ]
    roles = sorted(set(v["idle"]["roles"]) | set(v["idle_floor"]["roles"]))
    out += [
        f"| {k} | {v['idle']['roles'].get(k, 0):.2f} | {v['idle_floor']['roles'].get(k, 0):.2f} |"
        for k in roles
    ]
    out += [
        "",
        "POST /send -> first message at the stand-in: "
        f"median **{v['first_message_median_s']:.2f} s**; runs: "
        f"{_list(v['first_message_s'], ' s')}.",
        "",
        f"Memory over {v['n']:,} messages (BROWSER_RECYCLE_AFTER={v['recycle_after']}):",
        "",
        "| sent | USS | PSS | RSS summed | processes | elapsed |",
        "|---|---|---|---|---|---|",
    ]
    for s in v["memory"]:
        out.append(
            f"| {s['sent']} | {s['uss_mb']:.0f} MB | {s['pss_mb']:.0f} MB | "
            f"{s['rss_mb']:.0f} MB | {s['processes']} | {s.get('seconds', 0):.0f} s |"
        )
    return out


def pacing_section(p: dict) -> list[str]:
    c = p["settings"]
    out = [
        "## 5. Pacing honesty",
        "",
        f"{p['n']} messages through the real Worker on a real queue and a transport that only "
        f"notes the time (bench/fast_transport.py); MIN_DELAY={c['min_delay']}, "
        f"MAX_DELAY={c['max_delay']}, LONG_PAUSE_EVERY={c['long_pause_every']}, "
        f"LONG_PAUSE_MIN={c['long_pause_min']}, LONG_PAUSE_MAX={c['long_pause_max']} (the "
        "defaults / 100).",
        "",
        "| gaps | n | min | median | mean | max | configured |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cfg in (
        ("short", (c["min_delay"], c["max_delay"])),
        ("long", (c["long_pause_min"], c["long_pause_max"])),
    ):
        s = p[name]
        out.append(
            f"| {name} | {s['n']} | {s['min'] * 1000:.1f} ms | {s['median'] * 1000:.1f} ms"
            f" | {s['mean'] * 1000:.1f} ms | {s['max'] * 1000:.1f} ms | "
            f"{cfg[0] * 1000:.0f}-{cfg[1] * 1000:.0f} ms |"
        )
    e = p["extra_ms"]
    out += [
        "",
        f"Measured gap minus the delay the pacer drew for it (what the loop and the "
        f"machine add): median {e['median']:.2f} ms, p99 {e['p99']:.2f} ms, max "
        f"{e['max']:.1f} ms; {p['stretched']} short gaps ended more than 5 ms past "
        "MAX_DELAY.",
        "",
    ]
    out += [f"- {name}: {yes(ok)}" for name, ok in p["checks"].items()]
    out += ["", "```"]
    for title, hist in (("short gaps", p["histogram_short"]), ("long gaps", p["histogram_long"])):
        out.append(title)
        out += [f"  {label} {'#' * count} {count}" for label, count in hist]
    out.append("```")
    return out


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _list(values, unit: str = "", fmt: str = "{:.2f}") -> str:
    return ", ".join(fmt.format(v) + unit for v in values)


def _short_list(values) -> str:
    return ", ".join(str(v) for v in values)


INBOX_READS = {
    "list": "GET /conversations (newest first)",
    "list_unread": "GET /conversations?filter=unread",
    "search_name": "GET /conversations?q=<a name>",
    "search_number": "GET /conversations?q=<digits>",
    "search_reply_text": "GET /conversations?q=<a word a contact wrote>",
    "thread": "GET /conversations/<phone>/messages",
    "status": "GET /status/<job> of a campaign with replies (for comparison)",
}


def conversations_section(c: dict) -> list[str]:
    m = c.get("meta", {})
    out = [
        "## 8. The inbox: conversations on a big database",
        "",
        f"{m.get('threads', 10_000):,} threads and {m.get('messages', 200_000):,} messages "
        "(bench/conversations.py), read through the Flask test client, "
        f"{m.get('requests', 300)} requests each after a warm-up; milliseconds.",
        "",
        "| read | p50 ms | p99 ms |",
        "|---|---|---|",
    ]
    for key, label in INBOX_READS.items():
        if key in c:
            out.append(f"| {label} | {c[key]['p50']:.1f} | {c[key]['p99']:.1f} |")
    load = c.get("under_load")
    if load:
        out += [
            "",
            "Under the status benchmark's paced load, in one run: gunicorn as deployed, 8 "
            "client processes each asking every 50 ms in turn for the list, one thread and "
            f"/status ({load['rps']:.0f} requests a second in all), beside a writer sending "
            f"{load['writer_per_s']:.0f} messages a second of a waiting campaign into the same "
            "database (taking its sends into the inbox list every 20 sends, as a worker does "
            "between sends). Latency at the client, loopback HTTP included.",
            "",
            "| read | p50 ms | p99 ms |",
            "|---|---|---|",
        ]
        for key in ("list", "thread", "status"):
            out.append(f"| {INBOX_READS[key]} | {load[key]['p50']:.1f} | {load[key]['p99']:.1f} |")
    return out


def inbox_section(i: dict) -> list[str]:
    out = [
        "## 9. Reading replies in the browser path",
        "",
        f"{i['chats']} contacts write once each to the worker's WhatsApp (the stand-in, in "
        "the bench's process); the product's WhatsAppTransport in headless Chromium is asked "
        "`poll_inbound` as the worker asks it between two sends until every reply is read "
        "(bench/inbox_sweep.py). The longest poll is what one pause between two sends can "
        "grow by: the worker reads at most 5 chats or 2 s per poll.",
        "",
        "| sweep | seconds | polls | longest poll, s |",
        "|---|---|---|---|",
    ]
    for n, s in enumerate(i["sweeps"], 1):
        out.append(f"| {n} | {s['seconds']:.2f} | {s['polls']} | {s['longest']:.2f} |")
    out += [
        "",
        f"Median: {i['seconds']:.2f} s for {i['chats']} chats, **{i['per_chat_ms']:.0f} ms a "
        f"chat**, longest poll {i['longest_poll']:.2f} s.",
    ]
    return out
