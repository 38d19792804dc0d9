"""Where POST /send's time goes, stage by stage, timed without a profiler (no distortion).

Times are CPU seconds of this process (time.process_time), the median of 3 rounds: on a
shared machine, wall time also counts other tenants' work.

Each stage is the product's own function, called in-process on the same 100,000-row CSV in
the order the view calls it; the bare `phonenumbers` calls the floor makes are timed beside
`normalize_phone` so its extra work shows. Whatever the stages do not add up to is HTTP,
multipart parsing and Flask.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .common import TEMPLATE


def _timed(stages: list, name: str, fn, *args):
    start = time.process_time()
    value = fn(*args)
    stages.append((name, time.process_time() - start))
    return value


def stages(data: bytes, rounds: int = 3) -> list[tuple[str, float]]:
    """(stage, CPU seconds), median of `rounds`, for each step and the reference timings."""
    runs = [one_round(data) for _ in range(rounds)]
    return [(name, statistics.median(r[i][1] for r in runs)) for i, (name, _) in enumerate(runs[0])]


def one_round(data: bytes) -> list[tuple[str, float]]:
    import phonenumbers

    from api.careful import Careful
    from message_queue import NewJob, Queue
    from utils.contacts import parse_contacts_file
    from utils.phones import normalize_phone
    from utils.recipients import build_recipients, check_template
    from utils.template import render

    out: list[tuple[str, float]] = []
    contacts = _timed(
        out, "parse_contacts_file (CSV -> rows)", parse_contacts_file, data, "contacts.csv"
    )
    _timed(out, "check_template", check_template, TEMPLATE, contacts.columns)
    built = _timed(
        out,
        "build_recipients (normalise + de-duplicate + render)",
        build_recipients,
        [contacts],
        TEMPLATE,
        "whatsapp",
        None,
    )
    request_hash = _request_hash()
    if request_hash is not None:
        _timed(
            out,
            "_request_hash (sha256 of every recipient)",
            request_hash,
            "whatsapp",
            TEMPLATE,
            "bench",
            built,
            None,
            Careful(),
            (),
        )
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        queue = Queue(Path(tmp) / "queue.db")
        _timed(
            out,
            "Queue.create_job (one transaction)",
            queue.create_job,
            NewJob(channel="whatsapp", template=TEMPLATE, name="bench"),
            built.recipients,
        )
        queue.close()
    raws = [c.phone for c in contacts.contacts]
    rows = [c.variables for c in contacts.contacts]
    ref = [
        ("  of which normalize_phone alone", lambda: [normalize_phone(p, None) for p in raws]),
        ("  of which render alone", lambda: [render(TEMPLATE, v) for v in rows]),
        (
            "  floor's phonenumbers parse + is_valid + format alone",
            lambda: [
                phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
                for n in (phonenumbers.parse(p, None) for p in raws)
                if phonenumbers.is_valid_number(n)
            ],
        ),
    ]
    for name, fn in ref:
        _timed(out, name, fn)
    return out


def _request_hash():
    """The view's idempotency hash, if the module still has it (others edit api/send.py)."""
    try:
        from api import send
    except ImportError:
        return None
    return getattr(send, "_request_hash", None)
