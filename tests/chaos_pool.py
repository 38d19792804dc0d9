"""The chaos run of a pool of senders on PostgreSQL (issue 15): `pool-postgres`.

Three WhatsApp accounts (a stand-in, a worker, a WORKER_ID and a Chromium profile each) and
two SMS phones (a gateway stand-in and a worker each) share one `whatsapp_then_sms` job on a
PostgreSQL server of the run's own (tests/pg_server.Throwaway); a fifth of the numbers are not
on WhatsApp, so they fall back to SMS. From the seeded plan: workers SIGKILLed and restarted,
the database stopped at once (as a crash) and started again while every worker keeps running,
one account logged out mid-job and back in later.

The reckoning is tests/chaos_support.py's over the sum of every stand-in, plus: each row's
`claimed_by` is the sender whose stand-in received it (a row a sender left `sending` is
settled by that sender, never by another), the numbers not on WhatsApp and only those went by
SMS, and no worker exited by itself.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from message_queue import NewJob, Recipient
from tests import pg_server
from tests.chaos_pool_rigs import PatientQueue, Pool, PoolSmsRig, PoolWhatsAppRig
from tests.chaos_rigs import Rig, digits
from tests.chaos_support import (
    FINISH,
    PROGRESS_WAIT,
    TEMPLATE,
    Result,
    Strike,
    await_moment,
    guarded,
    plan,
    reckon,
    reckon_variants,
)
from tests.wa_e2e_support import wait_until
from utils.template import compile_template

# Seconds the database stays down: past a worker's wait for a pooled connection, or not.
LONG_OUTAGE, SHORT_OUTAGE = (11.0, 16.0), (1.0, 5.0)


@dataclass(frozen=True)
class PoolSize:
    messages: int
    kills: int
    restarts: int  # of the database
    logouts: int


FULL, QUICK = PoolSize(300, 20, 3, 2), PoolSize(30, 3, 1, 1)


def pool_plan(rng: random.Random, size: PoolSize) -> list[tuple[Strike, str]]:
    """The strikes in job order, each with its action: kill, database, logout or login.

    Each logout is followed by a login a few messages later, once the other accounts have
    sent more (its `at` is past the logout's): the logged-out account holds what it left
    `sending` until then, and the job cannot complete without it.
    """
    actions = ["kill"] * size.kills + ["database"] * size.restarts + ["logout"] * size.logouts
    rng.shuffle(actions)
    planned = list(zip(plan(rng, len(actions), size.messages), actions, strict=True))
    last = max(size.messages - max(size.messages // 10, 3), 1)
    for strike, action in list(planned):
        if action == "logout":
            at = min(strike.at + rng.randint(2, max(2, size.messages // 6)), last)
            planned.append((Strike(at, "random", rng.uniform(0, 2)), "login"))
    planned.sort(key=lambda p: p[0].at)  # stable: a login never comes before its logout
    return planned


class PoolRun:
    """One run of the scenario: the database, the rigs, the plan and what each fault left."""

    def __init__(self, workdir: Path, size: PoolSize, rng: random.Random, stack: ExitStack):
        self.size, self.rng, self.workdir = size, rng, workdir
        self.result = Result("pool-postgres", "faults")
        self.server = pg_server.Throwaway()  # NoPostgres where none can be had
        stack.callback(self.remove_server)
        url = self.server.url
        queue = PatientQueue(url)  # first: it creates the tables
        stack.callback(queue.close)
        self.wa = [
            stack.enter_context(PoolWhatsAppRig(workdir / f"wa-{i}", f"pool-wa-{i}", url))
            for i in (1, 2, 3)
        ]
        self.sms = [
            stack.enter_context(PoolSmsRig(workdir / f"sms-{i}", f"pool-sms-{i}", url))
            for i in (1, 2)
        ]
        self.pool = Pool(workdir, [*self.wa, *self.sms], queue)
        self.counts: Counter = Counter()  # kills, database restarts, logouts
        self.caught: list[tuple[Rig, dict]] = []  # (sender, row) left `sending` after a click
        self.out: list[tuple[Rig, int]] = []  # logged out now, and the progress then
        self.not_on_wa: set[str] = set()

    def remove_server(self) -> None:
        log = Path(self.server.folder) / "log"
        if log.exists():
            shutil.copyfile(log, self.workdir / "postgres.log")
        self.server.remove()

    def queue_job(self) -> None:
        """One job of `messages` numbers, a fifth of them not on any WhatsApp stand-in."""
        phones = [f"+1415555{1000 + i:04d}" for i in range(self.size.messages)]
        self.not_on_wa = {digits(p) for p in self.rng.sample(phones, len(phones) // 5)}
        for rig in self.wa:
            rig.standin.set_invalid(self.not_on_wa)
        template = compile_template(TEMPLATE)
        recipients = [
            Recipient(
                phone=p,
                text=template.fill({"label": "pool", "i": f"{i:03d}", "phone": p}),
                channel="whatsapp",
            )
            for i, p in enumerate(phones)
        ]
        job, _ = self.pool.queue.create_job(
            NewJob(channel="whatsapp_then_sms", template=TEMPLATE, name="pool"), recipients
        )
        self.pool.job_ids.append(job["id"])

    def run(self) -> Result:
        self.queue_job()
        for rig in self.pool.rigs:
            rig.start()
        guarded(self.result, self.strikes)
        self.finish()
        return self.result

    def strikes(self) -> None:
        for strike, action in pool_plan(self.rng, self.size):
            self.check_alive(f"before {action} at {strike.at}")
            if action == "login":
                self.login(strike)
                continue
            # A moment is a row of a sender logged in; at a random moment, `victim` is hit.
            logged_in = [r for r in self.pool.rigs if r not in self.logged_out()]
            targets = [r for r in logged_in if r in self.wa] if action == "logout" else logged_in
            victim = self.rng.choice(targets if action == "logout" else self.pool.rigs)
            row = await_moment(self.pool.aiming_at(targets, stuck=self.login_all), strike)
            holder = self.pool.by_id(row["claimed_by"]) if row else None
            self.journal(f"{action} of {(holder or victim).worker_id}")
            getattr(self, action)(strike, row, holder or victim)
            self.counts[action] += 1
            self.result.faults += 1

    def logged_out(self) -> list[Rig]:
        return [rig for rig, _ in self.out]

    def journal(self, line: str) -> None:
        self.pool.journal(line)

    # --- the faults ------------------------------------------------------------------------

    def kill(self, strike: Strike, row: dict | None, rig: Rig) -> None:
        """SIGKILL the worker's group and restart it, as systemd would."""
        rig.kill()
        if strike.kind == "mid_send" and rig.status(row) == "sending":
            self.caught.append((rig, row))
        self.pool.normal()
        rig.start()

    def database(self, strike: Strike, row: dict | None, rig: Rig) -> None:
        """Stop the server at once (as a crash) and start it again; no worker may exit.

        The first outage and every second one last longer than a worker waits for a pooled
        connection (POOL_TIMEOUT in message_queue/pg.py), so its statements fail with
        DatabaseUnavailable and it must wait and retry; the others may end within that wait.
        `rig`'s worker is also killed while the server is down and restarted at once: it must
        start without the database and wait for it too.
        """
        self.server.stop()
        down = self.rng.uniform(*LONG_OUTAGE if self.counts["database"] % 2 == 0 else SHORT_OUTAGE)
        until = time.monotonic() + down
        self.journal(f"database down for {down:.1f} s, {rig.worker_id} restarted meanwhile")
        rig.kill()
        rig.start()
        while time.monotonic() < until:
            self.check_alive("while the database was down")
            time.sleep(0.1)
        self.server.start()
        self.check_alive("while the database was down")
        self.pool.normal()
        self.journal("database back")

    def logout(self, strike: Strike, row: dict | None, rig: Rig) -> None:
        """Log the account out; the others keep sending, and what it left `sending` waits
        for it (checked when it is back in)."""
        rig.standin.logout()
        self.pool.normal()
        self.out.append((rig, self.pool.progress()))
        wait_until(
            lambda: rig.worker_state() == "qr_required",
            PROGRESS_WAIT,
            f"{rig.worker_id} to ask for the QR scan",
            interval=0.1,
            details=self.pool.details,
        )
        if row is not None and rig.status(row) == "sending":
            self.caught.append((rig, row))

    def login(self, strike: Strike) -> None:
        """Once the other senders sent more (or have nothing left), log the account back in."""
        if not self.out:  # logged back in early by login_all
            return
        rig, before = self.out.pop(0)

        def others_went_on():
            if self.pool.progress() >= max(strike.at, before + 1):
                return True
            job = self.pool.queue.get_job(self.pool.job_ids[0])
            return not (job["counts"]["pending"] or job["counts"]["retrying"])

        wait_until(
            others_went_on,
            PROGRESS_WAIT,
            f"the other senders to go on while {rig.worker_id} is logged out",
            interval=0.1,
            details=self.pool.details,
        )
        time.sleep(strike.delay)
        self.journal(f"login of {rig.worker_id} at {self.pool.progress()} arrived")
        rig.standin.login()

    def login_all(self, why: str = "all the job has left waits for it") -> None:
        """Log every account still out back in now."""
        for rig, _ in self.out:
            self.journal(f"login of {rig.worker_id}: {why}")
            rig.standin.login()
        self.out.clear()

    def check_alive(self, when: str) -> None:
        """Every worker runs: one that exited by itself is a broken promise (restarted here,
        so the run can still be reckoned)."""
        for rig in self.pool.rigs:
            code = rig.worker.proc.poll()
            if code is not None:
                self.result.problems.append(
                    f"{rig.worker_id} exited by itself ({code}) {when}: {rig.log_text()[-300:]!r}"
                )
                rig.kill()
                rig.start()

    # --- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Let the job complete, stop every worker with SIGTERM, count everything."""
        self.login_all("the plan is over")
        problem = self.result.problems.append
        try:
            wait_until(
                self.pool.all_done,
                FINISH,
                "the job to complete",
                interval=0.2,
                details=self.pool.details,
            )
        except AssertionError as exc:
            problem(str(exc).splitlines()[0])
        self.check_alive("at the end")
        for rig in self.pool.rigs:
            try:
                code = rig.terminate()
            except AssertionError as exc:
                problem(f"{rig.worker_id} ignored SIGTERM: {str(exc).splitlines()[0]}")
            else:
                if code != 0:
                    problem(f"{rig.worker_id} exited {code} on SIGTERM")
        self.result.extra.append(
            f"{self.counts['kill']} kills, {self.counts['database']} database restarts, "
            f"{self.counts['logout']} logouts"
        )
        reckon(self.result, self.pool, unknown_ok=True)
        reckon_variants(self.result, self.pool)
        self.reckon_senders()
        self.reckon_caught()
        self.reckon_logs()

    def reckon_senders(self) -> None:
        """Each row reached the stand-in of the sender that claimed it, and no other; what a
        sender recovered was its own; the numbers not on WhatsApp, only those, went by SMS."""
        got = {r.worker_id: Pool.arrivals_of(r) for r in self.pool.rigs}
        channel = {r.worker_id: r.channel for r in self.pool.rigs}
        rows = {r["id"]: r for j in self.pool.job_ids for r in self.pool.queue.iter_messages(j)}
        problem = self.result.problems.append
        for row in rows.values():
            key, sender = Pool.key(row), row["claimed_by"]
            where = f"message {row['id']} to {row['phone']}"
            receivers = sorted(w for w, counts in got.items() if counts[key])
            if receivers and receivers != [sender]:
                problem(f"{where}: claimed by {sender}, received by {', '.join(receivers)}")
            expected = "sms" if key[0] in self.not_on_wa else "whatsapp"
            if channel.get(sender) != expected:
                what, who = (
                    (" (not on WhatsApp)", "an SMS") if expected == "sms" else ("", "a WhatsApp")
                )
                problem(f"{where}{what} ended {row['status']} by {sender}, not by {who} sender")
            elif row["status"] == "unknown" and expected == "sms":
                problem(f"{where} is unknown on SMS, whose phone can always tell")
        for rig in self.pool.rigs:
            for mid, verdict in re.findall(r"recovered message (\d+): (\w+)", rig.log_text()):
                owner = rows[int(mid)]["claimed_by"]
                if verdict != "not_sent" and owner != rig.worker_id:
                    problem(f"{rig.worker_id} recovered message {mid} ({verdict}), {owner}'s")
        senders = Counter(row["claimed_by"] for row in rows.values())
        self.result.extra.append(
            "sent by " + ", ".join(f"{w} {n}" for w, n in sorted(senders.items(), key=str))
        )

    def reckon_caught(self) -> None:
        """A row left `sending` by a kill after the click or by a logout was checked by the
        sender that left it, once back, and by no other."""
        settled = 0
        for rig, row in self.caught:
            line = f"recovered message {row['id']}: "
            others = [r.worker_id for r in self.pool.rigs if r is not rig and line in r.log_text()]
            # Its sender checked it once back, or knew at once that nothing went (a logout
            # before the click: `-> release`), and gave it back for any sender to take.
            mine = line in rig.log_text() or bool(
                re.search(rf"message {row['id']}: .* -> (release|retry|fail)\b", rig.log_text())
            )
            settled += mine and not others
            if not mine:
                self.result.problems.append(
                    f"message {row['id']}, left sending by {rig.worker_id}, was not checked by it"
                )
            if others:
                self.result.problems.append(
                    f"message {row['id']}, left sending by {rig.worker_id}, checked by {others}"
                )
        self.result.extra.append(
            f"{settled}/{len(self.caught)} left sending after the click or a logout "
            "settled by their own sender"
        )

    def reckon_logs(self) -> None:
        """What the workers' logs say about the outages: who waited, nobody gave up."""
        waited = [r.worker_id for r in self.pool.rigs if "database unavailable" in r.log_text()]
        for rig in self.pool.rigs:
            if "cannot use the database" in rig.log_text():
                self.result.problems.append(f"{rig.worker_id} gave up on the database")
        if self.counts["database"]:
            self.result.extra.append(
                f"{len(waited)}/{len(self.pool.rigs)} workers saw the database gone and waited"
            )


def pool_postgres(workdir: Path, size: PoolSize, rng: random.Random) -> Result:
    """Three WhatsApp and two SMS senders on one job on PostgreSQL, through kills, database
    restarts and a logout: every message exactly once, each by the sender that claimed it."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        return PoolRun(workdir, size, rng, stack).run()
