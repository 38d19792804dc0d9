"""POST /send: a contact list and a message in, one queued job out (202).

Everything is validated before anything is written: a rejected request leaves no job, no
message row and no stored attachment behind. `read_send_request` (api/send_request.py) is that
validation, shared with POST /preview, which answers what /send would queue without writing
anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import astuple

from flask import Blueprint, current_app

from message_queue import NewJob, job_channel
from utils.bulk import collector_paused
from utils.sms import sms_parts

from . import attachments
from .payload import idempotency_key
from .send_request import read_send_request
from .views import status_object

bp = Blueprint("send", __name__)


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
