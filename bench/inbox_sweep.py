"""The cost of reading replies in the browser path: one sweep of 30 unread WhatsApp chats.

The product's WhatsAppTransport in headless Chromium against the WhatsApp Web stand-in: 30
contacts write once each, then `poll_inbound` is called as the worker calls it between two
sends, until every reply is read. Reported: the seconds all polls took, per chat, and the
longest single poll, which is what one pause between two sends can grow by (the worker's
pacing is a minimum gap, so a poll shorter than MIN_DELAY costs the campaign nothing).

The stand-in runs in this process (threads); the time is the browser's and the page's.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from .common import API_KEY, ROOT, median, say, wait_for

CHATS = 30


def one_sweep(chats: int) -> dict:
    """Seconds and polls to read `chats` unread chats, each with one reply."""
    from config import Settings
    from message_queue import Queue
    from tests.wa_standin import StandinServer
    from worker import transport as t
    from worker.whatsapp import WhatsAppTransport

    with (
        tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp,
        StandinServer(tick_delay=0.05, logged_in=True) as wa,
    ):
        settings = Settings(
            api_key=API_KEY,
            database_path=str(Path(tmp) / "queue.db"),
            whatsapp_web_url=wa.url,
            chrome_profile_dir=str(Path(tmp) / "profile"),
            selectors_file=str(ROOT / "worker" / "selectors.json"),
            send_timeout=10,
            worker_id="bench-inbox",
        )
        Queue(settings.database_path).close()  # the schema the transport's lookups read
        transport = WhatsAppTransport(settings, threading.Event())
        try:
            wait_for(
                lambda: transport.check_session().state == t.LOGGED_IN,
                60,
                "WhatsApp Web to load",
                0.2,
            )
            for i in range(chats):
                wa.incoming(f"+1415777{i:04d}", f"reply {i}")
            polls, read = [], 0
            deadline = time.monotonic() + 120
            while read < chats and time.monotonic() < deadline:
                started = time.monotonic()
                read += len(transport.poll_inbound(None))
                polls.append(time.monotonic() - started)
        finally:
            transport.close()
    if read < chats:
        raise RuntimeError(f"only {read} of {chats} replies were read in 120 s")
    return {"seconds": sum(polls), "polls": len(polls), "longest": max(polls), "read": read}


def run(quick: bool = False) -> dict:
    """Sweep 30 unread chats once (--quick) or three times; medians."""
    sweeps = []
    for i in range(1 if quick else 3):
        say(f"inbox: sweep {i + 1} of {CHATS} unread chats")
        sweeps.append(one_sweep(CHATS))
    seconds = median([s["seconds"] for s in sweeps])
    return {
        "chats": CHATS,
        "sweeps": sweeps,
        "seconds": seconds,
        "per_chat_ms": seconds / CHATS * 1000,
        "longest_poll": median([s["longest"] for s in sweeps]),
        "polls": median([s["polls"] for s in sweeps]),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
