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
    inbound_id, created = queue.record_inbound(
        number, channel, sender, text, received_at, kind=kind, provider_id=provider_id
    )
    if created and kind == "text" and number.startswith("+"):
        _apply_keyword(queue, settings, number, channel, text, inbound_id)
    return created


def _apply_keyword(queue, settings, phone: str, channel: str, text: str, inbound_id: int):
    """STOP suppresses the number (and may confirm it once); START lifts it."""
    kind = keyword_kind(text, settings.opt_out_keywords, settings.opt_in_keywords)
    if kind == OPT_OUT:
        added = queue.add_suppressions([phone], "keyword", source=channel, inbound_id=inbound_id)
        log.info("opt-out by %s reply from %s", channel, phone)
        if added and settings.opt_out_confirmation:
            queue.queue_confirmation(phone, settings.opt_out_confirmation, channel)
    elif kind == OPT_IN and queue.remove_suppression(phone):
        log.info("opt-in by %s reply from %s", channel, phone)
