"""From a parsed contact list and a message template to the rows a job queues.

Numbers are normalised to E.164, duplicates (after normalising) and invalid numbers are set
aside with the row they came from, and the template is rendered per recipient.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from message_queue import Recipient

from .contacts import ContactList
from .phones import InvalidPhone, normalize_phone
from .template import placeholders, render

# WhatsApp refuses longer texts; an SMS this long would be hundreds of parts anyway.
MAX_MESSAGE_CHARS = 65_536


class RecipientError(ValueError):
    """The request cannot become a job; `errors` lists what to fix, as problem+json wants."""

    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.errors = errors


@dataclass
class Built:
    recipients: list[Recipient] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def check_template(template: str, columns) -> None:
    """Refuse a message that is empty, too long, or names a column nobody has."""
    if not template.strip():
        raise RecipientError("The message is empty.", [{"field": "message", "message": "empty"}])
    if len(template) > MAX_MESSAGE_CHARS:
        raise RecipientError(
            f"The message is {len(template):,} characters; the limit is {MAX_MESSAGE_CHARS:,}.",
            [{"field": "message", "message": "too long"}])
    known = set(columns) | {"phone"}
    unknown = [name for name in placeholders(template) if name not in known]
    if unknown:
        available = ", ".join("{%s}" % c for c in sorted(known))
        raise RecipientError(
            f"The message uses {', '.join('{%s}' % u for u in unknown)}, which names no column."
            f" Available: {available}.",
            [{"field": "message", "message": f"unknown placeholder {{{u}}}"} for u in unknown])


def build_recipients(lists: list[ContactList], template: str, channel: str,
                     default_country: str | None) -> Built:
    """Normalise, de-duplicate and render every contact of `lists`, in order."""
    built, seen = Built(), set()
    # Pasted numbers have no {name}: every column of the request renders as "" where missing.
    blank = dict.fromkeys((c for cl in lists for c in cl.columns), "")
    # ...except {phone}: a list whose number column has another name ("celular") fills it
    # with the recipient's number below, even when pasted numbers brought a "phone" column.
    blank.pop("phone", None)
    for contacts in lists:
        for contact in contacts.contacts:
            raw = str(contact.phone).strip()
            try:
                phone = normalize_phone(raw, default_country)
            except InvalidPhone as exc:
                built.rejected.append({"row": contact.row, "phone": raw, "reason": exc.reason})
                continue
            if phone in seen:
                built.rejected.append({"row": contact.row, "phone": raw, "reason": "duplicate"})
                continue
            variables = dict(blank)
            variables.update(contact.variables)
            variables.setdefault("phone", phone)  # {phone} works even when the column is "celular"
            text = render(template, variables)
            if len(text) > MAX_MESSAGE_CHARS or not text.strip():
                reason = "message_too_long" if text.strip() else "empty_message"
                built.rejected.append({"row": contact.row, "phone": raw, "reason": reason})
                continue
            seen.add(phone)
            built.recipients.append(Recipient(
                phone=phone, text=text, channel=channel,
                name=variables.get("name", ""), row=contact.row))
    return built
