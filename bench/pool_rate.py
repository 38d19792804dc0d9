"""10c. The sender pool: messages a minute with 1, 2 and 3 senders on one PostgreSQL database.

Each sender is what production runs: one `run_worker.py` process on the SMS channel with its
own WORKER_ID and its own phone gateway (the stand-in of tests/sms_standin, which answers
at once and reports delivery at once), all on one database. Pacing is fixed at
SMS_MIN_DELAY = SMS_MAX_DELAY = PACING seconds and long pauses and caps are off, so each
sender's rate is bounded by its pacing, and N senders should send N times as fast.

A run creates one SMS job on a fresh schema once every sender is logged in, lets every
sender send WARMUP messages, then counts what reaches the gateways for `seconds`: a sender's
rate is (arrivals - 1) / (last - first arrival) in that window, by the gateway's clock, and
the pool's is their sum. Every number any gateway received is counted once over the whole
run, so a message sent twice (by two senders, or twice by one) is seen. Counts of 1, 2 and 3
senders take turns inside each repeat, the order rotating.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from .common import median, say, wait_for
from .procs import WorkerProcess

PACING = 0.5  # seconds between one sender's messages (SMS_MIN_DELAY = SMS_MAX_DELAY)
SENDERS = (1, 2, 3)
WARMUP = 3  # messages each sender sends before the window opens
GOAL_EFFICIENCY = 0.9  # rate of N senders / (N x rate of one), measured in the same repeat


def _settings(url: str, who: str, gateway: str) -> dict:
    return {
        "database_url": url,
        "worker_channel": "sms",
        "worker_id": who,
        "sms_gateway_url": gateway,
        "sms_gateway_username": "sms",
        "sms_gateway_password": "secret",
        "sms_min_delay": PACING,
        "sms_max_delay": PACING,
        "long_pause_every": 0,
        "sms_daily_cap": 0,  # caps would stop a sender at 100 an hour: off, to measure pacing
        "sms_hourly_cap": 0,
        "log_level": "WARNING",
    }


def one_run(senders: int, seconds: float) -> dict:
    """`senders` workers, each on its own gateway stand-in, sending one job for `seconds`."""
    from message_queue import Queue
    from tests.pg_server import drop_schema, new_schema
    from tests.sms_standin import GatewayServer

    schema, url = new_schema()
    names = [f"sms-{i + 1}" for i in range(senders)]
    rows = int(senders * (60 / PACING) * (seconds + 20) / 60) + 50  # never runs out
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
            queue = Queue(url)
            stack.callback(queue.close)
            gateways = [stack.enter_context(GatewayServer(step_delay=0)) for _ in names]
            for who, gw in zip(names, gateways, strict=True):
                Path(tmp, who).mkdir()
                stack.enter_context(WorkerProcess(Path(tmp, who), **_settings(url, who, gw.url)))
            wait_for(lambda: _logged_in(queue, names), 90, f"{senders} sender(s) to log in")
            _create_job(queue, rows)
            wait_for(
                lambda: all(len(gw.accepted()) >= WARMUP for gw in gateways),
                60,
                "every sender's first messages",
            )
            opened = time.time()
            time.sleep(seconds)
            closed = time.time()
            arrivals = [gw.accepted() for gw in gateways]
    finally:
        drop_schema(schema)
    per_sender = [_rate([a["at"] for a in got if opened <= a["at"] <= closed]) for got in arrivals]
    phones = Counter(a["phone"] for got in arrivals for a in got)
    received = sum(phones.values())
    if received >= rows:
        raise RuntimeError(f"the job ran out ({received} of {rows} rows sent): not a steady rate")
    return {
        "per_min": sum(per_sender),
        "per_sender": per_sender,
        "duplicates": sum(n - 1 for n in phones.values() if n > 1),
        "received": received,
    }


def _logged_in(queue, names: list[str]) -> bool:
    states = {w["id"]: w["state"] for w in queue.list_workers()}
    return all(states.get(n) in ("logged_in", "sending") for n in names)


def _create_job(queue, rows: int) -> None:
    from message_queue import NewJob, Recipient

    queue.create_job(
        NewJob(channel="sms", template="bench"),
        (
            Recipient(phone=f"+55119{60_000_000 + i}", text=f"message {i}", channel="sms")
            for i in range(rows)
        ),
    )


def _rate(times: list[float]) -> float:
    """Messages a minute from arrival times: intervals between the first and the last."""
    times = sorted(times)
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0]) * 60


def run(quick: bool) -> dict:
    """1, 2 and 3 senders in turn inside each repeat; medians, and the scaling within each
    repeat (N senders against N times the single sender of the same repeat)."""
    seconds, repeats = (8.0, 2) if quick else (15.0, 3)
    raw: dict[int, list[dict]] = {n: [] for n in SENDERS}
    for rep in range(repeats):
        order = SENDERS[rep % len(SENDERS) :] + SENDERS[: rep % len(SENDERS)]
        for n in order:
            say(f"pool: repeat {rep + 1}/{repeats}, {n} sender(s)")
            raw[n].append(one_run(n, seconds))
    rows = []
    for n, runs in raw.items():
        single = raw[1]
        rows.append(
            {
                "senders": n,
                "per_min": median([r["per_min"] for r in runs]),
                "runs": [r["per_min"] for r in runs],
                "per_sender": [median(r["per_sender"]) for r in runs],
                "efficiency": median(
                    [r["per_min"] / (n * s["per_min"]) for r, s in zip(runs, single, strict=True)]
                ),
                "duplicates": sum(r["duplicates"] for r in runs),
            }
        )
    worst = min(r["efficiency"] for r in rows)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "pacing": PACING,
        "seconds": seconds,
        "repeats": repeats,
        "ceiling_per_sender": 60 / PACING,
        "rows": rows,
        "goals": {
            "linear": worst >= GOAL_EFFICIENCY,
            "no_duplicates": all(r["duplicates"] == 0 for r in rows),
        },
    }
