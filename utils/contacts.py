"""Read a contact list (CSV, XLSX, TXT or pasted numbers) into rows of text.

Nothing here validates phone numbers: it finds the phone column and keeps every cell as the
user wrote it, with the row number the user sees, so the API can report each bad row. Every
problem with the file itself is a ContactFileError whose message is meant for the uploader.
"""

import csv
import io
import os
import re
from dataclasses import dataclass, field

from .template import normalize_name
from .textfile import (
    NEWLINES,
    NotTextError,
    decode_text,
    detect_delimiter,
)
from .xlsx import WorkbookError, read_rows

PHONE_HEADERS = ("phone", "number", "mobile", "whatsapp", "tel", "telephone", "celular", "telefone")
_KINDS = {".csv": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".txt": "txt"}
# Far above csv's 128 KiB default so a long note cannot break a file, yet bounded; the
# request size cap is below this, so only a broken file can reach it.
_FIELD_LIMIT = 64 * 1024 * 1024
_PHONE_LIKE = re.compile(r"[\d\s+\-().]+")
_EMPTY = "The file is empty."
_HEADER_ONLY = "The file has a header row but no contacts."
_TOO_MANY = (
    "The list has more than {:,} contacts, the most one job can take; split it into smaller files."
)
MAX_ROWS = 200_000
# A contact list is a handful of columns; each column costs work on every row, so a file
# far wider than any real list is refused instead of read.
MAX_COLUMNS = 1_000
_TOO_WIDE = (
    "Row {} has {:,} columns; a contact list can have at most {:,}. Keep only the "
    "columns the message uses."
)


class ContactFileError(ValueError):
    """The contact file (or pasted numbers) cannot be used; ``message`` says why."""

    def __init__(self, message: str, field: str = "file"):
        super().__init__(message)
        self.message = message
        self.field = field


class TooManyContacts(ContactFileError):
    """More recipients than one job can take."""


@dataclass(slots=True)  # 100,000 of them in a big list
class Contact:
    """One recipient: its row as the user sees it, the raw phone text and its cells.

    `variables` holds the cells the row has, by column name; a row shorter than the list
    lacks the rest, which read as "" wherever a message uses them.
    """

    row: int
    phone: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class ContactList:
    """The recipients of one file plus the names of its columns."""

    columns: list[str]
    phone_column: str
    contacts: list[Contact]
    headers: list[str]


def parse_contacts_file(
    data: bytes, filename: str, phone_column: str | None = None, max_rows: int = MAX_ROWS
) -> ContactList:
    """Read a .csv/.tsv, .xlsx or .txt upload into a ContactList, or raise ContactFileError."""
    ext = os.path.splitext((filename or "").strip().lower())[1]
    kind = _KINDS.get(ext)
    if kind is None:
        shown = f"'{ext}'" if ext else "(no extension)"
        raise ContactFileError(f"Unsupported file type {shown}: use .csv, .xlsx or .txt.")
    if not data.strip():
        raise ContactFileError(_EMPTY)
    if kind == "xlsx":
        rows = _xlsx_rows(data)
    else:
        try:
            text = decode_text(data)
        except NotTextError as exc:
            raise ContactFileError(str(exc)) from None
        if not text.replace("\ufeff", "").strip():  # e.g. nothing but a BOM
            raise ContactFileError(_EMPTY)
        if kind == "txt":
            return _single_column(enumerate(NEWLINES.split(text), 1), max_rows, "file")
        rows = _csv_rows(text)
    try:
        return _build(rows, phone_column, max_rows)
    finally:
        rows.close()  # releases the workbook at once when we stop early


def too_many(max_rows: int = MAX_ROWS) -> str:
    """What the uploader is told when a list has more than `max_rows` recipients."""
    return _TOO_MANY.format(max_rows)


def parse_numbers_text(text: str, max_rows: int = MAX_ROWS) -> ContactList:
    """Read pasted numbers separated by newlines, commas, semicolons or tabs."""
    items = (item for item in re.split(r"[\r\n,;\t]+", text or "") if item.strip())
    return _single_column(enumerate(items, 1), max_rows, "numbers")


def _single_column(items, max_rows: int, field_name: str) -> ContactList:
    """A one-column list from (position, text) pairs; blank entries are skipped."""
    contacts: list[Contact] = []
    first = True
    for position, raw in items:
        value = raw.strip()
        if not value:
            continue
        # In a file, a first line without any digit ("Numbers") is a title, not a number.
        if first and field_name == "file" and not any(ch.isdigit() for ch in value):
            first = False
            continue
        first = False
        if len(contacts) >= max_rows:
            raise TooManyContacts(too_many(max_rows), field_name)
        contacts.append(Contact(row=position, phone=value, variables={"phone": value}))
    if not contacts:
        message = _HEADER_ONLY if field_name == "file" else "No phone numbers were given."
        raise ContactFileError(message, field_name)
    return ContactList(
        columns=["phone"], phone_column="phone", contacts=contacts, headers=["phone"]
    )


def _build(rows, phone_column: str | None, max_rows: int) -> ContactList:
    """A ContactList from (row number, cells) pairs; the first non-blank row is the header."""
    header: list[str] | None = None
    data: list[tuple[int, list[str]]] = []
    width = 0
    for number, cells in rows:
        if not cells:
            continue
        if len(cells) > MAX_COLUMNS:  # checked per row, so a wide file stops being read here
            raise ContactFileError(_TOO_WIDE.format(number, len(cells), MAX_COLUMNS))
        width = max(width, len(cells))
        if header is None:
            header = cells
        elif len(data) >= max_rows:
            raise TooManyContacts(too_many(max_rows))  # stop before reading the rest
        else:
            data.append((number, cells))
    if header is None:
        raise ContactFileError(_EMPTY)
    if not data:
        raise ContactFileError(_HEADER_ONLY)
    # Cells right of the header are kept as column_N rather than dropped: an unlabelled
    # column of numbers next to "Name" is still the phone column.
    headers = header + [""] * (width - len(header))
    names = _variable_names(headers)
    index = _phone_index(headers, names, data, phone_column)
    # Rows are not padded to the full width: one wide row would otherwise make every short
    # row as wide (rows x columns). A missing cell reads as "" wherever a variable is used.
    contacts = [
        Contact(
            number,
            cells[index] if index < len(cells) else "",
            dict(zip(names, cells, strict=False)),
        )
        for number, cells in data
    ]
    return ContactList(names, names[index], contacts, headers)


def _variable_names(headers: list[str]) -> list[str]:
    """Placeholder names: "First Name" -> first_name; unique (x, x_2); never empty."""
    names: list[str] = []
    used: set[str] = set()
    # The next suffix to try per base name: the suffixes below it are taken already, so
    # each repeated header costs one probe (on average), not one per earlier repeat.
    next_suffix: dict[str, int] = {}
    for position, header in enumerate(headers, 1):
        base = normalize_name(header) or f"column_{position}"
        name, suffix = base, next_suffix.get(base, 2)
        while name in used:
            name, suffix = f"{base}_{suffix}", suffix + 1
        if name != base:
            next_suffix[base] = suffix
        used.add(name)
        names.append(name)
    return names


def _phone_index(headers, names, data, wanted: str | None) -> int:
    """The column asked for, else the first known phone header, else one full of numbers."""
    if wanted and wanted.strip():
        lowered, normalized = wanted.strip().lower(), normalize_name(wanted)
        for index, (header, name) in enumerate(zip(headers, names, strict=True)):
            if lowered == header.lower() or normalized == name:
                return index
        available = ", ".join(h or n for h, n in zip(headers, names, strict=True))
        raise ContactFileError(
            f"There is no column named '{wanted.strip()}'. Columns in the file: {available}.",
            "phone_column",
        )
    for index, name in enumerate(names):
        if name in PHONE_HEADERS:
            return index
    for index, values in enumerate(_samples(data, len(names))):
        phones = [v for v in values if _PHONE_LIKE.fullmatch(v) and sum(map(str.isdigit, v)) >= 7]
        if values and len(phones) >= 0.6 * len(values):
            return index
    raise ContactFileError(
        "Could not find a phone number column; choose one with phone_column.", "phone_column"
    )


def _samples(data, width: int, size: int = 50) -> list[list[str]]:
    """The first `size` non-empty values of each column, in one pass over the rows.

    One pass, not one per column: scanning every row for each of a thousand mostly empty
    columns was rows x columns.
    """
    samples: list[list[str]] = [[] for _ in range(width)]
    unfilled = width
    for _, cells in data:
        for index, value in enumerate(cells):
            if value and len(samples[index]) < size:
                samples[index].append(value)
                unfilled -= len(samples[index]) == size
        if not unfilled:
            break
    return samples


def _csv_rows(text: str):
    """Yield (row number, stripped cells without trailing blanks) from CSV text."""
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=detect_delimiter(text), skipinitialspace=True
    )
    try:
        # Numbers count records, as a spreadsheet does: a quoted multi-line cell does not
        # shift the row numbers the user is told about.
        for number, cells in enumerate(reader, 1):
            yield number, _trim([cell.strip() for cell in cells])
    except csv.Error as exc:
        line = reader.line_num
        raise ContactFileError(f"The CSV file is damaged near line {line} ({exc}).") from None


def _xlsx_rows(data: bytes):
    """Yield (row number, cell texts) from the first sheet; its problems as ContactFileError."""
    rows = read_rows(data)
    try:
        yield from rows
    except WorkbookError as exc:
        raise ContactFileError(str(exc)) from None
    finally:
        rows.close()


def _trim(cells: list[str]) -> list[str]:
    """Drop trailing empty cells, so a fully blank row becomes []."""
    while cells and not cells[-1]:
        cells.pop()
    return cells
