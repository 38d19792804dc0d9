"""4b. The worker as a service: idle CPU, POST /send to first message, memory over many sends.

One stand-in, one API (gunicorn) and one `run_worker.py` process on one database, as deployed,
every pacing delay at 0. The worker's process tree (worker, ChromeDriver, Chromium and its
helpers) is measured with psutil. Idle CPU has a floor beside it: a bare Chromium sitting on
the same stand-in page, which waits for news on one held request as the real page does on its
websocket.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psutil
import requests

from .common import API_KEY, ROOT, median, phone, say, wait_for
from .procs import ApiServer, Standin, WorkerProcess

GOAL_IDLE_CPU, GOAL_FIRST_S = 1.0, 2.0


def cpu_percent(tree_of, seconds: float) -> dict:
    """CPU of a process tree over `seconds`, in % of one core, in total and per role."""

    def times():
        out = {}
        for p in tree_of():
            try:
                t = p.cpu_times()
                out[p.pid] = (t.user + t.system, _role(p))
            except psutil.NoSuchProcess:
                pass
        return out

    before = times()
    time.sleep(seconds)
    after = times()
    roles: dict[str, float] = {}
    for pid, (t, role) in after.items():  # processes born meanwhile count from zero
        used = t - before.get(pid, (0.0, role))[0]
        roles[role] = roles.get(role, 0.0) + used / seconds * 100
    return {"percent": sum(roles.values()), "processes": len(after), "roles": roles}


def _role(p: psutil.Process) -> str:
    """worker (Python), chromedriver, or Chromium's process type (browser, renderer, gpu...)."""
    cmd = p.cmdline()
    exe = Path(cmd[0]).name if cmd else p.name()
    if "python" in exe:
        return "worker (python)"
    if "chromedriver" in exe:
        return "chromedriver"
    kind = next((a.split("=", 1)[1] for a in cmd if a.startswith("--type=")), "browser")
    sub = next(
        (a.split("=", 1)[1].split(".")[0] for a in cmd if a.startswith("--utility-sub-type=")), ""
    )
    return f"chromium {kind}" + (f" ({sub})" if sub else "")


def memory_mb(tree) -> dict:
    """Memory of a process tree: USS (pages only it holds: what a leak grows), PSS (shared
    pages split between all their users, so it moves when other Chromiums on the machine
    come and go) and RSS summed (shared pages counted once per process)."""
    rss = pss = uss = 0
    for p in tree:
        try:
            info = p.memory_full_info()
            rss, pss, uss = rss + info.rss, pss + info.pss, uss + info.uss
        except psutil.NoSuchProcess:
            pass
    return {
        "uss_mb": uss / 2**20,
        "pss_mb": pss / 2**20,
        "rss_mb": rss / 2**20,
        "processes": len(tree),
    }


def idle_floor(standin: Standin, seconds: float, settle: float) -> dict:
    """A bare Chromium (same build and flags) logged in on the stand-in page, doing nothing."""
    from worker.whatsapp.browser import build_driver

    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        driver = build_driver(profile_dir=f"{tmp}/profile")
        try:
            driver.get(standin.url)
            time.sleep(settle)  # the same settling time the worker gets before it is measured
            root = psutil.Process(driver.service.process.pid)
            return cpu_percent(lambda: [root, *root.children(recursive=True)], seconds)
        finally:
            driver.quit()


def post(api: ApiServer, numbers: list[str], name: str) -> dict:
    response = requests.post(
        api.url + "/send",
        headers={"X-API-Key": API_KEY},
        timeout=60,
        json={"message": "Hello {phone}", "numbers": numbers, "name": name},
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST /send answered {response.status_code}: {response.text[:300]}")
    return response.json()


def first_message_latency(api: ApiServer, standin: Standin, digits: str, name: str) -> float:
    """Seconds from the start of POST /send to the stand-in receiving the message."""
    start = time.time()
    post(api, ["+" + digits], name)
    arrived = wait_for(
        lambda: [m for m in standin.messages() if m["phone"] == digits],
        30,
        "the first message",
        0.01,
    )
    return arrived[0]["at"] - start


def sent_count(api: ApiServer, job_id: str) -> int:
    job = requests.get(
        f"{api.url}/status/{job_id}", headers={"X-API-Key": API_KEY}, timeout=10
    ).json()
    return job["counts"]["sent"] + job["counts"]["delivered"]


def memory_over(api, standin, worker, n: int, every: int) -> list[dict]:
    """Send `n` messages as one job; the tree's memory before and after every `every` sends.

    The stand-in forgets its messages at each sample: its page lists every chat it has seen,
    and a page that grows with the fake server's history is not the product's memory.
    """
    job = post(api, [phone(500_000 + i) for i in range(n)], "memory")
    samples = [{"sent": 0, **memory_mb(worker.tree())}]
    started = time.monotonic()
    for target in range(every, n + 1, every):
        wait_for(
            lambda target=target: sent_count(api, job["job_id"]) >= target,
            120 + every * 3,
            f"{target} messages sent",
            0.2,
        )
        samples.append(
            {"sent": target, "seconds": time.monotonic() - started, **memory_mb(worker.tree())}
        )
        standin.reset()
    return samples


def run(quick: bool) -> dict:
    idle_s = 6.0 if quick else 20.0
    n, every = (40, 10) if quick else (1_000, 100)
    recycle = 20 if quick else 300  # 300 is BROWSER_RECYCLE_AFTER's default
    settle = 2.0 if quick else 5.0
    result = {"idle_seconds": idle_s, "n": n, "every": every, "recycle_after": recycle}
    with (
        Standin(logged_in=True, tick_delay=0) as standin,
        tempfile.TemporaryDirectory(prefix="bench-service-") as tmp,
    ):
        say(f"service: idle floor (bare Chromium on the stand-in, {idle_s:g} s)")
        result["idle_floor"] = idle_floor(standin, idle_s, settle)
        db = str(Path(tmp) / "queue.db")
        with (
            ApiServer(Path(tmp), db) as api,
            WorkerProcess(
                Path(tmp),
                database_path=db,
                whatsapp_web_url=standin.url,
                chrome_profile_dir=f"{tmp}/profile",
                worker_id="bench-worker",
                selectors_file=str(ROOT / "worker" / "selectors.json"),
                min_delay=0,
                max_delay=0,
                long_pause_every=0,
                long_pause_min=0,
                long_pause_max=0,
                browser_recycle_after=recycle,
                # 1,000 messages from one sender in minutes: far past the careful defaults
                # (60 an hour), which this measures nothing of.
                whatsapp_hourly_cap=0,
                whatsapp_daily_cap=0,
            ) as worker,
        ):
            wait_for(lambda: _logged_in(api), 90, "the worker to log in", 0.2)
            time.sleep(settle)  # past the log-in's own work
            say(f"service: worker idle CPU ({idle_s:g} s)")
            result["idle"] = cpu_percent(worker.tree, idle_s)
            result["idle_memory"] = memory_mb(worker.tree())
            say("service: POST /send -> first message at the stand-in")
            latencies = []
            for i in range(3 if quick else 7):
                latencies.append(
                    first_message_latency(api, standin, f"55119{70_000_000 + i}", f"first-{i}")
                )
                time.sleep(0.37 * (i % 3))  # land the next POST at another point of idle_poll
            result["first_message_s"] = latencies
            say(f"service: memory over {n} messages")
            result["memory"] = memory_over(api, standin, worker, n, every)
    result["first_message_median_s"] = median(result["first_message_s"])
    mem = result["memory"]
    result["goals"] = {
        "idle_cpu": result["idle"]["percent"] < GOAL_IDLE_CPU,
        "first_message": result["first_message_median_s"] < GOAL_FIRST_S,
        # Flat: the peaks of the last samples are no higher than those of the first + 15 %.
        "memory_flat": max(m["uss_mb"] for m in mem[-3:])
        <= max(m["uss_mb"] for m in mem[1:4]) * 1.15,
    }
    return result


def _logged_in(api: ApiServer) -> bool:
    workers = requests.get(api.url + "/session", headers={"X-API-Key": API_KEY}, timeout=10).json()
    return any(w.get("state") == "logged_in" for w in workers.get("workers", []))
