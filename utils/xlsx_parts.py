"""Find and open the parts of an .xlsx upload that reading its first sheet needs.

The zip is checked before anything is unpacked; then the content types, the workbook and its
relationships say which part is sheet one, and the shared strings, the styles (which cells
show a date) and the date epoch are read as openpyxl reads them. Every member is streamed in
chunks against one unpacking budget and refused if it holds a DTD. utils.xlsx reads the rows;
every problem is a WorkbookError whose message is meant for the uploader.
"""

from __future__ import annotations  # XMLPullParser is generic to mypy only

import io
import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast
from xml.etree.ElementTree import Element, XMLPullParser

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH

from .textfile import looks_like, strip_controls

MAX_UNZIPPED = 100 * 1024 * 1024
_MAX_RATIO = 200  # real sheets deflate 5-30x; hundreds-fold on megabytes means a zip bomb
# Elements inside one row or shared string (16,384 cells is Excel's widest row, a few
# elements each): more is a crafted file, which would otherwise be held whole in memory.
_MAX_PARTS = 100_000
_CHUNK = 256 * 1024
_RESAVE = "; save it again as .xlsx or .csv."
OPEN_FAILED = "Could not open this Excel file" + _RESAVE
READ_FAILED = "Could not read this Excel file" + _RESAVE
_TOO_BIG = (
    "This Excel file unpacks to more than 100 MB; split it into smaller files or save it as .csv."
)
NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
TEXT, _RUN = NS + "t", NS + "r"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_BOOK_TYPES = tuple(
    f"application/vnd.{kind}.main+xml"
    for kind in (  # openpyxl's order
        "ms-excel.template.macroEnabled",
        "openxmlformats-officedocument.spreadsheetml.template",
        "ms-excel.sheet.macroEnabled",
        "openxmlformats-officedocument.spreadsheetml.sheet",
    )
)
_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
# DTDs are how entity bombs and external entities get in; no spreadsheet program writes one.
_DTD = (b"<!DOCTYPE", b"<!ENTITY")
_DECLARED = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")


class WorkbookError(ValueError):
    """The .xlsx file cannot be read; the message says why, for the uploader."""


@dataclass
class Book:
    """What reading the first sheet needs from the rest of the package."""

    sheet: str | None = None
    strings: list[str] = field(default_factory=list)  # already as cell text
    date_styles: set[int] = field(default_factory=set)
    timedelta_styles: set[int] = field(default_factory=set)
    epoch: object = WINDOWS_EPOCH
    left: int = MAX_UNZIPPED  # bytes that may still be unpacked, whatever sizes the zip declares


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
        raise WorkbookError(
            "This Excel file would unpack to far more than its size, which is unsafe" + _RESAVE
        )


def cell_text(value: object) -> str:
    """Text of a cell; integral floats lose ".0" so 5511912345678.0 stays a phone number."""
    # Here rather than in utils.xlsx because shared strings are turned into text once, on open.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.isprintable():  # no control characters: skips a regex on nearly every cell
        return text.strip()
    return strip_controls(text).strip()  # Excel's _x0000_ escape can carry a NUL


def open_book(archive: zipfile.ZipFile, limit: int) -> Book:
    """Find sheet one, the shared strings, date styles and epoch, as openpyxl does."""
    book = Book(left=limit)
    overrides: dict[str | None, str] = {}
    for elem, _ in _stream(archive, "[Content_Types].xml", book, {"Override"}):
        overrides.setdefault(elem.get("ContentType"), elem.get("PartName", "")[1:])
    part = next((overrides[kind] for kind in _BOOK_TYPES if kind in overrides), None)
    if part is None:
        raise WorkbookError(OPEN_FAILED)  # openpyxl's Default-type guess is not worth the code
    targets = _relationships(archive, part, book)
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
        items = children(archive, overrides[_STRINGS_TYPE], book, NS + "sst", NS + "si")
        book.strings = [cell_text(text.replace("x005F_", "")) for text in plain_texts(items)]
    if "xl/styles.xml" in names:
        _read_styles(archive, book)
    return book


def _relationships(
    archive: zipfile.ZipFile, part: str, book: Book
) -> dict[str | None, tuple[str, str]]:
    """The workbook's relationships by id: (member name, or the URL if external; type)."""
    folder, name = posixpath.split(part)
    targets: dict[str | None, tuple[str, str]] = {}
    for elem, _ in _stream(archive, f"{folder}/_rels/{name}.rels", book, {"Relationship"}):
        target = elem.get("Target", "")
        if elem.get("TargetMode") != "External":
            target = (
                target[1:]
                if target.startswith("/")
                else posixpath.normpath(posixpath.join(folder, target))
            )
        targets[elem.get("Id")] = (target, elem.get("Type", ""))
    return targets


def _read_styles(archive: zipfile.ZipFile, book: Book) -> None:
    """Note which cell styles show a date or a duration, so their numbers read as openpyxl's."""
    custom: dict[int, str | None] = {}  # openpyxl takes a missing code for "not a date"
    styles: list[int] = []
    for elem, parent in _stream(archive, "xl/styles.xml", book, {"numFmt", "xf"}):
        if elem.tag.endswith("numFmt"):
            # No id means a damaged file: the KeyError is reported as "could not open".
            custom[int(elem.attrib["numFmtId"])] = elem.get("formatCode")
        elif parent is not None and parent.tag.endswith("cellXfs"):
            styles.append(int(elem.get("numFmtId", 0)))
    for index, number_format in enumerate(styles):
        code = (
            custom[number_format] if number_format in custom else BUILTIN_FORMATS.get(number_format)
        )
        if is_date_format(code):
            book.date_styles.add(index)
        if is_timedelta_format(code):
            book.timedelta_styles.add(index)


def _stream(
    archive: zipfile.ZipFile, name: str, book: Book, wanted: set[str]
) -> Iterator[tuple[Element, Element | None]]:
    """Yield (element, parent) at the end of each element whose local name is wanted.

    Elements are dropped from the tree once read, so memory stays that of one element.
    """
    parser: XMLPullParser[Element] = XMLPullParser(("start", "end"))
    stack: list[Element] = []
    inside = 0
    for chunk in _chunks(archive, name, book):
        for event, elem in _events(parser, chunk):
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


def children(
    archive: zipfile.ZipFile, name: str, book: Book, container: str, child: str
) -> Iterator[Element]:
    """Yield each complete `child` element of `container` (rows, shared strings), then drop it.

    Only start events are asked for: half the events of start+end, and the next child's start
    says the previous one is complete. Children read are cut from the tree after each chunk
    (one by one would shift the rest each time), so memory stays that of a chunk.
    """
    parser: XMLPullParser[Element] = XMLPullParser(("start",))
    holder: Element | None = None
    pending: Element | None = None
    parts = 0
    for chunk in _chunks(archive, name, book):
        for _, elem in _events(parser, chunk):
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
                    raise WorkbookError(READ_FAILED)
        if holder is not None:
            del holder[:]  # the pending child is still being built; the builder holds it
    parser.close()
    if pending is not None:
        yield pending


def _events(parser: XMLPullParser[Element], chunk: bytes) -> Iterator[tuple[str, Element]]:
    """Feed one chunk and return the events it completed."""
    parser.feed(chunk)
    # typeshed types every event kind; only "start" and "end" are asked for, and each of those
    # carries an Element. A cast costs nothing per event, unlike an isinstance in this loop.
    return cast(Iterator[tuple[str, Element]], parser.read_events())


def _chunks(archive: zipfile.ZipFile, name: str, book: Book) -> Iterator[bytes]:
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
                raise WorkbookError(
                    "This Excel file holds a document type declaration, which is unsafe" + _RESAVE
                )
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
        raise WorkbookError(READ_FAILED)


def plain_texts(elements: Iterable[Element]) -> Iterator[str]:
    """Text of each <si> or <is>: its own <t> then every run's <t>, formatting dropped."""
    for elem in elements:
        if len(elem) == 1 and elem[0].tag == TEXT:  # the usual unformatted string
            yield elem[0].text or ""
            continue
        plain: str | None = None
        runs: list[str] = []
        for child in elem:
            if child.tag == TEXT:
                plain = child.text  # openpyxl keeps the last one
            elif child.tag == _RUN:
                text = None
                for part in child:
                    if part.tag == TEXT:
                        text = part.text
                if text is not None:
                    runs.append(text)
        yield "".join(runs) if plain is None else plain + "".join(runs)
