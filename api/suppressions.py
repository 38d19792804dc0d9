"""The suppression list over HTTP: list and search, add by hand, remove, import, export.

A number is written in a URL with its `+` percent-encoded (`%2B5511...`) or without it: both
name the same number, as for conversations. Additions are all-or-nothing: one transaction,
after every number has been read and checked.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, request
from werkzeug.routing import BaseConverter

from utils.contacts import MAX_ROWS, Contact, ContactFileError, parse_contacts_file, too_many
from utils.phones import is_known_region
from utils.recipients import normalize_numbers

from .exports import csv_download, int_arg, safe_cell
from .payload import check_text, load_json_object, reject_unknown, text_field
from .problems import Problem, invalid
from .views import iso

bp = Blueprint("suppressions", __name__)
MANUAL = "manual"
IMPORT = "import"
MAX_SOURCE_CHARS = 200
# What a search for a number may be typed with: "+55 (11) 9123-4567" looks for its digits.
_PHONE_TYPED = re.compile(r"[\d\s+\-().]+")


def _queue():
    return current_app.config["QUEUE"]


def suppression_object(row: dict) -> dict:
    """One entry as the API shows it."""
    return {
        "phone": row["phone"],
        "reason": row["reason"],
        "at": iso(row["created_at"]),
        "source": row["source"],
    }


@bp.get("/suppressions")
def list_suppressions():
    """A page of the list, newest first; `q` searches numbers and sources."""
    limit = int_arg("limit", 100, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    search = request.args.get("q", "").strip()[:100]
    if _PHONE_TYPED.fullmatch(search) and any(ch.isdigit() for ch in search):
        search = re.sub(r"\D", "", search)
    rows, total = _queue().list_suppressions(search or None, limit, offset)
    return {
        "suppressions": [suppression_object(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@bp.post("/suppressions")
def add_suppressions():
    """Suppress the numbers given by hand: 200 with those added and those set aside."""
    body = load_json_object()
    reject_unknown(body, {"phones", "reason", "default_country"})
    reason = text_field(body, "reason") or MANUAL
    if reason != MANUAL:
        # keyword and import are what the product records by itself: a client saying so
        # would make the list lie about why a number is on it.
        raise invalid("reason", f"reason can only be {MANUAL!r} here.")
    country = _country(text_field(body, "default_country"))
    contacts = _phones_field(body.get("phones"))
    return _add(contacts, country, MANUAL, "")


@bp.post("/suppressions/import")
def import_suppressions():
    """Suppress every number of a contact file (.csv, .xlsx, .txt): 200 with added/rejected."""
    # A form without a file (urlencoded) gets the clearer answer: which field is missing.
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise Problem(415, "Send the file as multipart/form-data, in the field 'file'.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise invalid("file", "Attach a contact file (.csv, .xlsx or .txt) in the field 'file'.")
    form = request.form
    for name in ("default_country", "phone_column"):
        check_text(name, form.get(name, ""))
    country = _country(form.get("default_country", ""))
    name = check_text("file", upload.filename)[:MAX_SOURCE_CHARS]
    try:
        contacts = parse_contacts_file(upload.read(), name, form.get("phone_column") or None)
    except ContactFileError as exc:
        raise invalid(exc.field, exc.message) from None
    return _add(contacts.contacts, country, IMPORT, name)


class PhoneConverter(BaseConverter):
    """A number in a URL: E.164 with its `+` (sent as %2B) or without it.

    Narrower than a plain segment, so /suppressions/import and /suppressions/export.csv
    are never read as a number to delete (an OPTIONS would list DELETE for them).
    """

    regex = r"\+?[0-9]{1,17}"


@bp.delete("/suppressions/<phone:phone>")
def remove_suppression(phone):
    """Take a number off the list: 204, or 404 when it is not on it."""
    digits = re.sub(r"\D", "", phone)
    if not digits or len(digits) > 17 or not _queue().remove_suppression("+" + digits):
        raise Problem(404, f"{phone!r} is not on the suppression list.")
    return Response(status=204)


@bp.get("/suppressions/export.csv")
def export_csv():
    """The whole list as a spreadsheet-safe CSV download (phone, reason, at, source)."""
    # The phone is E.164 and stays as written, like the jobs export's.
    rows = (
        [r["phone"], r["reason"], iso(r["created_at"]), safe_cell(r["source"])]
        for r in _queue().iter_suppressions()
    )
    return csv_download("suppressions.csv", ["phone", "reason", "at", "source"], rows)


def _phones_field(phones) -> list[Contact]:
    """`phones`: a non-empty list of numbers as text (or whole numbers)."""
    if not isinstance(phones, list) or not phones:
        raise invalid("phones", "phones must be a non-empty list of phone numbers.")
    if len(phones) > MAX_ROWS:
        raise invalid("phones", too_many())
    contacts = []
    for i, value in enumerate(phones, start=1):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Problem(
                422,
                f"phones[{i}] must be a phone number as text.",
                errors=[{"row": i, "message": "expected a phone number as text"}],
            )
        contacts.append(Contact(row=i, phone=check_text(f"phones[{i}]", str(value))))
    return contacts


def _country(given: str) -> str | None:
    country = (given or current_app.config["SETTINGS"].default_country or "").strip().upper()
    if country and not is_known_region(country):
        raise invalid("default_country", f"Unknown country code {country!r} (use e.g. BR, IN, US).")
    return country or None


def _add(contacts: list[Contact], country: str | None, reason: str, source: str):
    """Normalise, then add in one transaction; 422 when not one number is usable."""
    numbers, rejected = normalize_numbers(contacts, country)
    if not numbers:
        raise Problem(
            422,
            "None of the numbers is a valid phone number.",
            errors=[
                {"row": r["row"], "message": f"{r['phone']}: {r['reason']}"} for r in rejected[:100]
            ],
        )
    added = _queue().add_suppressions(list(numbers), reason, source)
    fresh = set(added)
    rejected += [
        {"row": row, "phone": phone, "reason": "already_suppressed"}
        for phone, row in numbers.items()
        if phone not in fresh
    ]
    rejected.sort(key=lambda r: r["row"])
    return {"added": added, "rejected": rejected}
