"""CSV downloads and paging arguments, shared by every route that lists things.

A download is streamed in chunks, so a 100,000-row export never sits whole in memory, and
every cell a spreadsheet would run as a formula is defused on the way out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask import Response, request, stream_with_context

from .problems import invalid

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64_000  # characters written before they are sent


def safe_cell(cell: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula (phones are E.164 and stay as-is)."""
    return "'" + cell if cell and cell.startswith(FORMULA_STARTS) else cell


def csv_download(filename: str, header: list[str], rows: Iterable[list]) -> Response:
    """A streamed `text/csv` attachment of `header` then `rows` (cells already made safe)."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            if buffer.tell() > CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query argument between `low` and `high`, or a 422 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a whole number.") from None
    if not low <= value <= high:
        raise invalid(name, f"{name} must be between {low} and {high}.")
    return value
