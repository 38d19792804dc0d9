"""Read the first worksheet of an .xlsx upload as rows of cell text, fast and within limits.

openpyxl cost ~10 µs a cell (1.9 s of CPU for a 904 KB sheet of 180,000 cells); this reads the
sheet XML with ElementTree's pull parser instead and gives the values openpyxl's
``load_workbook(read_only=True, data_only=True)`` would, turned into text. There is no openpyxl
fallback: a file this reader cannot read would cost the slow path again, which is what a
crafted upload would aim for, so it is refused with a message instead. openpyxl's small pure
helpers still decide what a date format is and turn a date serial into a datetime, so dates
read exactly as they did. Every problem is a WorkbookError whose message is meant for the
uploader. utils.xlsx_parts finds and opens the parts of the package; this module reads rows.
"""

import io
import zipfile
from collections.abc import Generator, Iterator
from xml.etree.ElementTree import Element

from openpyxl.utils.cell import column_index_from_string
from openpyxl.utils.datetime import from_excel, from_ISO8601

from .xlsx_parts import (
    MAX_UNZIPPED,
    NS,
    OPEN_FAILED,
    READ_FAILED,
    TEXT,
    Book,
    WorkbookError,
    cell_text,
    check_zip,
    children,
    open_book,
    plain_texts,
)

__all__ = ["MAX_UNZIPPED", "WorkbookError", "cell_text", "check_zip", "read_rows"]

_ROW, _CELL, _VALUE, _INLINE = (NS + tag for tag in ("row", "c", "v", "is"))
_DATA = NS + "sheetData"
_DIGITS = "0123456789"
_COLUMNS: dict[str, int] = {}  # "C" -> 3; only well-formed references get in


def read_rows(
    data: bytes, limit: int = MAX_UNZIPPED
) -> Generator[tuple[int, list[str]], None, None]:
    """Yield (row number as Excel shows it, cell texts) for each non-blank row of sheet one.

    Texts have no trailing blanks; a gap before a cell is filled with "". `limit` caps the
    bytes unpacked, whatever sizes the zip declares.
    """
    check_zip(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            book = open_book(archive, limit)
        except WorkbookError:
            raise
        except Exception:  # KeyError, ParseError, ValueError...: one cause for the user
            raise WorkbookError(OPEN_FAILED) from None
        if book.sheet is None:
            return
        try:
            yield from _sheet_rows(archive, book.sheet, book)
        except WorkbookError:
            raise
        except Exception:
            raise WorkbookError(READ_FAILED) from None


def _sheet_rows(
    archive: zipfile.ZipFile, sheet: str, book: Book
) -> Iterator[tuple[int, list[str]]]:
    """Yield (number, texts) per non-blank row; openpyxl drops a row numbered at or below
    one already given, and so does this."""
    number = last = 0
    for row in children(archive, sheet, book, _DATA, _ROW):
        number = _row_number(row.get("r"), number)
        if number > last:
            last = number
            texts = _row_texts(row, book)
            if texts:
                yield number, texts


def _row_texts(row: Element, book: Book) -> list[str]:
    """Cells by column as openpyxl fills them: gaps are "", the row is as wide as its last
    cell (a cell left of an earlier one past that is dropped), a repeated column wins."""
    column = 0
    texts: dict[int, str] = {}
    for cell in row:  # the hot loop: ~200,000 cells a request, so the usual cases come first
        if cell.tag != _CELL:
            continue
        ref = cell.get("r")
        if ref:
            letters = ref.rstrip(_DIGITS)
            column = _COLUMNS.get(letters) or _column(ref) if letters != ref else _column(ref)
        else:  # no reference (or r=""): the next column, as openpyxl counts
            column += 1
        kind = cell.get("t")
        if kind == "s":
            raw = cell.findtext(_VALUE)
            texts[column] = book.strings[int(raw)] if raw else ""
        elif kind == "inlineStr":
            node = cell.find(_INLINE)
            if node is None:
                texts[column] = ""
            elif len(node) == 1 and node[0].tag == TEXT:  # unformatted, the usual
                texts[column] = cell_text(node[0].text)
            else:
                texts[column] = cell_text(next(plain_texts((node,))))
        else:
            texts[column] = _cell_value(cell, "n" if kind is None else kind, book)
    if len(texts) == column and next(reversed(texts), 0) == column:  # A, B, C... in order
        cells = list(texts.values())
        while cells and not cells[-1]:
            cells.pop()
        return cells
    filled = [at for at, text in texts.items() if text and at <= column]
    cells = [""] * max(filled, default=0)
    for at in filled:
        cells[at - 1] = texts[at]
    return cells


def _row_number(ref: str | None, previous: int) -> int:
    """A row's number: its r attribute ("7", even "7.0"), else one past the previous row."""
    if ref is None:
        return previous + 1
    try:
        return int(ref)
    except ValueError:
        value = float(ref)
        if not value.is_integer():
            raise
        return int(value)


def _column(ref: str) -> int:
    """The column of a reference like "C5"; anything else raises, as in openpyxl."""
    letters = ref.rstrip(_DIGITS)
    if len(letters) == len(ref):
        raise ValueError(ref)
    _COLUMNS[letters] = column_index_from_string(letters.upper())
    return _COLUMNS[letters]


def _cell_value(cell: Element, kind: str, book: Book) -> str:
    """Text of a cell that is not a string, from the value openpyxl's data-only reader gives."""
    raw = cell.findtext(_VALUE)  # a formula's cached result: data-only semantics
    if not raw:
        return ""
    if kind == "n":
        number = float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)
        style = int(cell.get("s") or 0)
        if style not in book.date_styles:
            return cell_text(number)
        try:
            when = from_excel(number, book.epoch, timedelta=style in book.timedelta_styles)
        except (OverflowError, ValueError):
            return "#VALUE!"  # openpyxl's answer to a date out of range
        return cell_text(when)
    if kind == "b":
        return str(bool(int(raw)))
    if kind == "d":
        return cell_text(from_ISO8601(raw))
    return cell_text(raw)  # "str" (a formula's text), "e" (#N/A...) and unknown kinds
