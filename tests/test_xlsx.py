"""The fast XLSX reader gives the rows openpyxl's read-only, data-only reader gave, and no more.

Each workbook below is saved by openpyxl, then often rewritten by hand the way other programs
write theirs (shared strings, formulas with cached values, no r attributes, sheets out of
order); `old_rows` is the reading utils/contacts.py did before, kept here as the reference.
"""

import datetime
import io
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from utils.xlsx import WorkbookError, cell_text, read_rows

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
SHEET = "xl/worksheets/sheet1.xml"


def old_rows(data: bytes) -> list[tuple[int, list[str]]]:
    """The openpyxl path this reader replaced, blank rows left out (nobody used them)."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()
        rows = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            cells = [cell_text(value) for value in values]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                rows.append((number, cells))
        return rows
    finally:
        book.close()


def same_rows(data: bytes) -> list[tuple[int, list[str]]]:
    rows = list(read_rows(data))
    assert rows == old_rows(data)
    return rows


def save(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_of(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    return save(book)


def rezip(data: bytes, **changes) -> bytes:
    """Rewrite members: name=bytes replaces, name=function(bytes) edits, name=None drops.

    Keyword names use "__" for "/" and "_dot_" for "." (xl__worksheets__sheet1_dot_xml).
    """
    edits = {k.replace("__", "/").replace("_dot_", "."): v for k, v in changes.items()}
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        names = src.namelist()
        for name in names + [n for n in edits if n not in names]:
            body = src.read(name) if name in names else b""
            edit = edits.get(name, body)
            if edit is None:
                continue
            dst.writestr(name, edit(body) if callable(edit) else edit)
    return out.getvalue()


def shared(data: bytes) -> bytes:
    """The same workbook with its strings in xl/sharedStrings.xml, as Excel saves them."""
    strings: list[bytes] = []

    def to_index(match):
        strings.append(match.group(3))
        return b'<c %st="s"%s><v>%d</v></c>' % (match.group(1), match.group(2), len(strings) - 1)

    def sheet(body):
        return re.sub(rb'<c ([^>]*?)t="inlineStr"([^>]*)><is>(.*?)</is></c>', to_index, body)

    data = rezip(data, xl__worksheets__sheet1_dot_xml=sheet)
    table = b"<sst %s>%s</sst>" % (NS.encode(), b"".join(b"<si>%s</si>" % s for s in strings))
    kind = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    return rezip(
        data,
        xl__sharedStrings_dot_xml=table,
        **{
            "[Content_Types]_dot_xml": lambda b: b.replace(
                b"</Types>",
                b'<Override PartName="/xl/sharedStrings.xml" ContentType="%s"/></Types>' % kind,
            )
        },
    )


MIXED = [
    ["Name", "Phone", "Note", "Amount", "Flag"],
    ["Ana", 5511912345678, "😀 مرحبا", 3.5, True],
    ["  padded  ", "+1 (415) 555-0101", None, 12345678901234567, False],
    [None, None, None, None, None],
    ["Bea", 14155550102, "tab\tinside", -0.25, None],
    ["José", "0055 11 91234-5678", "ß ç 中文", 1e-7, 0],
]


@pytest.mark.parametrize("strings", [lambda d: d, shared], ids=["inline", "shared"])
def test_values_of_every_kind_read_as_before(strings):
    rows = same_rows(strings(sheet_of(MIXED)))
    assert rows[1] == (2, ["Ana", "5511912345678", "😀 مرحبا", "3.5", "True"])
    assert [number for number, _ in rows] == [1, 2, 3, 5, 6]


def test_numbers_as_other_programs_store_them():
    data = rezip(
        sheet_of([["phone"], [1], [2], [3], [4], [5]]),
        xl__worksheets__sheet1_dot_xml=(
            lambda b: (
                b.replace(b"<v>1</v>", b"<v>5.5119123456780E+12</v>")
                .replace(b"<v>2</v>", b"<v>5511912345678.0</v>")
                .replace(b"<v>3</v>", b"<v>1.5e-3</v>")
                .replace(b"<v>4</v>", b"<v>  7 </v>")
                .replace(b"<v>5</v>", b"<v>1E+400</v>")
            )
        ),
    )
    assert [cells for _, cells in same_rows(data)] == [
        ["phone"],
        ["5511912345678"],
        ["5511912345678"],
        ["0.0015"],
        ["7"],
        ["inf"],
    ]


def test_formulas_errors_and_cell_types_use_the_cached_values():
    cells = (
        b'<c r="A2"><f>1+1</f><v>2</v></c><c r="B2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>'
        b'<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="D2"><f>NOW()</f></c>'
        b'<c r="E2" t="b"><v>1</v></c><c r="F2" t="d"><v>2024-02-29T10:30:00</v></c>'
        b'<c r="G2" t="odd"><v>kept</v></c><c r="H2" t="n"><v></v></c>'
    )
    data = rezip(
        sheet_of([["a"], ["x"]]),
        xl__worksheets__sheet1_dot_xml=lambda b: re.sub(
            rb'<row r="2".*?</row>', b'<row r="2">' + cells + b"</row>", b
        ),
    )
    assert same_rows(data)[1] == (
        2,
        ["2", "ab", "#DIV/0!", "", "True", "2024-02-29 10:30:00", "kept"],
    )


def test_gaps_blank_rows_and_cells_past_the_first_column_keep_excel_positions():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["C3"], sheet["E3"], sheet["B7"], sheet["AA9"] = "Nome", "Telefone", "Ana", "far"
    sheet["A12"] = None
    wrong_range = {
        "xl__worksheets__sheet1_dot_xml": lambda b: re.sub(
            rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A1"', b
        )
    }
    rows = same_rows(rezip(save(book), **wrong_range))
    assert rows == [
        (3, ["", "", "Nome", "", "Telefone"]),
        (7, ["", "Ana"]),
        (9, [""] * 26 + ["far"]),
    ]


def test_rows_and_cells_without_references_and_out_of_order():
    plain = rezip(
        sheet_of(MIXED), xl__worksheets__sheet1_dot_xml=lambda b: re.sub(rb' r="[A-Z]*\d+"', b"", b)
    )
    assert len(same_rows(plain)) == 5
    odd = (
        b'<row r="2"><c r="B2" t="inlineStr"><is><t>b</t></is></c><c t="inlineStr"><is>'
        b'<t>next</t></is></c></row><row r="5"><c r="C5"><v>3</v></c><c r="A5"><v>1</v></c>'
        b'</row><row r="4"><c r="A4"><v>9</v></c></row><row><c><v>5</v></c></row>'
        b'<row r="6.0"><c r="A6"><v>6</v></c><c r="A6"><v>7</v></c></row>'
        b"<row><c><v>8</v></c></row>"
    )
    data = rezip(
        sheet_of([["h"]]),
        xl__worksheets__sheet1_dot_xml=lambda b: re.sub(rb"</row>", b"</row>" + odd, b, count=1),
    )
    # Row 4 after row 5, and the unnumbered row after it (5 again), are dropped as openpyxl
    # drops them; in a row, a cell left of an earlier one narrows it, a repeat wins.
    assert same_rows(data) == [
        (1, ["h"]),
        (2, ["", "b", "next"]),
        (5, ["1"]),
        (6, ["7"]),
        (7, ["8"]),
    ]


def test_the_first_sheet_in_workbook_order_wherever_its_part_lives():
    book = openpyxl.Workbook()
    book.active.title = "Contacts"
    book.active.append(["phone", "+5511912345678"])
    book.create_sheet("Other").append(["not", "this"])
    renamed = rezip(
        save(book),
        xl__worksheets__sheet1_dot_xml=None,
        xl__worksheets__contacts_dot_xml=zipfile.ZipFile(io.BytesIO(save(book))).read(SHEET),
        xl___rels__workbook_dot_xml_dot_rels=lambda b: b.replace(b"sheet1.xml", b"contacts.xml"),
        **{"[Content_Types]_dot_xml": lambda b: b.replace(b"sheet1.xml", b"contacts.xml")},
    )
    assert same_rows(renamed) == [(1, ["phone", "+5511912345678"])]
    # Sheets listed in the other order: the workbook's order decides, not the file names.
    swapped = rezip(
        save(book),
        xl__workbook_dot_xml=lambda b: re.sub(rb"(<sheet [^>]*/>)(<sheet [^>]*/>)", rb"\2\1", b),
    )
    assert same_rows(swapped) == [(1, ["not", "this"])]


@pytest.mark.parametrize(
    "epoch", [openpyxl.utils.datetime.WINDOWS_EPOCH, openpyxl.utils.datetime.CALENDAR_MAC_1904]
)
def test_dates_times_and_durations_read_as_openpyxl_gives_them(epoch):
    book = openpyxl.Workbook()
    book.epoch = epoch
    sheet = book.active
    sheet.append(["born", "at", "took", "plain", "custom"])
    sheet.append(
        [
            datetime.datetime(1990, 5, 17),
            datetime.time(13, 45),
            datetime.timedelta(hours=30),
            45000,
            45000.5,
        ]
    )
    sheet["D2"].number_format = "0.00"
    sheet["E2"].number_format = "dd/mm/yyyy hh:mm"
    rows = same_rows(save(book))
    assert rows[1][1][:2] == ["1990-05-17 00:00:00", "13:45:00"]
    out_of_range = rezip(
        save(book),
        xl__worksheets__sheet1_dot_xml=lambda b: re.sub(
            rb'(<c r="A2"[^>]*><v>)[^<]*', rb"\g<1>1e10", b
        ),
    )
    assert same_rows(out_of_range)[1][1][0] == "#VALUE!"


@pytest.mark.parametrize("strings", [lambda d: d, shared], ids=["inline", "shared"])
def test_rich_text_runs_are_joined_and_phonetics_dropped(strings):
    book = openpyxl.Workbook()
    bold = InlineFont(b=True)
    book.active["A1"] = CellRichText([TextBlock(bold, "Ana "), "Maria", TextBlock(bold, " ")])
    book.active["B1"] = " +55 11 91234-5678 "
    data = strings(save(book))
    data = rezip(
        data,
        xl__worksheets__sheet1_dot_xml=lambda b: b.replace(
            b"</is>", b'<rPh sb="0" eb="1"><t>phonetic</t></rPh></is>', 1
        ),
    )
    assert same_rows(data) == [(1, ["Ana Maria", "+55 11 91234-5678"])]


def test_shared_strings_with_x005f_escapes_and_empty_entries():
    table = (
        b"<sst %s><si><t>a_x005F_x000D_b</t></si><si><t/></si><si><t>x</t><t>last</t>"
        b"</si></sst>" % NS.encode()
    )
    data = shared(sheet_of([["one", "two", "three"]]))
    assert same_rows(rezip(data, xl__sharedStrings_dot_xml=table)) == [
        (1, ["a_x000D_b", "", "last"])
    ]


def test_an_empty_sheet_and_a_workbook_without_worksheets():
    assert same_rows(sheet_of([])) == []
    no_sheet = rezip(sheet_of([["a"]]), xl__worksheets__sheet1_dot_xml=None)
    assert list(read_rows(no_sheet)) == []


def refusal(data: bytes, **kwargs) -> str:
    with pytest.raises(WorkbookError) as info:
        list(read_rows(data, **kwargs))
    return str(info.value)


def test_a_dtd_is_refused_before_any_entity_is_expanded():
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    )
    data = rezip(
        sheet_of([["phone"], ["+5511912345678"]]),
        xl__worksheets__sheet1_dot_xml=lambda b: re.sub(rb"^(<\?xml[^>]*\?>)?", laughs, b),
    )
    assert refusal(data) == (
        "This Excel file holds a document type declaration, which is "
        "unsafe; save it again as .xlsx or .csv."
    )


def test_xml_not_in_utf8_is_refused_as_unreadable():
    utf16 = rezip(
        sheet_of([["phone"]]),
        xl__worksheets__sheet1_dot_xml=lambda b: (
            b.replace(b"UTF-8", b"UTF-16").replace(b"utf-8", b"UTF-16").decode().encode("utf-16")
        ),
    )
    assert refusal(utf16) == "Could not read this Excel file; save it again as .xlsx or .csv."


def test_bytes_unpacked_are_counted_whatever_the_zip_declares():
    assert refusal(sheet_of([["phone"]] * 50), limit=2000).startswith(
        "This Excel file unpacks to more than 100 MB"
    )


def test_a_row_of_absurdly_many_cells_is_refused_not_held():
    row = b'<row r="1">' + b"<c/>" * 100_001 + b"</row>"
    data = rezip(
        sheet_of([["a"]]),
        xl__worksheets__sheet1_dot_xml=lambda b: re.sub(rb'<row r="1".*?</row>', row, b),
    )
    assert refusal(data) == "Could not read this Excel file; save it again as .xlsx or .csv."


def test_blank_rows_by_the_hundred_thousand_are_not_kept_in_memory(tmp_path):
    rows = b"<row/>" * 500_000 + b'<row><c t="inlineStr"><is><t>end</t></is></c></row>'
    path = tmp_path / "blank.xlsx"
    path.write_bytes(
        rezip(
            sheet_of([["a"]]),
            xl__worksheets__sheet1_dot_xml=lambda b: re.sub(rb'<row r="1".*?</row>', rows, b),
        )
    )
    # A fresh process, so its peak memory is this reading's: rows left in the tree once
    # read took ~40 MB here (tracemalloc would be exact but made the test take 10 s).
    code = textwrap.dedent(f"""
        import resource, pathlib
        from utils.xlsx import read_rows
        data = pathlib.Path({str(path)!r}).read_bytes()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert list(read_rows(data)) == [(500_001, ["end"])]
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) < 15 * 1024  # kilobytes
