"""2b. Careful claims: claim + mark sent with caps, a send window and schedules in force.

One file holds a 100,000-row job whose numbers alternate between São Paulo (+55 11, the
window open) and Kolkata (+91 98, the window closed), an older job of its own that reached its
hourly cap, and a job scheduled for tomorrow. The clock stands still at AT: 12:00 in São Paulo,
20:30 in Kolkata, with SEND_WINDOW 09:00-20:00. Each run drains CLAIMS rows from a fresh copy
of that file in this one process, three ways, taking turns in each repeat:

- the bare loop (the floor): the two statements of bench/queue_contestants.py, told the big
  job and its open zone, as a claim that knew the answer to every rule would be;
- the product opened without rules (no caps, no window, no auto-pause);
- the product with the rules: caps, window, auto-pause, and the capped and scheduled jobs.

Caps count a sender's sends in the last hour by claimed_at, and the clock does not move, so a
sender would reach its hourly cap after 60 claims and the product would then claim nothing:
the sender (`who`) changes every ROTATE claims instead, in all three loops, so each claim of
the careful product counts a sender's recent sends as it does in production (up to ROTATE
steps of the index) without ever being held by its own cap.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .common import median, say
from .query_plans import claim_plans
from .queue_contestants import CHANNEL, bare_claim, bare_mark, bare_open

GOAL_VS_FLOOR = 0.7
AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()
WINDOW = "09:00-20:00"
ROWS = 100_000
SCHEDULED_ROWS = 1_000
CAPPED_ROWS = 100
ROTATE = 50  # claims per sender: under its hourly cap of 60, so caps hold nothing
OPEN_PREFIX = "+55"
LABELS = {
    "bare": "bare loop, told the open zone (floor)",
    "plain": "product, no rules",
    "careful": "product, caps + window + auto-pause",
}


def rules():
    """Contract section 8's default caps and auto-pause, and a 09:00-20:00 window."""
    from message_queue.rules import Caps, SendingRules
    from utils.sendwindow import SendWindow

    return SendingRules(
        caps={CHANNEL: Caps(daily=200, hourly=60)},
        window=SendWindow.parse(WINDOW),
        failure_rate=0.5,
        failure_window=20,
    )


def _recipients(n: int, phone):
    from message_queue import Recipient

    return (
        Recipient(phone=phone(i), text=f"message {i}", channel=CHANNEL, row=i + 2) for i in range(n)
    )


def _alternating(i: int) -> str:
    return f"+55119{60_000_000 + i}" if i % 2 == 0 else f"+9198{10_000_000 + i}"


def fill(folder: Path, rows: int) -> str:
    """The three jobs in `folder`/queue.db; the big job's id. The capped job is the oldest, so
    a claim that did not hold it would take its rows first."""
    from message_queue import NewJob, Queue

    queue = Queue(folder / "queue.db", clock=lambda: AT)
    capped, _ = queue.create_job(
        NewJob(channel=CHANNEL, template="capped", hourly_cap=1),
        _recipients(CAPPED_ROWS, lambda i: f"+55119{70_000_000 + i}"),
    )
    first = queue.claim_next(CHANNEL, "setup")  # no rules yet: the oldest job's first row
    if (
        first is None
        or first["job_id"] != capped["id"]
        or not queue.mark_sent(first["id"], "setup")
    ):
        raise RuntimeError("could not bring the capped job to its hourly cap")
    big, _ = queue.create_job(
        NewJob(channel=CHANNEL, template="big"), _recipients(rows, _alternating)
    )
    queue.create_job(
        NewJob(channel=CHANNEL, template="later", send_at=AT + 86_400),
        _recipients(SCHEDULED_ROWS, lambda i: f"+55119{80_000_000 + i}"),
    )
    queue.close()
    return big["id"]


def _copy(template: Path, folder: Path) -> None:
    for f in template.iterdir():
        shutil.copy(f, folder / f.name)


def _open(name: str, folder: Path, big_job: str):
    """(claim(who) -> message or None, mark(message, who), close()) of one contestant."""
    if name == "bare":
        opened = bare_open(folder, "w0", big_job, _open_zone())
        return (
            lambda who: bare_claim(opened, who),
            lambda mid, who: bare_mark(opened, mid, who),
            opened[0].close,
        )
    from message_queue import Queue
    from message_queue.rules import NO_RULES

    queue = Queue(
        folder / "queue.db", clock=lambda: AT, rules=rules() if name == "careful" else NO_RULES
    )

    def mark(message, who):
        if not queue.mark_sent(message["id"], who):
            raise RuntimeError(f"mark_sent refused message {message['id']}")

    return (lambda who: queue.claim_next(CHANNEL, who), mark, queue.close)


def _open_zone() -> str:
    """The zone create_job stored for the big job's São Paulo numbers."""
    from utils.zones import zone_for

    return zone_for(_alternating(0)) or ""


def one_run(name: str, template: Path, big_job: str, claims: int) -> dict:
    """Drain `claims` rows of a fresh copy of `template`: seconds in all, in claims, in marks."""
    with tempfile.TemporaryDirectory(prefix=f"bench-careful-{name}-") as tmp:
        _copy(template, Path(tmp))
        claim, mark, close = _open(name, Path(tmp), big_job)
        claim_s = mark_s = 0.0
        outside = 0
        cpu, began = time.process_time(), time.perf_counter()
        for k in range(claims):
            who = f"w{k // ROTATE}"
            t0 = time.perf_counter()
            message = claim(who)
            t1 = time.perf_counter()
            if message is None:
                raise RuntimeError(f"{name}: nothing to claim after {k} claims")
            mark(message, who)
            claim_s += t1 - t0
            mark_s += time.perf_counter() - t1
            if name == "careful" and (
                message["job_id"] != big_job or not message["phone"].startswith(OPEN_PREFIX)
            ):
                outside += 1
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        close()
    return {
        "rate": claims / seconds,
        "claim_rate": claims / claim_s,
        "claim_us": claim_s / claims * 1e6,
        "mark_us": mark_s / claims * 1e6,
        "cpu_us": cpu / claims * 1e6,
        "outside": outside,
    }


def run(quick: bool) -> dict:
    """The three loops, `repeats` times in turn (the order rotating); medians and ratios."""
    claims, repeats = (2_000, 3) if quick else (5_000, 7)
    with tempfile.TemporaryDirectory(prefix="bench-careful-fill-") as template:
        say(f"careful: filling {ROWS:,} rows + {SCHEDULED_ROWS:,} scheduled + {CAPPED_ROWS} capped")
        big_job = fill(Path(template), ROWS)
        plans = claim_plans(Path(template), rules(), AT)
        names = list(LABELS)
        raw: dict[str, list[dict]] = {n: [] for n in names}
        for rep in range(repeats):
            say(f"careful: repeat {rep + 1}/{repeats}")
            for name in names[rep % 3 :] + names[: rep % 3]:
                raw[name].append(one_run(name, Path(template), big_job, claims))
    floor = raw["bare"]
    rows = []
    for name, runs in raw.items():
        rows.append(
            {
                "name": name,
                "label": LABELS[name],
                "rate": median([r["rate"] for r in runs]),
                "rates": [r["rate"] for r in runs],
                "claim_rate": median([r["claim_rate"] for r in runs]),
                "claim_us": median([r["claim_us"] for r in runs]),
                "mark_us": median([r["mark_us"] for r in runs]),
                "cpu_us": median([r["cpu_us"] for r in runs]),
                # Ratios within one repeat (same minute, same load), then their median.
                "vs_floor": median(
                    [r["rate"] / f["rate"] for r, f in zip(runs, floor, strict=True)]
                ),
                "claim_vs_floor": median(
                    [r["claim_rate"] / f["claim_rate"] for r, f in zip(runs, floor, strict=True)]
                ),
                "outside": sum(r["outside"] for r in runs),
            }
        )
    careful = next(r for r in rows if r["name"] == "careful")
    return {
        "rows_total": ROWS,
        "claims": claims,
        "repeats": repeats,
        "rotate": ROTATE,
        "window": WINDOW,
        "at": datetime.fromtimestamp(AT, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        "plans": plans,
        "goals": {
            "vs_floor_ok": careful["vs_floor"] >= GOAL_VS_FLOOR,
            "no_scan": not any(p["scans_messages"] for p in plans),
            "nothing_outside": careful["outside"] == 0,
        },
    }
