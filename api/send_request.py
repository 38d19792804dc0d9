"""What /send and /preview take: a request read and checked, or a Problem (4xx) that says why.

Nothing is written here: the recipients are built and the opted-out numbers set aside, so
/send can queue them and /preview can show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from message_queue import JOB_CHANNELS, job_channel
from utils.contacts import (
    MAX_ROWS,
    ContactFileError,
    ContactList,
    TooManyContacts,
    parse_contacts_file,
    parse_numbers_text,
    too_many,
)
from utils.phones import is_known_region
from utils.recipients import (
    Built,
    RecipientError,
    build_recipients,
    check_template,
    set_aside_opted_out,
)

from . import attachments
from .careful import FIELDS as CAREFUL_FIELDS
from .careful import Careful, read_careful
from .payload import (
    check_text,
    contacts_from_json,
    load_json_object,
    numbers_from_json,
    reject_unknown,
    text_field,
)
from .problems import Problem, invalid


@dataclass
class SendRequest:
    """A /send request, checked: the recipients it would queue and what was set aside."""

    channel: str
    template: str
    name: str
    country: str | None
    lists: list[ContactList]
    attachment: attachments.Attachment | None
    built: Built
    careful: Careful
    senders: tuple[str, ...] = ()


def read_send_request(settings, allow_empty_message: bool = False) -> SendRequest:
    """Parse and validate the current request as /send takes it, or raise a Problem.

    `allow_empty_message` is for /preview: a list can be looked at before the message is
    written. Its recipients are then built with the text `{phone}`, only to sort the numbers.
    """
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        fields, lists, attachment = _from_json(load_json_object())
    elif mimetype == "multipart/form-data" or mimetype == "application/x-www-form-urlencoded":
        fields, lists, attachment = _from_form()
    else:
        raise Problem(415, "Send application/json or multipart/form-data.")

    channel = fields["channel"] or "whatsapp"
    if channel not in JOB_CHANNELS:
        raise invalid(
            "channel", f"Unknown channel {channel!r}; use one of {', '.join(JOB_CHANNELS)}."
        )
    careful = read_careful(fields["careful"], settings, channel)
    senders = _senders(fields["senders"], channel)
    if attachment is not None and not JOB_CHANNELS[channel].takes_attachment:
        raise invalid("attachment", "Attachments can only be sent by WhatsApp, not by SMS.")
    country = (fields["default_country"] or settings.default_country or "").upper()
    if country and not is_known_region(country):
        raise invalid("default_country", f"Unknown country code {country!r} (use e.g. BR, IN, US).")
    if not lists:
        raise invalid("contacts", "Give at least one recipient: contacts, numbers or a file.")

    template = fields["message"]
    columns = {c for cl in lists for c in cl.columns}
    skip_message = allow_empty_message and not template.strip()
    try:
        if not skip_message:
            check_template(template, columns)
        first_channel = JOB_CHANNELS[channel].first
        built = build_recipients(
            lists, "{phone}" if skip_message else template, first_channel, country or None
        )
    except RecipientError as exc:
        raise Problem(422, str(exc), errors=exc.errors) from None
    # Checked here for the answer; create_job checks again in its own transaction, so a
    # STOP that arrives in between still keeps the number out.
    queue = current_app.config["QUEUE"]
    set_aside_opted_out(built, queue.suppressed(r.phone for r in built.recipients), lists)
    if not built.recipients:
        raise Problem(
            422,
            "None of the numbers can be sent to.",
            errors=[
                {"row": r["row"], "message": f"{r['phone']}: {r['reason']}"}
                for r in built.rejected[:100]
            ],
        )
    return SendRequest(
        channel=channel,
        template=template,
        name=fields["name"],
        country=country or None,
        lists=lists,
        attachment=attachment,
        built=built,
        careful=careful,
        senders=senders,
    )


JSON_FIELDS = {
    "message",
    "contacts",
    "numbers",
    "channel",
    "name",
    "default_country",
    "attachment",
    "phone_column",
    "senders",
    *CAREFUL_FIELDS,
}


def _from_json(body: dict):
    reject_unknown(body, JSON_FIELDS)
    fields: dict = {
        name: text_field(body, name) for name in ("message", "channel", "name", "default_country")
    }
    fields["careful"] = {name: body.get(name) for name in CAREFUL_FIELDS}
    fields["senders"] = body.get("senders")
    lists = []
    if body.get("contacts") is not None:
        lists.append(contacts_from_json(body["contacts"], text_field(body, "phone_column")))
    if body.get("numbers") is not None:  # one cap for all of a request's recipients
        lists.append(
            numbers_from_json(
                body["numbers"], first_row=_next_row(lists), max_rows=MAX_ROWS - _count(lists)
            )
        )
    attachment = attachments.from_json(body.get("attachment"))
    return fields, [cl for cl in lists if cl.contacts], attachment


def _from_form():
    form = request.form
    fields: dict = {
        name: form.get(name, "") for name in ("message", "channel", "name", "default_country")
    }
    for name, value in fields.items():
        check_text(name, value)
    fields["careful"] = {name: form.get(name) for name in CAREFUL_FIELDS}
    # Repeated fields or one comma-separated field.
    named = [n.strip() for value in form.getlist("senders") for n in value.split(",")]
    fields["senders"] = [n for n in named if n] or None
    lists = []
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        try:
            lists.append(
                parse_contacts_file(
                    upload.read(), upload.filename, form.get("phone_column") or None
                )
            )
        except ContactFileError as exc:
            raise invalid(exc.field, exc.message) from None
    if form.get("numbers", "").strip():
        try:  # one cap for the file and the pasted numbers together
            lists.append(parse_numbers_text(form["numbers"], MAX_ROWS - _count(lists)))
        except TooManyContacts:
            raise invalid("numbers", too_many()) from None
        except ContactFileError as exc:
            raise invalid("numbers", exc.message) from None
        if len(lists) == 2:  # number pasted rows after the file's, so rows stay unique
            offset = _next_row(lists[:1]) - 1
            for c in lists[1].contacts:
                c.row += offset
    attachment = attachments.from_upload(request.files.get("attachment"))
    return fields, [cl for cl in lists if cl.contacts], attachment


def _senders(value, channel: str) -> tuple[str, ...]:
    """The WORKER_IDs a job may use: each one a sender /session shows for its channel(s)."""
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or not value
        or len(value) > 100
        or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value)
    ):
        raise invalid("senders", "senders must be a non-empty list of WORKER_IDs from /session.")
    transports = job_channel(channel).transports
    known = {
        w["id"] for w in current_app.config["QUEUE"].list_workers() if w["channel"] in transports
    }
    for name in value:
        check_text("senders", name)
        if name not in known:
            raise invalid(
                "senders",
                f"No {' or '.join(transports)} sender is named {name!r}; /session lists them.",
            )
    return tuple(dict.fromkeys(value))


def _count(lists) -> int:
    return sum(len(cl.contacts) for cl in lists)


def _next_row(lists) -> int:
    rows = [c.row for cl in lists for c in cl.contacts]
    return max(rows, default=0) + 1
