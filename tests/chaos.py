"""Chaos runs: kill, log out, cut off and restart things mid-job, then check the promise.

    python -m tests.chaos [--quick] [--scenario NAME ...] [--seed N] [--keep]

Each scenario runs real processes (`run_worker.py`, gunicorn) against the local stand-ins on a
throw-away database, then compares what the stand-ins received with the rows: every recipient
exactly once or accounted for as `unknown`, no row left open, every job completed, integrity
ok. One summary line per scenario; exit 1 when any scenario broke the promise. The moments of
the faults come from one seeded random source: `--seed` replays a run's plan (the timings of
the machine itself are not replayed).
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests import chaos_pool
from tests.chaos_api import api_restart
from tests.chaos_rigs import SEND_TIMEOUT, Rig, SmsRig, WhatsAppRig
from tests.chaos_support import (
    FINISH,
    PROGRESS_WAIT,
    Result,
    await_moment,
    finish,
    guarded,
    plan,
    reckon_found_in_chat,
)
from tests.wa_e2e_support import kill_all, processes_with, wait_until
from worker.whatsapp.browser import BrowserUnavailable, find_chrome


@dataclass(frozen=True)
class Size:
    messages: int
    faults: int
    send_timeout: float = SEND_TIMEOUT


# --- the scenarios -----------------------------------------------------------------------


def kill_worker(rig: Rig, name: str, size: Size, rng: random.Random) -> Result:
    """SIGKILL the worker's process group at random moments and restart it each time.

    On WhatsApp, each message the kill left `sending` after its click must then be found in
    the chat (its own variant of the text), never sent again.
    """
    result = Result(name, "kills")
    rig.queue_job(size.messages, name)
    rig.start()
    caught: list[dict] = []  # killed after the click, before the tick

    def strikes():
        for strike in plan(rng, size.faults, size.messages):
            row = await_moment(rig, strike)
            rig.kill()
            result.faults += 1
            # The tick may have come between the moment and the kill: then nothing is left.
            if strike.kind == "mid_send" and rig.status(row) == "sending":
                caught.append(row)
            rig.normal()
            rig.start()

    guarded(result, strikes)
    finish(result, rig)
    if isinstance(rig, WhatsAppRig):
        reckon_found_in_chat(result, rig, caught)
    return result


def whatsapp_kill(workdir: Path, size: Size, rng: random.Random) -> Result:
    with WhatsAppRig(workdir) as rig:
        return kill_worker(rig, "whatsapp-kill", size, rng)


def sms_kill(workdir: Path, size: Size, rng: random.Random) -> Result:
    with SmsRig(workdir) as rig:
        return kill_worker(rig, "sms-kill", size, rng)


def whatsapp_freeze(workdir: Path, size: Size, rng: random.Random) -> Result:
    """SIGSTOP the worker's Chromium mid-job: it neither dies nor answers, as when it hangs.

    The worker must give up on it, kill it (a stopped browser ignores quit and keeps the
    profile locked) and send on from a new one on the same profile.
    """
    result = Result("whatsapp-freeze", "freezes")
    with WhatsAppRig(workdir) as rig:
        rig.queue_job(size.messages, result.name)
        rig.start()

        def strikes():
            for strike in plan(rng, size.faults, size.messages):
                await_moment(rig, strike)
                frozen = processes_with(rig.profile)
                if not frozen:  # between two browsers: nothing to freeze this time
                    rig.normal()
                    continue
                kill_all(frozen, signal.SIGSTOP)
                result.faults += 1
                rig.normal()
                wait_until(
                    lambda frozen=frozen: set(processes_with(rig.profile)) - set(frozen),
                    PROGRESS_WAIT,
                    "a new Chromium on the same profile",
                    details=rig.details,
                )
                if set(processes_with(rig.profile)) & set(frozen):
                    result.problems.append(
                        f"freeze {result.faults}: the frozen Chromium was left running"
                    )

        guarded(result, strikes)
        finish(result, rig)
    return result


def whatsapp_logout(workdir: Path, size: Size, rng: random.Random) -> Result:
    """Log the stand-in out mid-job; log back in once the worker asks for the QR scan."""
    result = Result("whatsapp-logout", "logouts")
    with WhatsAppRig(workdir) as rig:
        job_id = rig.queue_job(size.messages, result.name)
        rig.start()

        def strikes():
            for strike in plan(rng, size.faults, size.messages):
                await_moment(rig, strike)
                rig.standin.logout()
                result.faults += 1
                rig.normal()
                wait_until(
                    lambda: rig.worker_state() == "qr_required",
                    PROGRESS_WAIT,
                    "the worker to ask for the QR scan",
                    details=rig.details,
                )
                if rig.queue.get_job(job_id)["status"] != "waiting_for_login":
                    result.problems.append(
                        f"logout {result.faults}: the job is "
                        f"{rig.queue.get_job(job_id)['status']}, "
                        "not waiting_for_login"
                    )
                time.sleep(rng.uniform(0, 1.5))
                rig.standin.login()

        guarded(result, strikes)
        finish(result, rig)
    return result


def sms_gateway_down(workdir: Path, size: Size, rng: random.Random) -> Result:
    """Make the phone unreachable mid-job; bring it back once the worker showed it."""
    result = Result("sms-gateway-down", "outages")
    with SmsRig(workdir, send_timeout=size.send_timeout) as rig:
        job_id = rig.queue_job(size.messages, result.name)
        rig.start()

        def parked():
            return rig.queue.get_job(job_id)["status"] == "waiting_for_gateway" and rig.in_state(
                "gateway_down"
            )

        def strikes():
            for strike in plan(rng, size.faults, size.messages):
                await_moment(rig, strike)
                rig.gateway.refuse_connections(True)
                result.faults += 1
                try:
                    # A message followed on the phone is followed up to SEND_TIMEOUT first.
                    wait_until(
                        parked,
                        size.send_timeout + 30,
                        "the job to wait for the gateway",
                        details=rig.details,
                    )
                    time.sleep(rng.uniform(0.2, 2.0))
                finally:
                    rig.normal()
                    rig.gateway.refuse_connections(False)

        guarded(result, strikes)
        finish(result, rig)
    return result


def sigterm(workdir: Path, size: Size, rng: random.Random) -> Result:
    """SIGTERM mid-send on both channels: the message is finished and the worker exits 0."""
    result = Result("sigterm", "SIGTERMs")
    finished: list[bool] = []
    for rig_class in (WhatsAppRig, SmsRig):
        with rig_class(workdir / rig_class.channel) as rig:
            rig.queue_job(size.messages, f"sigterm {rig.channel}")
            rig.start()

            def strikes(rig=rig):
                for strike in plan(rng, size.faults, size.messages, kinds=("mid_send",)):
                    row = await_moment(rig, strike)
                    finished.append(_terminate_mid_send(rig, row, result))
                    rig.start()

            guarded(result, strikes)
            finish(result, rig)
    result.extra.append(
        f"{sum(finished)}/{result.faults} in-flight messages finished"
        + (", exit 0 each" if result.ok else "")
    )
    return result


def _terminate_mid_send(rig: Rig, row: dict, result: Result) -> bool:
    """SIGTERM the worker while `row` is in flight; True when that message ended sent."""
    code = rig.terminate()
    result.faults += 1
    rig.normal()
    status = next(
        r["status"] for r in rig.queue.iter_messages(row["job_id"]) if r["id"] == row["id"]
    )
    where = f"{rig.channel} SIGTERM {result.faults}"
    if code != 0:
        result.problems.append(f"{where}: the worker exited {code}")
    if status not in ("sent", "delivered"):
        result.problems.append(f"{where}: the message in flight ended {status}")
    if rig.sending():
        result.problems.append(f"{where}: rows left sending after the exit")
    if rig.worker_state() != "stopped":
        result.problems.append(f"{where}: the worker shows {rig.worker_state()}, not stopped")
    return status in ("sent", "delivered")


def whatsapp_replies(workdir: Path, size: Size, rng: random.Random) -> Result:
    """Replies pour into the worker's WhatsApp while it sends, and it is killed halfway.

    Reading them happens between sends, so every campaign message must still arrive once,
    nothing may go to the people who wrote, and every reply must be stored once, also when
    the restarted worker reads the same chats again.
    """
    result = Result("whatsapp-replies", "replies")
    writers = [f"+1415666{2000 + i:04d}" for i in range(size.faults)]
    with WhatsAppRig(workdir) as rig:
        rig.queue_job(size.messages, "replies")
        rig.start()

        def strikes():
            for i, phone in enumerate(writers):
                due = (i + 1) * size.messages // (len(writers) + 2)
                wait_until(
                    lambda due=due: rig.progress() >= due,
                    PROGRESS_WAIT,
                    f"{due} messages at the stand-in",
                    details=rig.details,
                )
                rig.standin.incoming(phone, f"reply {i} {rng.choice('✓🙏ok')}")
                result.faults += 1
                if i == len(writers) // 2:
                    rig.kill()  # the restarted worker opens the same chats again
                    rig.normal()
                    rig.start()

        guarded(result, strikes)
        wait_until(
            lambda: len(_stored_replies(rig)) >= len(writers),
            FINISH,
            "every reply stored",
            details=rig.details,
        )
        finish(result, rig)
        _reckon_replies(result, rig, writers)
    return result


def _stored_replies(rig: Rig) -> list[tuple[str, str]]:
    rows = rig.queue.db.connection().execute("SELECT phone, text FROM inbound").fetchall()
    return [(r["phone"], r["text"]) for r in rows]


def _reckon_replies(result: Result, rig: Rig, writers: list[str]) -> None:
    stored = Counter(_stored_replies(rig))
    twice = [key for key, n in stored.items() if n > 1]
    lost = sorted(set(writers) - {phone for phone, _ in stored})
    writer_digits = {w.lstrip("+") for w in writers}
    sent_to_writers = [k for k in rig.arrivals() if str(k[0]).lstrip("+") in writer_digits]
    if twice:
        result.problems.append(f"replies stored twice: {twice[:5]}")
    if lost:
        result.problems.append(f"replies never stored: {lost[:5]}")
    if sent_to_writers:
        result.problems.append(f"messages sent to people who only wrote: {sent_to_writers[:5]}")
    result.extra.append(f"{len(stored)} replies stored, each once")


# name -> (function, full size, --quick size, needs the browser)
SCENARIOS = {
    "whatsapp-kill": (whatsapp_kill, Size(300, 100), Size(20, 3), True),
    "sms-kill": (sms_kill, Size(300, 100), Size(25, 4), False),
    "whatsapp-freeze": (whatsapp_freeze, Size(100, 5), Size(12, 1), True),
    "whatsapp-logout": (whatsapp_logout, Size(300, 5), Size(15, 2), True),
    "sms-gateway-down": (sms_gateway_down, Size(300, 5), Size(16, 2, send_timeout=4), False),
    "api-restart": (api_restart, Size(300, 10), Size(24, 3), False),
    "sigterm": (sigterm, Size(100, 10), Size(8, 1), True),
    "whatsapp-replies": (whatsapp_replies, Size(100, 30), Size(16, 6), True),
    "pool-postgres": (chaos_pool.pool_postgres, chaos_pool.FULL, chaos_pool.QUICK, True),
}


def run_scenario(name: str, workdir: Path, seed: int, quick: bool = False) -> Result:
    """Run one scenario in `workdir` with its own random source derived from `seed`."""
    function, full, short, _ = SCENARIOS[name]
    started = time.monotonic()
    result = function(workdir, short if quick else full, random.Random(f"{seed}:{name}"))
    result.seconds = time.monotonic() - started
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, well under a minute each"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument("--seed", type=int, help="replay the fault plan of an earlier run")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep databases and logs even "
        "when everything held (they are always kept on a failure)",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    names = args.scenario or list(SCENARIOS)
    if any(SCENARIOS[n][3] for n in names):
        try:
            find_chrome()
        except BrowserUnavailable as exc:
            print(f"chaos: the WhatsApp scenarios need Chromium: {exc}", file=sys.stderr)
            return 2
    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    print(
        f"chaos: seed {seed}{' (quick)' if args.quick else ''}; scenarios: {', '.join(names)}; "
        f"work in {root}",
        flush=True,
    )
    broken = []
    for name in names:
        try:
            result = run_scenario(name, root / name, seed, args.quick)
        except Exception as exc:  # a rig that cannot start: report it, go on with the others
            result = Result(name, "faults", problems=[f"crashed: {exc!r}"])
        print(result.line(), flush=True)
        if not result.ok:
            broken.append(name)
            for problem in result.problems[:20]:
                print(f"    {problem}", file=sys.stderr)
    if broken:
        replay = " ".join(f"--scenario {n}" for n in broken)
        print(
            f"chaos: BROKEN in {', '.join(broken)}; logs in {root}; replay: python -m "
            f"tests.chaos{' --quick' if args.quick else ''} --seed {seed} {replay}",
            file=sys.stderr,
        )
        return 1
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
