"""Taking in one reply, from any channel: store it once, then honour STOP and START.

The webhook (api/hooks.py) and the workers' catch-up both come here, so a reply read twice is
stored once and a keyword is acted on once: only the call that created the row applies it.
"""

from __future__ import annotations

import logging

from utils.optout import OPT_IN, OPT_OUT, keyword_kind
from utils.phones import InvalidPhone, normalize_phone

log = logging.getLogger("replies")

SENDER_MAX = 64  # a number or an alphanumeric sender id ("VIVO", "MyBank") is far shorter


def contact_key(sender: str, default_country: str | None) -> str:
    """The conversation key for a sender: E.164 when it is a number, else the sender as given.

    Alphanumeric senders (a carrier, a bank) are not numbers, yet their messages must not be
    lost: they keep their own conversation under the name they came with.
    """
    raw = (sender or "").strip()[:SENDER_MAX]
    try:
        return normalize_phone(raw, default_country or None)
    except InvalidPhone:
        return raw


def take_inbound(
    queue,
    settings,
    *,
    phone: str,
    channel: str,
    sender: str,
    text: str,
    received_at: float,
    kind: str = "text",
    provider_id: str | None = None,
) -> bool:
    """Record one reply; True when it was new (a copy already stored changes nothing).

    `phone` is who wrote (normalised here), `sender` the account or phone that received it.
    A new reply that is, as a whole, an opt-out or opt-in keyword is applied at once.
    """
    number = contact_key(phone, settings.default_country)
    if not number:
        raise ValueError("a reply needs the number it came from")
    keyword = None
    if kind == "text" and number.startswith("+"):
        keyword = keyword_kind(text, settings.opt_out_keywords, settings.opt_in_keywords)
    # The keyword is applied in the same write that stores the reply: never one without the
    # other, even when the database goes away between two statements.
    inbound_id, created = queue.record_inbound(
        number,
        channel,
        sender,
        text,
        received_at,
        kind=kind,
        provider_id=provider_id,
        keyword=keyword,
    )
    if keyword == OPT_OUT:
        if created:
            log.info("opt-out by %s reply from %s (reply %s)", channel, number, inbound_id)
        # Once per opt-out, whatever the retries: a copy stored by a call that failed before
        # it confirmed (an outage) is confirmed by the retry.
        if settings.opt_out_confirmation:
            queue.queue_confirmation(number, settings.opt_out_confirmation, channel)
    elif keyword == OPT_IN and created:
        log.info("opt-in by %s reply from %s", channel, number)
    return created
