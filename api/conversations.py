"""Conversation routes: the inbox (threads per contact), one thread, read / star, and replying.

A reply is an ordinary one-recipient job on the same queue, so it has every guarantee a
campaign has (pacing, at most once, retries, the logout pause, Idempotency-Key).
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from flask import Blueprint, current_app, request

from message_queue import JOB_CHANNELS, ConversationNotFound, NewJob, Recipient, job_channel
from message_queue.conversations import FILTERS
from utils.recipients import MAX_MESSAGE_CHARS
from utils.sms import sms_parts

from .exports import int_arg
from .payload import check_text, idempotency_key, load_json_object, reject_unknown, text_field
from .problems import Problem, invalid, problem_response
from .views import conversation_object, status_object, thread_message_object

bp = Blueprint("conversations", __name__)
# E.164 with or without its "+" (a "+" in a URL is written %2B, and is easy to lose).
_PHONE = re.compile(r"\+?([1-9][0-9]{2,14})")
MAX_SEARCH_CHARS = 100


@bp.errorhandler(ConversationNotFound)
def _not_found(exc: ConversationNotFound):
    # Here rather than in problems.py: only these routes raise it.
    return problem_response(
        Problem(
            404, f"No conversation with {exc.args[0]}: nothing was sent to it and it never wrote."
        )
    )


def _queue():
    return current_app.config["QUEUE"]


def _phone(raw: str) -> str:
    """The E.164 number a URL names, or a 404: no conversation can have another key."""
    match = _PHONE.fullmatch(raw)
    if match is None:
        raise Problem(
            404,
            f"No conversation with {raw[:40]!r}: name one by its E.164 number, "
            "e.g. /conversations/%2B5511912345678 or /conversations/5511912345678.",
        )
    return "+" + match.group(1)


def _conversation(phone: str) -> dict:
    return conversation_object(_queue().get_conversation(_phone(phone)))


@bp.get("/conversations")
def list_conversations():
    """Threads, most recent activity first; filter all / unread / starred; search `q`."""
    kind = request.args.get("filter") or "all"
    if kind not in FILTERS:
        raise invalid("filter", f"Unknown filter {kind!r}; use one of {', '.join(FILTERS)}.")
    search = check_text("q", request.args.get("q", "").strip()[:MAX_SEARCH_CHARS]) or None
    limit = int_arg("limit", 50, 1, 500)
    offset = int_arg("offset", 0, 0, 10**9)
    rows, total = _queue().list_conversations(kind, search, limit, offset)
    return {
        "conversations": [conversation_object(c) for c in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@bp.get("/conversations/<phone>")
def get_conversation(phone):
    """One conversation."""
    return _conversation(phone)


@bp.get("/conversations/<phone>/messages")
def thread(phone):
    """A page of one thread: oldest first within the page, the newest page at offset 0."""
    limit = int_arg("limit", 50, 1, 500)
    offset = int_arg("offset", 0, 0, 10**9)
    rows, total = _queue().conversation_messages(_phone(phone), limit, offset)
    return {
        # `error`: why a bubble failed (the row's error code); None for what they wrote.
        "messages": [thread_message_object(m) | {"error": m["error"]} for m in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@bp.post("/conversations/<phone>/read")
def mark_read(phone):
    """Mark the thread read."""
    return conversation_object(_queue().set_read(_phone(phone), True))


@bp.post("/conversations/<phone>/unread")
def mark_unread(phone):
    """Mark the thread unread again (to come back to it)."""
    return conversation_object(_queue().set_read(_phone(phone), False))


@bp.post("/conversations/<phone>/star")
def star(phone):
    """Star the thread."""
    return conversation_object(_queue().set_starred(_phone(phone), True))


@bp.post("/conversations/<phone>/unstar")
def unstar(phone):
    """Unstar the thread."""
    return conversation_object(_queue().set_starred(_phone(phone), False))


@bp.post("/conversations/<phone>/reply")
def reply(phone):
    """Queue `text` to this contact as a one-recipient job (202 with its status object)."""
    queue, number = _queue(), _phone(phone)
    key = idempotency_key()
    text, channel = _read_reply()
    conversation = queue.get_conversation(number)  # 404 before anything is written
    # The channel they last wrote from is the one they read; else where we last wrote.
    channel = channel or queue.last_inbound_channel(number) or conversation["channel"]
    _refuse_suppressed(queue, number)
    job = NewJob(
        channel=channel,
        template=text,
        name=f"Reply to {conversation['name'] or number}"[:200],
        sms_parts=sms_parts(text) if job_channel(channel).uses_sms else None,
        idempotency_key=key,
        # The name is left out: it follows the contact list, and a retry must still match.
        request_hash=_request_hash(number, channel, text),
    )
    first = JOB_CHANNELS[channel].first
    row, _ = queue.create_job(
        job, [Recipient(phone=number, text=text, channel=first, name=conversation["name"])]
    )
    body = status_object(row, current_app.config["SETTINGS"], now=time.time())
    return body, 202, {"Location": f"/status/{row['id']}"}


def _read_reply() -> tuple[str, str | None]:
    """The reply's text and its chosen channel (None: the default), or a 4xx Problem."""
    body = load_json_object()
    reject_unknown(body, {"text", "channel"})
    text = text_field(body, "text")
    if not text.strip():
        raise invalid("text", "Write the reply's text.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise invalid("text", f"The reply is longer than {MAX_MESSAGE_CHARS:,} characters.")
    channel = text_field(body, "channel") or None
    if channel is not None and channel not in JOB_CHANNELS:
        raise invalid(
            "channel", f"Unknown channel {channel!r}; use one of {', '.join(JOB_CHANNELS)}."
        )
    return text, channel


def _refuse_suppressed(queue, number: str) -> None:
    """A 409 when the number opted out: nothing is sent to it, not even by hand."""
    if number in queue.suppressed([number]):
        raise Problem(
            409,
            f"{number} opted out (it is on the suppression list), so no message can be sent "
            "to it; remove it from /suppressions first if they asked to hear from you again.",
        )


def _request_hash(phone: str, channel: str, text: str) -> str:
    """What makes two replies the same for Idempotency-Key (a /send body never matches)."""
    return hashlib.sha256(
        json.dumps(["reply", phone, channel, text], ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    ).hexdigest()
