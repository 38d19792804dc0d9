"""From a parsed contact list and a message template to the rows a job queues.

Numbers are normalised to E.164, duplicates (after normalising) and invalid numbers are set
aside with the row they came from, and the template is rendered per recipient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from message_queue import Recipient

from .contacts import Contact, ContactList
from .phones import InvalidPhone, normalize_phone
from .template import compile_template, placeholders

# WhatsApp refuses longer texts; an SMS this long would be hundreds of parts anyway.
MAX_MESSAGE_CHARS = 65_536
# Every placeholder is filled on every row: a message is a few names, and 21,000 of them
# times 70,000 rows (a 1 MB request) would be 1.5 billion lookups.
MAX_PLACEHOLDERS = 100
# What all of a job's texts may add up to: each is stored, and held in memory while the job
# is created. 100,000 messages of 500 characters fit; a 64 KB text to 50,000 numbers (3 GB
# from a 1 MB request) does not.
MAX_JOB_CHARS = 50_000_000


class RecipientError(ValueError):
    """The request cannot become a job; `errors` lists what to fix, as problem+json wants."""

    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.errors = errors


@dataclass
class Built:
    recipients: list[Recipient] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    # Recipients set aside because their number is on the suppression list: a replayed
    # request still counts them, so an opt-out in between does not change its identity.
    opted_out: list[Recipient] = field(default_factory=list)


def check_template(template: str, columns) -> None:
    """Refuse a message that is empty, too long, or names a column nobody has."""
    if not template.strip():
        raise RecipientError("The message is empty.", [{"field": "message", "message": "empty"}])
    if len(template) > MAX_MESSAGE_CHARS:
        raise RecipientError(
            f"The message is {len(template):,} characters; the limit is {MAX_MESSAGE_CHARS:,}.",
            [{"field": "message", "message": "too long"}],
        )
    occurrences = compile_template(template).occurrences
    if occurrences > MAX_PLACEHOLDERS:
        raise RecipientError(
            f"The message has {occurrences:,} placeholders; the limit is {MAX_PLACEHOLDERS}.",
            [{"field": "message", "message": "too many placeholders"}],
        )
    known = set(columns) | {"phone"}
    unknown = [name for name in placeholders(template) if name not in known]
    if unknown:
        available = ", ".join(f"{{{c}}}" for c in sorted(known))
        raise RecipientError(
            f"The message uses {', '.join(f'{{{u}}}' for u in unknown)}, which names no column."
            f" Available: {available}.",
            [{"field": "message", "message": f"unknown placeholder {{{u}}}"} for u in unknown],
        )


def build_recipients(
    lists: list[ContactList], template: str, channel: str, default_country: str | None
) -> Built:
    """Normalise, de-duplicate and render every contact of `lists`, in order."""
    built, seen, total = Built(), set(), 0
    compiled = compile_template(template)
    # Only the variables the message uses (and "name", which the row keeps) are looked up:
    # copying every column for every row was rows x columns.
    used = list(compiled.counts) + ["name"]
    normalized: dict[str, str | InvalidPhone] = {}  # a number repeated is parsed once
    for contacts in lists:
        for contact in contacts.contacts:
            raw = str(contact.phone).strip()
            phone = normalized.get(raw)
            if phone is None:
                phone = normalized[raw] = _normalize(raw, default_country)
            if isinstance(phone, InvalidPhone):
                built.rejected.append({"row": contact.row, "phone": raw, "reason": phone.reason})
                continue
            if phone in seen:
                built.rejected.append({"row": contact.row, "phone": raw, "reason": "duplicate"})
                continue
            variables = _variables(contact.variables, used, phone)
            length = compiled.length(variables)  # known before the text is built
            text = compiled.fill(variables) if length <= MAX_MESSAGE_CHARS else None
            if text is None or not text.strip():
                reason = "message_too_long" if text is None else "empty_message"
                built.rejected.append({"row": contact.row, "phone": raw, "reason": reason})
                continue
            total += length
            if total > MAX_JOB_CHARS:
                raise _job_too_big()
            seen.add(phone)
            built.recipients.append(
                Recipient(
                    phone=phone, text=text, channel=channel, name=variables["name"], row=contact.row
                )
            )
    return built


def set_aside_opted_out(built: Built, suppressed: set[str], lists: list[ContactList]) -> None:
    """Move the recipients whose number is in `suppressed` to `rejected` as `opted_out`
    (with the number as written in `lists`), keeping them in `built.opted_out`.

    `rejected` stays in row order, as the page lists it next to the file.
    """
    hit = {r.row for r in built.recipients if r.phone in suppressed}
    if not hit:
        return
    written: dict[int | None, str] = {
        c.row: str(c.phone).strip() for cl in lists for c in cl.contacts if c.row in hit
    }
    built.opted_out = [r for r in built.recipients if r.row in hit]
    built.recipients = [r for r in built.recipients if r.row not in hit]
    built.rejected.extend(
        {"row": r.row, "phone": written.get(r.row, r.phone), "reason": "opted_out"}
        for r in built.opted_out
    )
    built.rejected.sort(key=lambda r: r["row"])


def normalize_numbers(
    contacts: Iterable[Contact], default_country: str | None
) -> tuple[dict[str, int], list[dict]]:
    """For lists of numbers only: each E.164 number once, in order, with the row it came
    from, and the rows set aside as {"row", "phone", "reason"} (invalid, duplicate)."""
    numbers: dict[str, int] = {}
    rejected: list[dict] = []
    for contact in contacts:
        raw = str(contact.phone).strip()
        phone = _normalize(raw, default_country)
        if isinstance(phone, InvalidPhone):
            rejected.append({"row": contact.row, "phone": raw, "reason": phone.reason})
        elif phone in numbers:
            rejected.append({"row": contact.row, "phone": raw, "reason": "duplicate"})
        else:
            numbers[phone] = contact.row
    return numbers, rejected


def _normalize(raw: str, default_country: str | None) -> str | InvalidPhone:
    try:
        return normalize_phone(raw, default_country)
    except InvalidPhone as exc:
        return exc


def _variables(cells: dict[str, str], used: list[str], phone: str) -> dict[str, str]:
    """The row's values for `used`: "" where this row (or its list) has no such column.

    {phone} is the number as written when the list has a "phone" column, else (pasted
    numbers, or a number column named "celular") the recipient's E.164 number.
    """
    values = {name: cells.get(name, "") for name in used}
    values["phone"] = cells.get("phone", phone)
    return values


def _job_too_big() -> RecipientError:
    message = (
        f"The messages of this job add up to more than {MAX_JOB_CHARS:,} characters, "
        "the most one job can hold; shorten the message or split the list."
    )
    return RecipientError(message, [{"field": "message", "message": "job too large"}])
