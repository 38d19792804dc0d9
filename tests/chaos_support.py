"""Shared pieces of the chaos runs (tests/chaos.py): the moments to strike and the reckoning.

The reckoning compares what a rig's stand-in received (tests/chaos_rigs.py) with the rows:
every recipient exactly once or `unknown`, with the text stored in its row, nothing left open,
every job completed, `PRAGMA integrity_check` ok. The texts carry spintax (TEMPLATE), so it
also checks that more than one variant went out and that a message killed after its click was
found in the chat, not sent again as another variant.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.wa_e2e_support import wait_until

if TYPE_CHECKING:
    from tests.chaos_rigs import Rig

DONE = ("sent", "delivered")
OPEN = ("pending", "retrying", "sending")
FINISH = 300.0  # seconds a job may need after the last fault
PROGRESS_WAIT = 120.0  # seconds the job may go without reaching the next strike before it fails
POLL = 0.001

# Every recipient's text: one of six variants, picked when its row is written (as /send does)
# and kept unique by its number and phone, so the reckoning by (phone, text) still holds.
TEMPLATE = "{Hi|Hello|Hey} {label} #{i} {✓|✔} {phone}"
_VARIANT = re.compile(r"(Hi|Hello|Hey) .+ (✓|✔) \S+", re.DOTALL)


def variant(text: str) -> tuple[str, ...] | None:
    """The alternatives `text` took (("Hey", "✔")), or None: not a text of TEMPLATE's shape."""
    match = _VARIANT.fullmatch(text)
    return match.groups() if match else None


# --- the outcome of one scenario ---------------------------------------------------------


@dataclass
class Result:
    """What one scenario did and found; `line()` is its one-line summary."""

    name: str
    fault_noun: str
    messages: int = 0
    faults: int = 0
    once: int = 0
    duplicates: int = 0
    lost: int = 0
    unknown: int = 0
    integrity: str = "not checked"
    seconds: float = 0.0
    variants: set[tuple[str, ...]] = field(default_factory=set)  # those that arrived
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        text = (
            f"{self.name}: {self.messages} messages ({len(self.variants)} variants), "
            f"{self.faults} {self.fault_noun}, "
            f"{self.once} received once, {self.duplicates} duplicates, {self.lost} lost, "
            f"{self.unknown} unknown, integrity {self.integrity}, {self.seconds:.0f} s"
        )
        if self.extra:
            text += f" ({'; '.join(self.extra)})"
        return text if self.ok else f"{text} -- BROKEN: {len(self.problems)} problem(s)"


def reckon(result: Result, rig: Rig, unknown_ok: bool) -> None:
    """Add `rig`'s jobs to `result`: each row against what the stand-in received."""
    arrived, wanted, unknown = rig.arrivals(), set(), []
    problem = result.problems.append
    for job_id in rig.job_ids:
        for row in rig.queue.iter_messages(job_id):
            key, status = rig.key(row), row["status"]
            wanted.add(key)
            n = arrived[key]
            result.messages += 1
            result.once += n == 1
            result.duplicates += max(n - 1, 0)
            if status == "unknown":
                result.unknown += 1
                unknown.append(f"{row['id']} ({'arrived' if n else 'did not arrive'})")
            where = f"message {row['id']} to {row['phone']}"
            if n > 1:
                problem(f"{where} arrived {n} times (row says {status})")
            if status in OPEN:
                problem(f"{where} left {status}")
            if n == 0 and status != "unknown":
                result.lost += 1
                problem(f"{where} never arrived (row says {status})")
            elif n == 1 and status not in (*DONE, "unknown", *OPEN):
                problem(f"{where} arrived but the row says {status}")
        job = rig.queue.get_job(job_id)
        if job["status"] != "completed":
            problem(f"job {job_id} is {job['status']}, not completed")
    recipients = {phone for phone, _ in wanted}
    for key in set(arrived) - wanted:
        if key[0] in recipients:  # a second message, e.g. another variant than the row's
            result.duplicates += arrived[key]
            problem(f"{key[0]} received a text its row does not hold: {key[1]!r}")
        else:
            problem(f"the stand-in received something nobody queued: {key}")
    if unknown:
        result.extra.append(f"unknown: message {', '.join(unknown)}")
        if not unknown_ok:
            problem(f"{len(unknown)} message(s) unknown on a channel that can always tell")
    integrity = rig.queue.integrity_check()
    result.integrity = integrity if result.integrity in ("not checked", "ok") else result.integrity
    if integrity != "ok":
        problem(f"integrity check: {integrity}")
    tracebacks = rig.log_text().count("Traceback")
    if tracebacks:
        result.extra.append(f"{tracebacks} traceback(s) in {rig.log_path.name}")


def finish(result: Result, rig: Rig) -> None:
    """Let the job complete, stop the last worker cleanly, count everything."""
    try:
        rig.wait_done(FINISH)
    except AssertionError as exc:
        result.problems.append(str(exc).splitlines()[0])
    try:
        code = rig.terminate()
    except AssertionError as exc:
        result.problems.append(f"the last worker ignored SIGTERM: {str(exc).splitlines()[0]}")
    else:
        if code != 0:
            result.problems.append(f"the last worker exited {code} on SIGTERM")
    reckon(result, rig, rig.unknown_ok)
    reckon_variants(result, rig)


def reckon_variants(result: Result, rig: Rig) -> None:
    """Every row holds one of TEMPLATE's variants, and more than one of them arrived.

    (That what arrived is the row's own text, `reckon` checks: it matches by (phone, text).)
    """
    arrived, seen = rig.arrivals(), set()
    for job_id in rig.job_ids:
        for row in rig.queue.iter_messages(job_id):
            picked = variant(row["text"])
            if picked is None:
                result.problems.append(
                    f"message {row['id']} holds no variant of the template: {row['text']!r}"
                )
            elif arrived[rig.key(row)]:
                seen.add(picked)
    result.variants |= seen
    if len(seen) < 2:
        result.problems.append(f"{len(seen)} variant(s) arrived: the choices did not vary")


def reckon_found_in_chat(result: Result, rig: Rig, caught: list[dict]) -> None:
    """Each message killed after its click, before its tick (left `sending`), was found in the
    chat by a restarted worker and marked sent: its recipient got that one text, no other."""
    log, arrived, found = rig.log_text(), rig.arrivals(), 0
    for row in caught:
        phone = rig.key(row)[0]
        texts = [text for (to, text), n in arrived.items() if to == phone for _ in range(n)]
        recovered = f"recovered message {row['id']}: sent" in log
        found += recovered
        if not recovered:
            result.problems.append(
                f"message {row['id']}, killed after its click, was not found in the chat"
            )
        if texts != [row["text"]]:
            result.problems.append(
                f"message {row['id']}, killed after its click: {phone} received {texts}, "
                f"not once {row['text']!r}"
            )
    result.extra.append(f"{found}/{len(caught)} killed after the click found in the chat")


class JobOver(Exception):
    """The job completed before the moment of the next strike came: the plan ends early."""


def guarded(result: Result, step) -> None:
    """Run the fault loop; a wait that times out is a broken promise (a stuck job), not a crash."""
    try:
        step()
    except JobOver:
        result.extra.append("the job ended before the last strikes")
    except AssertionError as exc:
        result.problems.append(f"stalled: {str(exc).splitlines()[0]}")


# --- moments to strike -------------------------------------------------------------------


@dataclass(frozen=True)
class Strike:
    """One fault: due once `at` messages reached the stand-in, then at a moment of `kind`.

    claim: a message just claimed (nothing sent yet); mid_send: a message the stand-in already
    has but the worker has not confirmed (the channel confirms `delay` seconds late so the
    window is wide); random: `delay` seconds after it fell due, whatever the worker is doing.
    """

    at: int
    kind: str
    delay: float


def plan(
    rng: random.Random,
    count: int,
    messages: int,
    kinds=("claim", "mid_send", "random"),
    max_random_delay: float = 2.0,
) -> list[Strike]:
    """`count` strikes spread over the whole job, the last tenth left for the last moments.

    The kinds take turns (then are shuffled), so even a run of two or three strikes hits a
    fresh claim and a send in flight.
    """
    positions = sorted(
        rng.randrange(max(messages - max(messages // 10, 3), 1)) for _ in range(count)
    )
    order = [kinds[i % len(kinds)] for i in range(count)]
    rng.shuffle(order)
    return [
        Strike(
            at,
            kind,
            rng.uniform(0.3, 1.0) if kind == "mid_send" else rng.uniform(0, max_random_delay),
        )
        for at, kind in zip(positions, order, strict=True)
    ]


def await_moment(rig: Rig, strike: Strike) -> dict | None:
    """Wait until `strike` is due and its moment has come; the row in flight, if any."""
    wait_until(
        lambda: rig.progress() >= strike.at,
        PROGRESS_WAIT,
        f"{strike.at} messages at the stand-in",
        details=rig.details,
    )
    if strike.kind == "random":
        time.sleep(strike.delay)
        rig.journal(f"{strike}: at {rig.progress()} arrived")
        return None
    if strike.kind == "mid_send":
        rig.slow(strike.delay)
    old = {r["id"] for r in rig.sending()}

    def fresh():
        rows = rig.sending()
        if not rows and rig.all_done():
            raise JobOver()
        old.intersection_update(r["id"] for r in rows)  # left `sending`: fresh if claimed again
        return next(
            (
                r
                for r in rows
                if r["id"] not in old and rig.reached(r) == (strike.kind == "mid_send")
            ),
            None,
        )

    row = wait_until(
        fresh,
        PROGRESS_WAIT,
        f"a message at the {strike.kind} moment",
        interval=POLL,
        details=rig.details,
    )
    rig.journal(f"{strike}: at {rig.progress()} arrived, message {row['id']}")
    return row
