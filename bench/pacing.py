"""5. Pacing honesty: do the gaps between sends follow MIN/MAX_DELAY and the long pauses?

The real Worker runs on a real queue with the default delay settings scaled down 100x, around
a transport that only notes the time of each send (bench/fast_transport.py). The random source
records every delay the pacer drew, so each measured gap is compared with the delay it was
meant to be: the difference is what the loop itself adds (claim, mark sent, heartbeat).
"""

from __future__ import annotations

import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path

from .common import API_KEY, median, percentile, say, wait_for
from .fast_transport import FastTransport, RecordingRandom
from .queue_contestants import product_fill

SLACK = 0.005  # what the loop itself may add to a gap: a claim, a mark-sent, a heartbeat
# config.Settings defaults (4-8 s, a 20-40 s pause every 10) divided by 100.
SCALED = {
    "min_delay": 0.04,
    "max_delay": 0.08,
    "long_pause_every": 10,
    "long_pause_min": 0.2,
    "long_pause_max": 0.4,
}


def measure(n: int) -> dict:
    """Send `n` messages through the real loop; the gaps, the drawn delays and a verdict."""
    from config import Settings
    from message_queue import Queue
    from worker.worker import Worker

    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
        product_fill(Path(tmp), n)
        settings = Settings(
            api_key=API_KEY,
            database_path=str(Path(tmp) / "queue.db"),
            worker_id="bench-pacing",
            **SCALED,
        )
        queue, transport, rng, stop = (
            Queue(settings.database_path),
            FastTransport(),
            RecordingRandom(7),
            threading.Event(),
        )
        worker = Worker(settings, queue, transport, stop, rng=rng, idle_poll=0.05)
        thread = threading.Thread(target=worker.run, daemon=True)
        started = time.monotonic()
        thread.start()
        wait_for(lambda: len(transport.sent_at) >= n, 60 + n, f"{n} sends")
        stop.set()
        thread.join(10)
        queue.close()
    times = transport.sent_at
    gaps = [b - a for a, b in pairwise(times)]
    every = SCALED["long_pause_every"]
    long_at = [k for k in range(1, len(gaps) + 1) if k % every == 0]  # gap k follows send k
    long_gaps = [gaps[k - 1] for k in long_at]
    short_gaps = [g for k, g in enumerate(gaps, 1) if k % every]
    extra = [g - d for g, d in zip(gaps, rng.drawn, strict=False)]  # the last draw had no gap
    c = SCALED
    draws_ok = all(
        c["long_pause_min"] <= d <= c["long_pause_max"]
        if k % every == 0
        else c["min_delay"] <= d <= c["max_delay"]
        for k, d in enumerate(rng.drawn[: len(gaps)], 1)
    )
    return {
        "n": n,
        "seconds": times[-1] - started,
        "settings": SCALED,
        "short": _stats(short_gaps),
        "long": _stats(long_gaps),
        "long_expected_at": long_at,
        "extra_ms": {
            "median": median(extra) * 1000,
            "p99": percentile(extra, 99) * 1000,
            "max": max(extra) * 1000,
            "min": min(extra) * 1000,
        },
        "checks": {
            "no gap shorter than the delay drawn for it": sum(e < 0 for e in extra) == 0,
            "every delay drawn within its configured range": draws_ok,
            "a long pause after every 10th send, nowhere else": all(
                g >= c["long_pause_min"] for g in long_gaps
            )
            and not any(g >= c["long_pause_min"] for g in short_gaps),
            "95 % of gaps within configured range + 5 ms": _share_within(
                short_gaps, c["min_delay"], c["max_delay"]
            )
            >= 0.95
            and _share_within(long_gaps, c["long_pause_min"], c["long_pause_max"]) >= 0.95,
        },
        "stretched": sum(g > c["max_delay"] + SLACK for g in short_gaps),
        "histogram_short": histogram(short_gaps, 0.030, 0.100, 0.005),
        "histogram_long": histogram(long_gaps, 0.18, 0.42, 0.02),
    }


def _share_within(values, low: float, high: float) -> float:
    return sum(low <= v <= high + SLACK for v in values) / len(values)


def _stats(values) -> dict:
    return {
        "n": len(values),
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "median": median(values),
    }


def histogram(values, low: float, high: float, step: float) -> list[tuple[str, int]]:
    """Counts per bin of width `step` from `low` to `high` (values outside go to the ends)."""
    bins = int(round((high - low) / step))
    counts = [0] * bins
    for v in values:
        counts[min(max(int((v - low) / step), 0), bins - 1)] += 1
    labels = [
        f"{(low + i * step) * 1000:4.0f}-{(low + (i + 1) * step) * 1000:<4.0f}ms"
        for i in range(bins)
    ]
    labels[-1] = f"{(high - step) * 1000:4.0f}+ ms   "  # the last bin takes everything above
    return list(zip(labels, counts, strict=True))


def run(quick: bool) -> dict:
    n = 100 if quick else 200
    say(f"pacing: {n} messages with the default delays scaled down 100x")
    result = measure(n)
    result["goal_met"] = all(result["checks"].values())
    return result
