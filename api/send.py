"""POST /send: a contact list and a message in, one queued job out (202).

Everything is validated before anything is written: a rejected request leaves no job, no
message row and no stored attachment behind. `read_send_request` is that validation, shared
with POST /preview, which answers what /send would queue without writing anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import astuple, dataclass

from flask import Blueprint, current_app, request

from message_queue import JOB_CHANNELS, NewJob, job_channel
from utils.bulk import collector_paused
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
from utils.sms import sms_parts

from . import attachments
from .careful import FIELDS as CAREFUL_FIELDS
from .careful import Careful, read_careful
from .payload import (
    check_text,
    contacts_from_json,
    idempotency_key,
    load_json_object,
    numbers_from_json,
    reject_unknown,
    text_field,
)
from .problems import Problem, invalid
from .views import status_object

bp = Blueprint("send", __name__)


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


@bp.post("/send")
@collector_paused()
def send():
    """Create a job from JSON or multipart/form-data."""
    settings = current_app.config["SETTINGS"]
    # The header's form first: a bad key is refused before a 100,000-row list is read. A
    # replay is still recognised by the request's hash, so the body is read after this.
    key = idempotency_key()
    req = read_send_request(settings)
    built, channel, template, name = req.built, req.channel, req.template, req.name
    stored = attachments.store(req.attachment, settings.upload_dir) if req.attachment else None
    # The most parts any recipient's text costs: what the phone and the carrier count.
    uses_sms = job_channel(channel).uses_sms
    parts = max(sms_parts(r.text) for r in built.recipients) if uses_sms else None
    job = NewJob(
        channel=channel,
        template=template,
        name=name,
        sms_parts=parts,
        attachment_path=stored.path if stored else None,
        attachment_name=stored.original_name if stored else None,
        idempotency_key=key,
        request_hash=_request_hash(
            channel, template, name, built, stored, req.careful, req.senders
        ),
        send_at=req.careful.send_at,
        timezone=req.careful.timezone,
        daily_cap=req.careful.daily_cap,
        hourly_cap=req.careful.hourly_cap,
        senders=req.senders,
    )
    try:
        row, created = current_app.config["QUEUE"].create_job(job, built.recipients)
    except BaseException:
        attachments.discard(stored)
        raise
    if not created:
        attachments.discard(stored)  # a replay: the first request's file is the one used
    body = status_object(row, settings, now=time.time())
    body.update(rejected=built.rejected if created else [], status_url=f"/status/{row['id']}")
    return body, 202, {"Location": f"/status/{row['id']}"}


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


def _request_hash(channel, template, name, built, stored, careful, senders) -> str:
    """What makes two requests the same for Idempotency-Key: the job they would create."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                channel,
                template,
                name,
                stored.sha256 if stored else None,
                *astuple(careful),
                sorted(senders),
            ],
            ensure_ascii=False,
        ).encode()
    )
    recipients = built.recipients
    if built.opted_out:  # as the first request saw them, before a number opted out
        recipients = sorted([*recipients, *built.opted_out], key=lambda r: r.row or 0)
    for r in recipients:
        digest.update(f"\n{r.phone}\t{r.text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
