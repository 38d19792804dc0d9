"""POST /preview: what POST /send would queue, shown before anything is queued.

Same inputs, same validation and the same problem+json errors as /send (both go through
`send_request.read_send_request`), but nothing is written: no job, no row, no stored attachment.
The /app page calls it while the user picks a file and writes the message.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from message_queue import Recipient, job_channel
from utils.bulk import collector_paused
from utils.contacts import ContactList
from utils.pacing import Delays, Limits
from utils.sms import sms_encoding, sms_length, sms_parts
from utils.template import compile_template

from .send_request import read_send_request
from .views import iso

bp = Blueprint("preview", __name__)
PREVIEW_ROWS = 20
PREVIEW_MESSAGES = 5
MAX_REJECTED = 1000  # the page lists them; /send reports every one
VARIANT_EXAMPLES = 3


@bp.post("/preview")
@collector_paused()
def preview():
    """The parsed list, the rejected rows and the first rendered messages; writes nothing."""
    settings = current_app.config["SETTINGS"]
    req = read_send_request(settings, allow_empty_message=True)
    built, lists = req.built, req.lists
    delays = Delays.for_channel(settings, req.channel)
    per_message = delays.seconds_per_message()
    careful = req.careful
    limits = Limits.for_job(settings, req.channel, careful.daily_cap, careful.hourly_cap)
    reasons = {r["row"]: r["reason"] for r in built.rejected}
    queued = {r.row: r.phone for r in built.recipients}
    columns = list(dict.fromkeys(c for cl in lists for c in cl.columns))
    rows: list[dict] = []
    for contact in (c for cl in lists for c in cl.contacts):
        if len(rows) == PREVIEW_ROWS:
            break
        rows.append(
            {
                "row": contact.row,
                "phone": contact.phone,
                "normalized": queued.get(contact.row),
                "status": reasons.get(contact.row, "ok"),
                "values": {c: contact.variables.get(c, "") for c in columns},
            }
        )
    with_text = bool(req.template.strip())
    texts = [r.text for r in built.recipients] if with_text else []
    return {
        "channel": req.channel,
        "name": req.name,
        "columns": columns,
        "placeholders": columns + ([] if "phone" in columns else ["phone"]),
        "headers": lists[0].headers,
        "phone_column": lists[0].phone_column,
        "rows": rows,
        "total": len(built.recipients),
        "rejected": built.rejected[:MAX_REJECTED],
        "rejected_total": len(built.rejected),
        # `characters` as SMS counts them (an emoji is two), so it matches `sms_parts`.
        "previews": [
            {
                "row": r.row,
                "phone": r.phone,
                "name": r.name,
                "text": r.text,
                "characters": sms_length(r.text),
                "sms_parts": sms_parts(r.text),
            }
            for r in built.recipients[:PREVIEW_MESSAGES]
        ]
        if with_text
        else [],
        # How many texts the message's {a|b} choices allow one recipient (1 without any;
        # capped at spintax.MAX_VARIANTS), and a few of them, for the first recipient.
        "variants": compile_template(req.template).variants if with_text else 1,
        "variant_examples": (
            _variant_examples(req.template, built.recipients[0], lists) if with_text else []
        ),
        "sms": _sms_summary(texts) if job_channel(req.channel).uses_sms else None,
        "attachment": (
            {"filename": req.attachment.original_name, "bytes": len(req.attachment.data)}
            if req.attachment
            else None
        ),
        "pacing": delays.describe(),
        # The caps (the sender's, lowered by the job's own) and the send window make a big
        # list take days: said before the start, so the defaults never surprise anyone.
        "estimate_seconds": limits.seconds(len(built.recipients), per_message),
        "estimate": limits.describe(len(built.recipients), per_message),
        "limits": {
            "daily_cap": limits.daily or None,
            "hourly_cap": limits.hourly or None,
            "send_window": settings.send_window or None,
        },
        "send_at": iso(req.careful.send_at),
    }


def _variant_examples(template: str, first: Recipient, lists: list[ContactList]) -> list[str]:
    """Up to VARIANT_EXAMPLES different texts the choices give `first`, filled as /send
    fills its placeholders (one text without choices)."""
    cells = next((c.variables for cl in lists for c in cl.contacts if c.row == first.row), {})
    compiled = compile_template(template)
    variables = {name: cells.get(name, "") for name in compiled.counts}
    # {phone} as build_recipients fills it: the number as written in a "phone" column, else
    # the E.164 number.
    variables["phone"] = cells.get("phone", first.phone)
    return compiled.examples(variables, VARIANT_EXAMPLES)


def _sms_summary(texts: list[str]) -> dict | None:
    """What the costliest text takes (what a job's sms_parts says) and the parts in all."""
    if not texts:
        return None
    parts = [sms_parts(t) for t in texts]
    worst = max(range(len(texts)), key=parts.__getitem__)
    return {
        "encoding": sms_encoding(texts[worst]),
        "parts": parts[worst],
        "characters": sms_length(texts[worst]),
        "total_parts": sum(parts),
    }
