"""Read the first worksheet of an .xlsx upload as rows of cell text, fast and within limits.

openpyxl cost ~10 µs a cell (1.9 s of CPU for a 904 KB sheet of 180,000 cells); this reads the
sheet XML with ElementTree's pull parser instead and gives the values openpyxl's
``load_workbook(read_only=True, data_only=True)`` would, turned into text. There is no openpyxl
fallback: a file this reader cannot read would cost the slow path again, which is what a
crafted upload would aim for, so it is refused with a message instead. openpyxl's small pure
helpers still decide what a date format is and turn a date serial into a datetime, so dates
read exactly as they did. Every problem is a WorkbookError whose message is meant for the
uploader.
"""

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import XMLPullParser

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.cell import column_index_from_string
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel, from_ISO8601

from .textfile import looks_like, strip_controls

MAX_UNZIPPED = 100 * 1024 * 1024
_MAX_RATIO = 200  # real sheets deflate 5-30x; hundreds-fold on megabytes means a zip bomb
# Elements inside one row or shared string (16,384 cells is Excel's widest row, a few
# elements each): more is a crafted file, which would otherwise be held whole in memory.
_MAX_PARTS = 100_000
_CHUNK = 256 * 1024
_RESAVE = "; save it again as .xlsx or .csv."
_OPEN = "Could not open this Excel file" + _RESAVE
_READ = "Could not read this Excel file" + _RESAVE
_TOO_BIG = ("This Excel file unpacks to more than 100 MB; split it into smaller files or "
            "save it as .csv.")
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL, _VALUE, _INLINE = (_NS + tag for tag in ("row", "c", "v", "is"))
_TEXT, _RUN, _DATA = (_NS + tag for tag in ("t", "r", "sheetData"))
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_BOOK_TYPES = tuple(f"application/vnd.{kind}.main+xml" for kind in (  # openpyxl's order
    "ms-excel.template.macroEnabled", "openxmlformats-officedocument.spreadsheetml.template",
    "ms-excel.sheet.macroEnabled", "openxmlformats-officedocument.spreadsheetml.sheet"))
_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
# DTDs are how entity bombs and external entities get in; no spreadsheet program writes one.
_DTD = (b"<!DOCTYPE", b"<!ENTITY")
_DECLARED = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")


class WorkbookError(ValueError):
    """The .xlsx file cannot be read; the message says why, for the uploader."""


@dataclass
class _Book:
    """What reading the first sheet needs from the rest of the package."""

    sheet: str | None = None
    strings: list[str] = field(default_factory=list)  # already as cell text
    date_styles: set[int] = field(default_factory=set)
    timedelta_styles: set[int] = field(default_factory=set)
    epoch: object = WINDOWS_EPOCH
    left: int = MAX_UNZIPPED  # bytes that may still be unpacked, whatever sizes the zip declares


def read_rows(data: bytes, limit: int = MAX_UNZIPPED) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number as Excel shows it, cell texts) for each non-blank row of sheet one.

    Texts have no trailing blanks; a gap before a cell is filled with "". `limit` caps the
    bytes unpacked, whatever sizes the zip declares.
    """
    check_zip(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            book = _open(archive, limit)
        except WorkbookError:
            raise
        except Exception:  # KeyError, ParseError, ValueError...: one cause for the user
            raise WorkbookError(_OPEN) from None
        if book.sheet is None:
            return
        try:
            yield from _sheet_rows(archive, book)
        except WorkbookError:
            raise
        except Exception:
            raise WorkbookError(_READ) from None


def check_zip(data: bytes) -> None:
    """Refuse what is not a zip, and zips that would unpack to far more than a contact list."""
    what = looks_like(data) or ""
    if what.startswith("an old Excel"):
        raise WorkbookError("This is an old Excel .xls file; save it as .xlsx or .csv.")
    if not data.startswith(b"PK\x03\x04"):
        extra = f" (it looks like {what})" if what else ""
        raise WorkbookError(f"This does not look like an Excel .xlsx file{extra}.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception:  # BadZipFile, but also struct/OSError/NotImplementedError on damage
        raise WorkbookError("This Excel file is damaged" + _RESAVE) from None
    unpacked = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    if len(members) > 10_000 or unpacked > MAX_UNZIPPED:
        raise WorkbookError(_TOO_BIG)
    if unpacked > 10 * 1024 * 1024 and unpacked > _MAX_RATIO * max(packed, 1):
        raise WorkbookError("This Excel file would unpack to far more than its size, "
                            "which is unsafe" + _RESAVE)


def cell_text(value) -> str:
    """Text of a cell; integral floats lose ".0" so 5511912345678.0 stays a phone number."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.isprintable():  # no control characters: skips a regex on nearly every cell
        return text.strip()
    return strip_controls(text).strip()  # Excel's _x0000_ escape can carry a NUL


def _open(archive: zipfile.ZipFile, limit: int) -> _Book:
    """Find sheet one, the shared strings, date styles and epoch, as openpyxl does."""
    book = _Book(left=limit)
    overrides: dict[str, str] = {}
    for elem, _ in _stream(archive, "[Content_Types].xml", book, {"Override"}):
        overrides.setdefault(elem.get("ContentType"), elem.get("PartName", "")[1:])
    part = next((overrides[kind] for kind in _BOOK_TYPES if kind in overrides), None)
    if part is None:
        raise WorkbookError(_OPEN)  # openpyxl's Default-type guess is not worth the code
    folder, name = posixpath.split(part)
    targets = {}
    for elem, _ in _stream(archive, f"{folder}/_rels/{name}.rels", book, {"Relationship"}):
        target = elem.get("Target", "")
        if elem.get("TargetMode") != "External":
            target = target[1:] if target.startswith("/") else posixpath.normpath(
                posixpath.join(folder, target))
        targets[elem.get("Id")] = (target, elem.get("Type", ""))
    names = set(archive.namelist())
    for elem, _ in _stream(archive, part, book, {"sheet", "workbookPr"}):
        if elem.tag.endswith("workbookPr"):
            if elem.get("date1904", "false") not in ("false", "f", "0", ""):
                book.epoch = CALENDAR_MAC_1904
        elif elem.get(_REL_ID) and book.sheet is None:
            target, kind = targets[elem.get(_REL_ID)]  # a missing one is openpyxl's KeyError
            # Like openpyxl: a sheet whose part is absent is skipped; a chart is no worksheet.
            if target in names and "chartsheet" not in kind:
                book.sheet = target
    if _STRINGS_TYPE in overrides:
        items = _children(archive, overrides[_STRINGS_TYPE], book, _NS + "sst", _NS + "si")
        book.strings = [cell_text(text.replace("x005F_", "")) for text in _plain_texts(items)]
    if "xl/styles.xml" in names:
        _read_styles(archive, book)
    return book


def _read_styles(archive: zipfile.ZipFile, book: _Book) -> None:
    """Note which cell styles show a date or a duration, so their numbers read as openpyxl's."""
    custom: dict[int, str] = {}
    styles: list[int] = []
    for elem, parent in _stream(archive, "xl/styles.xml", book, {"numFmt", "xf"}):
        if elem.tag.endswith("numFmt"):
            custom[int(elem.get("numFmtId"))] = elem.get("formatCode")
        elif parent is not None and parent.tag.endswith("cellXfs"):
            styles.append(int(elem.get("numFmtId", 0)))
    for index, number_format in enumerate(styles):
        code = custom[number_format] if number_format in custom else BUILTIN_FORMATS.get(
            number_format)
        if is_date_format(code):
            book.date_styles.add(index)
        if is_timedelta_format(code):
            book.timedelta_styles.add(index)


def _stream(archive, name: str, book: _Book, wanted: set[str]):
    """Yield (element, parent) at the end of each element whose local name is wanted.

    Elements are dropped from the tree once read, so memory stays that of one element.
    """
    parser = XMLPullParser(("start", "end"))
    stack: list = []
    inside = 0
    for chunk in _chunks(archive, name, book):
        parser.feed(chunk)
        for event, elem in parser.read_events():
            is_wanted = elem.tag.rpartition("}")[2] in wanted
            if event == "start":
                stack.append(elem)
                inside += is_wanted
                continue
            stack.pop()
            if is_wanted:
                inside -= 1
                yield elem, stack[-1] if stack else None
            elif inside:
                continue  # part of a wanted element, read with it
            if stack:
                stack[-1].remove(elem)  # its earlier siblings are gone: the first child
    parser.close()


def _chunks(archive, name: str, book: _Book) -> Iterator[bytes]:
    """The bytes of one member, counted against the unpacking budget and checked for DTDs."""
    with archive.open(name) as member:
        tail = b""
        while chunk := member.read(_CHUNK):
            book.left -= len(chunk)
            if book.left < 0:
                raise WorkbookError(_TOO_BIG)
            if not tail:
                _check_encoding(chunk)
            window = tail + chunk
            if any(marker in window for marker in _DTD):
                raise WorkbookError("This Excel file holds a document type declaration, "
                                    "which is unsafe" + _RESAVE)
            tail = chunk[-16:]
            yield chunk


def _check_encoding(start: bytes) -> None:
    """Refuse XML whose bytes could spell "<!DOCTYPE" other than in ASCII.

    The DTD check looks for ASCII bytes; UTF-16 or EBCDIC would hide them. Excel and every
    other program write UTF-8.
    """
    start = start.removeprefix(b"\xef\xbb\xbf")
    declared = _DECLARED.match(start)
    encoding = declared.group(1).lower().decode() if declared else "utf-8"
    if b"\x00" in start[:4] or encoding not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise WorkbookError(_READ)


def _plain_texts(elements) -> Iterator[str]:
    """Text of each <si> or <is>: its own <t> then every run's <t>, formatting dropped."""
    for elem in elements:
        if len(elem) == 1 and elem[0].tag == _TEXT:  # the usual unformatted string
            yield elem[0].text or ""
            continue
        plain, runs = None, []
        for child in elem:
            if child.tag == _TEXT:
                plain = child.text  # openpyxl keeps the last one
            elif child.tag == _RUN:
                text = None
                for part in child:
                    if part.tag == _TEXT:
                        text = part.text
                if text is not None:
                    runs.append(text)
        yield "".join(runs) if plain is None else plain + "".join(runs)


def _sheet_rows(archive, book: _Book) -> Iterator[tuple[int, list[str]]]:
    """Yield (number, texts) per non-blank row; openpyxl drops a row numbered at or below
    one already given, and so does this."""
    number = last = 0
    for row in _children(archive, book.sheet, book, _DATA, _ROW):
        number = _row_number(row.get("r"), number)
        if number > last:
            last = number
            texts = _row_texts(row, book)
            if texts:
                yield number, texts


def _children(archive, name: str, book: _Book, container: str, child: str) -> Iterator:
    """Yield each complete `child` element of `container` (rows, shared strings), then drop it.

    Only start events are asked for: half the events of start+end, and the next child's start
    says the previous one is complete. Children read are cut from the tree after each chunk
    (one by one would shift the rest each time), so memory stays that of a chunk.
    """
    parser = XMLPullParser(("start",))
    holder = pending = None
    parts = 0
    for chunk in _chunks(archive, name, book):
        parser.feed(chunk)
        for _, elem in parser.read_events():
            tag = elem.tag
            if tag == child:
                if pending is not None:
                    yield pending
                    pending.clear()
                pending, parts = elem, 0
            elif tag == container:
                holder = elem
            else:
                parts += 1
                if parts > _MAX_PARTS:  # one row or string this big is a crafted file
                    raise WorkbookError(_READ)
        if holder is not None:
            del holder[:]  # the pending child is still being built; the builder holds it
    parser.close()
    if pending is not None:
        yield pending


def _row_texts(row, book: _Book) -> list[str]:
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
            elif len(node) == 1 and node[0].tag == _TEXT:  # unformatted, the usual
                texts[column] = cell_text(node[0].text)
            else:
                texts[column] = cell_text(next(_plain_texts((node,))))
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


_DIGITS = "0123456789"
_COLUMNS: dict[str, int] = {}  # "C" -> 3; only well-formed references get in


def _column(ref: str) -> int:
    """The column of a reference like "C5"; anything else raises, as in openpyxl."""
    letters = ref.rstrip(_DIGITS)
    if len(letters) == len(ref):
        raise ValueError(ref)
    _COLUMNS[letters] = column_index_from_string(letters.upper())
    return _COLUMNS[letters]


def _cell_value(cell, kind: str, book: _Book) -> str:
    """Text of a cell that is not a string, from the value openpyxl's data-only reader gives."""
    raw = cell.findtext(_VALUE)  # a formula's cached result: data-only semantics
    if not raw:
        return ""
    if kind == "n":
        value = float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)
        style = int(cell.get("s") or 0)
        if style in book.date_styles:
            try:
                value = from_excel(value, book.epoch, timedelta=style in book.timedelta_styles)
            except (OverflowError, ValueError):
                value = "#VALUE!"  # openpyxl's answer to a date out of range
        return cell_text(value)
    if kind == "b":
        return str(bool(int(raw)))
    if kind == "d":
        return cell_text(from_ISO8601(raw))
    return cell_text(raw)  # "str" (a formula's text), "e" (#N/A...) and unknown kinds
