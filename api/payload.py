"""Reading a JSON request body strictly: right types, real text, no NaN.

Python's JSON parser accepts `NaN`, `Infinity` and lone surrogates (`"\\ud800"`); SQLite later
fails on such a surrogate. So every value is checked here, before anything is stored.
"""

from __future__ import annotations

import json
import math
import re

from flask import request

from utils.contacts import (
    MAX_COLUMNS,
    MAX_ROWS,
    Contact,
    ContactFileError,
    ContactList,
    TooManyContacts,
    parse_numbers_text,
    too_many,
)
from utils.template import normalize_name

from .problems import Problem, invalid

MAX_FIELD_CHARS = {"name": 200, "channel": 40, "default_country": 10, "phone_column": 200}
# Our bodies nest three deep ({"contacts": [{...}]}); Python's parser recurses per level
# and fails with RecursionError (a 500) near a thousand, so depth is checked before parsing.
MAX_DEPTH = 32
# A JSON string, or an unterminated one up to the end: every byte has one way to match and
# a match never fails once it starts, so the scan stays linear on any input.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def load_json_object() -> dict:
    """The request body as a JSON object, or a 400/422 problem saying what is wrong."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise Problem(400, "The request body is empty; send a JSON object.")

    def no_constants(name):
        raise ValueError(f"{name} is not valid JSON")

    if _depth(raw) > MAX_DEPTH:
        raise Problem(
            400,
            f"The JSON body nests deeper than {MAX_DEPTH} levels; none of this "
            "API's bodies needs more than three.",
        )
    try:
        body = json.loads(raw, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}") from None
    except RecursionError:  # not reached after _depth; kept so no body can answer 500
        raise Problem(400, "The JSON body nests too deeply.") from None
    if not isinstance(body, dict):
        message = f"The body must be a JSON object, not {_kind(body)}."
        raise Problem(422, message, errors=[{"field": "body", "message": message}])
    return body


def _depth(raw: bytes) -> int:
    """How deep the brackets of a JSON text nest, without parsing it (brackets in strings
    do not count). Linear, and nearly free for a body with few brackets."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_text(field: str, value: str) -> str:
    """Refuse text that cannot be stored: lone surrogates and NUL characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(field, f"{field} contains invalid characters (lone surrogates).") from None
    if "\x00" in value:
        raise invalid(field, f"{field} contains a NUL character.")
    limit = MAX_FIELD_CHARS.get(field)
    if limit and len(value) > limit:
        raise invalid(field, f"{field} is longer than {limit} characters.")
    return value


def text_field(body: dict, field: str) -> str:
    """A string field of the body ('' when absent); anything but a string is a 422."""
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string, not {_kind(value)}.")
    return check_text(field, value)


def contacts_from_json(contacts, phone_column: str = "", max_rows: int = MAX_ROWS) -> ContactList:
    """`contacts`: a list of objects with a `phone` (or `phone_column`) and any variables."""
    phone_key = normalize_name(phone_column) or "phone"
    if not isinstance(contacts, list):
        raise invalid("contacts", f"contacts must be a list of objects, not {_kind(contacts)}.")
    if len(contacts) > max_rows:  # the cap a file has, before any row is looked at
        raise invalid("contacts", too_many())
    columns: dict[str, None] = {"phone": None}
    rows = []
    for i, item in enumerate(contacts, start=1):
        if not isinstance(item, dict):
            raise Problem(
                422,
                f"Contact {i} must be an object.",
                errors=[{"row": i, "message": f"expected an object, got {_kind(item)}"}],
            )
        variables = {}
        for key, value in item.items():
            name = normalize_name(str(key))
            check_text(f"contacts[{i}].{key}", name)
            variables[name] = _scalar_text(i, key, value)
            columns.setdefault(name, None)
        if len(columns) > MAX_COLUMNS:  # as for a file: each column costs work on every row
            raise invalid(
                "contacts",
                f"The contacts have more than {MAX_COLUMNS:,} different "
                "fields; keep only the ones the message uses.",
            )
        rows.append(Contact(row=i, phone=variables.get(phone_key, ""), variables=variables))
    if rows and phone_key not in columns:
        raise invalid("phone_column", f"No contact has a field named {phone_column.strip()!r}.")
    return ContactList(
        columns=list(columns), phone_column=phone_key, contacts=rows, headers=list(columns)
    )


def numbers_from_json(numbers, first_row: int = 1, max_rows: int = MAX_ROWS) -> ContactList:
    """`numbers`: a list of numbers (strings or integers), or one free-text string of them.

    `max_rows` is what is left of the request's recipient cap after its other lists.
    """
    if isinstance(numbers, str):
        check_text("numbers", numbers)
        try:
            parsed = parse_numbers_text(numbers, max_rows)
        except TooManyContacts:  # said as the request's cap, whatever other lists took
            raise invalid("numbers", too_many()) from None
        except ContactFileError as exc:
            raise invalid("numbers", exc.message) from None
        items = [c.phone for c in parsed.contacts]
    elif isinstance(numbers, list):
        if len(numbers) > max_rows:
            raise invalid("numbers", too_many())
        items = [_scalar_text(i, "numbers", n) for i, n in enumerate(numbers, start=1)]
    else:
        raise invalid("numbers", f"numbers must be a list of strings, not {_kind(numbers)}.")
    contacts = [
        Contact(row=first_row + i, phone=p, variables={"phone": p}) for i, p in enumerate(items)
    ]
    return ContactList(
        columns=["phone"], phone_column="phone", contacts=contacts, headers=["phone"]
    )


def _scalar_text(row: int, key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Problem(
                422,
                f"Row {row}: {key} is not a finite number.",
                errors=[{"row": row, "message": f"{key} is not a finite number"}],
            )
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return check_text(f"contacts[{row}].{key}", value)
    raise Problem(
        422,
        f"Row {row}: {key} must be text or a number, not {_kind(value)}.",
        errors=[{"row": row, "message": f"{key} must be text or a number"}],
    )


def _kind(value) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), "a value")


def reject_unknown(body: dict, allowed: set[str]) -> None:
    """A 422 naming the first field of `body` a route does not take (a typo is not ignored)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(unknown[0], f"Unknown field(s): {', '.join(unknown)}.")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, stripped; None without one; a 422 when it is blank or
    over 200 characters. Read before the body, so a bad key is refused before a big list."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key.strip()) <= 200:
        raise invalid("Idempotency-Key", "The Idempotency-Key must be 1 to 200 characters.")
    return key.strip()
