"""Contact files as users really send them: encodings, delimiters, spreadsheets, junk."""

import codecs
import io
import zipfile

import openpyxl
import pytest

from utils.contacts import (
    Contact,
    ContactFileError,
    ContactList,
    parse_contacts_file,
    parse_numbers_text,
)

PHONE = "+5511912345678"


def parse(text_or_bytes, filename="contacts.csv", **kwargs) -> ContactList:
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    return parse_contacts_file(data, filename, **kwargs)


def refused(data, filename="contacts.csv", **kwargs) -> ContactFileError:
    with pytest.raises(ContactFileError) as info:
        parse(data, filename, **kwargs)
    return info.value


def xlsx_bytes(rows, tmp_path, patches=None) -> bytes:
    """Save rows with openpyxl to a real file; patches rewrite the sheet XML afterwards."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    data = path.read_bytes()
    if not patches:
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                for old, new in patches.items():
                    assert old in body
                    body = body.replace(old, new)
            dst.writestr(item, body)
    return out.getvalue()


# --- CSV: encodings and delimiters ---------------------------------------------------------


def test_csv_with_utf8_bom():
    result = parse(codecs.BOM_UTF8 + b"Name,Phone\r\nAna,+55 11 91234-5678\r\n")
    assert result == ContactList(
        columns=["name", "phone"],
        phone_column="phone",
        headers=["Name", "Phone"],
        contacts=[
            Contact(
                row=2,
                phone="+55 11 91234-5678",
                variables={"name": "Ana", "phone": "+55 11 91234-5678"},
            )
        ],
    )


def test_semicolon_delimiter_with_commas_inside_values():
    result = parse("Nome;Celular;Cidade\nSilva, Ana;(11) 91234-5678;São Paulo\n")
    assert result.phone_column == "celular"
    assert result.contacts[0].variables == {
        "nome": "Silva, Ana",
        "celular": "(11) 91234-5678",
        "cidade": "São Paulo",
    }


def test_tab_delimiter_and_tsv_extension():
    for name in ("contacts.csv", "contacts.tsv"):
        result = parse("name\tphone\tnote\nAna\t+5511912345678\thello, world\n", name)
        assert result.columns == ["name", "phone", "note"]
        assert result.contacts[0].variables["note"] == "hello, world"


def test_quoted_values_after_a_space():
    result = parse('name, phone, note\n"Silva, Ana", "+55 11 91234-5678", "a, b"\n')
    assert result.contacts[0].variables == {
        "name": "Silva, Ana",
        "phone": "+55 11 91234-5678",
        "note": "a, b",
    }


def test_delimiter_is_counted_in_the_header_when_the_sniffer_gives_up():
    # Ragged rows full of commas make csv.Sniffer fail; the header still says ";".
    text = "name;phone\n" + "".join(
        f"Silva, Ana, {i};+55119123456{i:02d}" + (";x" if i % 2 else "") + "\n" for i in range(20)
    )
    result = parse(text)
    assert result.columns == ["name", "phone", "column_3"]
    assert result.contacts[3].variables == {
        "name": "Silva, Ana, 3",
        "phone": "+5511912345603",
        "column_3": "x",
    }


def test_pipe_delimiter():
    assert parse("name|phone\nAna|+5511912345678\n").contacts[0].phone == PHONE


def test_single_column_csv():
    result = parse("Phone\n+5511912345678\n+14155550101\n")
    assert [c.phone for c in result.contacts] == [PHONE, "+14155550101"]


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF16_LE + "name,phone\r\nZoë,+5511912345678\r\n".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "name,phone\r\nZoë,+5511912345678\r\n".encode("utf-16-be"),
        "name,phone\r\nZoë,+5511912345678\r\n".encode("utf-16-le"),  # no BOM at all
    ],
)
def test_utf16_files(data):
    result = parse(data)
    assert result.contacts == [Contact(2, PHONE, {"name": "Zoë", "phone": PHONE})]


def test_utf16_tab_separated_as_excel_saves_unicode_text(tmp_path):
    path = tmp_path / "contacts.txt"
    path.write_text("name\tphone\nAna\t+5511912345678\n", encoding="utf-16")
    # A .txt is one number a line: the tab-separated line is kept whole for the API to reject.
    result = parse_contacts_file(path.read_bytes(), "contacts.txt")
    assert [c.phone for c in result.contacts] == ["Ana\t+5511912345678"]


def test_cp1252_file(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(
        "name;phone\nJosé;+5511912345678\nFrançois – “Chef”;+14155550101\n".encode("cp1252")
    )
    result = parse_contacts_file(path.read_bytes(), "contacts.csv")
    assert [c.variables["name"] for c in result.contacts] == ["José", "François – “Chef”"]


def test_emoji_and_rtl_text_in_other_columns_are_intact():
    name = "😀 مرحبا بك \u200fשלום 👩🏽‍💻"
    result = parse(f"name,phone\n{name},+5511912345678\n")
    assert result.contacts[0].variables["name"] == name


def test_cell_longer_than_csv_default_limit_is_read():
    note = "x" * 200_000
    result = parse(f'name,phone,note\nAna,+5511912345678,"{note}"\nBea,+14155550101,short\n')
    assert len(result.contacts[0].variables["note"]) == 200_000
    assert result.contacts[1].row == 3


def test_blank_rows_are_skipped_but_row_numbers_stay_spreadsheet_rows():
    result = parse("name,phone\n\nAna,+5511912345678\n,,\n  ,  \nBea,+14155550101\n")
    assert [(c.row, c.variables["name"]) for c in result.contacts] == [(3, "Ana"), (6, "Bea")]


def test_multiline_quoted_cell_counts_as_one_row():
    result = parse('name,phone\n"Ana\nMaria",+5511912345678\nBea,+14155550101\n')
    rows = [(c.row, c.variables["name"]) for c in result.contacts]
    assert rows == [(2, "Ana\nMaria"), (3, "Bea")]


def test_short_rows_keep_their_cells_and_extra_cells_become_columns():
    # A short row is not padded (one wide row would make every row as wide); the cells it
    # lacks read as "" where the message uses them.
    result = parse("name,phone,city\nAna,+5511912345678\nBea,+14155550101,Rio,extra\n")
    assert result.columns == ["name", "phone", "city", "column_4"]
    assert result.headers == ["name", "phone", "city", ""]
    assert result.contacts[0].variables == {"name": "Ana", "phone": PHONE}
    assert result.contacts[1].variables["column_4"] == "extra"


def test_contact_with_empty_phone_is_kept_for_the_api_to_report():
    result = parse("name,phone\nAna,\nBea,+14155550101\n")
    assert [(c.row, c.phone) for c in result.contacts] == [(2, ""), (3, "+14155550101")]


# --- column names and the phone column -----------------------------------------------------


def test_duplicate_and_empty_headers_get_unique_names():
    result = parse("Name,,NAME,Phone, First  Name ,name_2\na,b,c,+5511912345678,e,f\n")
    assert result.columns == ["name", "column_2", "name_2", "phone", "first_name", "name_2_2"]
    assert result.headers == ["Name", "", "NAME", "Phone", "First  Name", "name_2"]
    assert result.contacts[0].variables["name_2"] == "c"


def test_phone_column_found_by_portuguese_header():
    result = parse("Nome,Celular\nAna,11 91234-5678\n")
    assert result.phone_column == "celular"
    assert result.contacts[0].phone == "11 91234-5678"


def test_first_known_header_from_the_left_wins():
    result = parse("Tel,WhatsApp,Phone\n1,2,3\n")
    assert result.phone_column == "tel"
    assert result.contacts[0].phone == "1"


def test_phone_column_found_by_content_when_no_header_matches():
    text = (
        "Cliente,Código,Contato\n"
        "Ana,12345,+55 (11) 91234-5678\n"
        "Bea,67890,(415) 555-0101\n"
        "Caio,11111,não tem\n"
    )
    result = parse(text)
    assert result.phone_column == "contato"
    assert [c.phone for c in result.contacts] == [
        "+55 (11) 91234-5678",
        "(415) 555-0101",
        "não tem",
    ]


def test_phone_column_chosen_by_header_or_variable_name():
    text = "Name,Home Phone,Mobile Number\nAna,+14155550101,+5511912345678\n"
    for wanted in ("Mobile Number", "mobile number", "mobile_number", "  MOBILE NUMBER "):
        result = parse(text, phone_column=wanted)
        assert result.phone_column == "mobile_number"
        assert result.contacts[0].phone == PHONE
    assert parse(text, phone_column="").phone_column == "home_phone"  # empty form field


def test_unknown_phone_column_lists_the_columns():
    error = refused("Name,,Phone\nAna,x,+5511912345678\n", phone_column="Cell")
    assert error.field == "phone_column"
    assert error.message == (
        "There is no column named 'Cell'. Columns in the file: Name, column_2, Phone."
    )


def test_no_phone_column_at_all():
    error = refused("name,city\nAna,Rio\nBea,Lima\n")
    assert error.field == "phone_column"
    assert error.message == "Could not find a phone number column; choose one with phone_column."


# --- empty, too big, wrong kind ------------------------------------------------------------


@pytest.mark.parametrize(
    "data, filename",
    [
        (b"", "c.csv"),
        (b"  \r\n\t\n", "c.csv"),
        (codecs.BOM_UTF8, "c.csv"),
        (codecs.BOM_UTF8 + b"\n\n", "c.csv"),
        (codecs.BOM_UTF16_LE, "c.csv"),
        (b"", "c.txt"),
        (b"", "c.xlsx"),
        (b"\n\n", "c.txt"),
    ],
)
def test_empty_file(data, filename):
    error = refused(data, filename)
    assert (error.message, error.field) == ("The file is empty.", "file")


def test_header_only():
    assert refused("name,phone\n").message == "The file has a header row but no contacts."
    assert refused("name,phone\n,\n\n").message == "The file has a header row but no contacts."


def test_more_rows_than_the_limit():
    text = "phone\n" + "".join(f"+55119123456{i:02d}\n" for i in range(11))
    error = refused(text, max_rows=10)
    assert error.message == (
        "The list has more than 10 contacts, the most one job can take; "
        "split it into smaller files."
    )
    assert len(parse(text, max_rows=11).contacts) == 11


@pytest.mark.parametrize(
    "filename, shown",
    [
        ("contacts.xls", "'.xls'"),
        ("photo.PNG", "'.png'"),
        ("contacts", "(no extension)"),
        ("", "(no extension)"),
    ],
)
def test_unsupported_file_type(filename, shown):
    error = refused("phone\n+5511912345678\n", filename)
    assert error.message == f"Unsupported file type {shown}: use .csv, .xlsx or .txt."


def test_extension_is_case_insensitive():
    assert parse("phone\n+5511912345678\n", "CONTACTS.CSV").contacts[0].phone == PHONE


def test_csv_that_is_really_a_png():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    error = refused(png, "contacts.csv")
    assert error.message == "This does not look like a text/CSV file (it looks like a PNG image)."
    assert error.field == "file"


def test_csv_that_is_really_an_xlsx(tmp_path):
    data = xlsx_bytes([["phone"], [PHONE]], tmp_path)
    error = refused(data, "contacts.csv")
    assert error.message == (
        "This does not look like a text/CSV file (it looks like an Excel .xlsx or other ZIP file)."
    )


def test_unknown_binary_in_a_csv_is_refused():
    error = refused(b"\x01\x02\x03\x00\x00\x00" * 100, "contacts.txt")
    assert error.message == "This does not look like a text/CSV file (it contains binary data)."


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_phone_as_float_int_and_text(tmp_path):
    rows = [
        ["Name", "Phone", "Note"],
        ["Ana", 1111111111111, "😀 مرحبا"],
        ["Bea", 2222222222222, None],
        ["Caio", 5511912345678, 42],
        ["Dani", "+1 (415) 555-0101", 3.5],
    ]
    # openpyxl writes an integral float without ".0"; patch the XML the way other
    # spreadsheet programs store such numbers, so the reader really meets floats.
    data = xlsx_bytes(
        rows,
        tmp_path,
        patches={
            b"<v>1111111111111</v>": b"<v>5.511912345678E+12</v>",
            b"<v>2222222222222</v>": b"<v>5511912345678.0</v>",
        },
    )
    result = parse(data, "contacts.xlsx")
    assert result.columns == ["name", "phone", "note"]
    assert [(c.row, c.phone) for c in result.contacts] == [
        (2, "5511912345678"),
        (3, "5511912345678"),
        (4, "5511912345678"),
        (5, "+1 (415) 555-0101"),
    ]
    assert [c.variables.get("note", "") for c in result.contacts] == ["😀 مرحبا", "", "42", "3.5"]


def test_xlsx_header_below_blank_rows_keeps_excel_row_numbers(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B3"], sheet["C3"] = "Nome", "Telefone"
    sheet["B4"], sheet["C4"] = "Ana", "+5511912345678"
    sheet["B6"], sheet["C6"] = "Bea", "+14155550101"
    book.create_sheet("Second")["A1"] = "ignored"
    path = tmp_path / "c.xlsx"
    book.save(path)
    result = parse(path.read_bytes(), "c.xlsx")
    assert result.headers == ["", "Nome", "Telefone"]
    assert result.phone_column == "telefone"
    assert [(c.row, c.variables["nome"]) for c in result.contacts] == [(4, "Ana"), (6, "Bea")]


def test_xlsx_with_a_wrong_used_range_is_read_to_the_end(tmp_path):
    rows = [["name", "phone"]] + [[f"n{i}", f"+55119123456{i:02d}"] for i in range(5)]
    wrong_range = {b'<dimension ref="A1:B6"': b'<dimension ref="A1:B2"'}
    data = xlsx_bytes(rows, tmp_path, patches=wrong_range)
    result = parse(data, "c.xlsx")
    assert [c.row for c in result.contacts] == [2, 3, 4, 5, 6]
    assert result.contacts[-1].phone == "+5511912345604"


def test_xlsx_empty_sheet_and_header_only(tmp_path):
    assert refused(xlsx_bytes([], tmp_path), "c.xlsx").message == "The file is empty."
    header_only = xlsx_bytes([["name", "phone"]], tmp_path)
    assert refused(header_only, "c.xlsx").message == "The file has a header row but no contacts."


def test_xlsx_that_is_not_a_zip():
    error = refused("name,phone\nAna,+5511912345678\n", "contacts.xlsx")
    assert error.message == "This does not look like an Excel .xlsx file."
    error = refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "contacts.xlsx")
    assert error.message == (
        "This does not look like an Excel .xlsx file (it looks like a PNG image)."
    )
    error = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "contacts.xlsx")
    assert error.message == "This is an old Excel .xls file; save it as .xlsx or .csv."


def test_xlsx_damaged_or_not_a_workbook():
    error = refused(b"PK\x03\x04" + b"garbage" * 20, "contacts.xlsx")
    assert error.message == "This Excel file is damaged; save it again as .xlsx or .csv."
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    error = refused(out.getvalue(), "contacts.xlsx")
    assert error.message == "Could not open this Excel file; save it again as .xlsx or .csv."


def zeros_zip(megabytes: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = b"0" * (1 << 20)
            for _ in range(megabytes):
                sheet.write(chunk)
    return out.getvalue()


def test_xlsx_zip_bomb_is_refused_before_opening():
    data = zeros_zip(150)
    assert len(data) < 2_000_000  # 150 MB of zeros deflates to almost nothing
    error = refused(data, "contacts.xlsx")
    assert error.message == (
        "This Excel file unpacks to more than 100 MB; split it into "
        "smaller files or save it as .csv."
    )


def test_xlsx_absurd_compression_ratio_is_refused():
    error = refused(zeros_zip(20), "contacts.xlsx")
    assert error.message == (
        "This Excel file would unpack to far more than its size, which is "
        "unsafe; save it again as .xlsx or .csv."
    )


# --- TXT and pasted numbers ----------------------------------------------------------------


def test_txt_with_blank_lines_and_a_title_line():
    data = b"Numbers\r\n\r\n+55 11 91234-5678\n\n   \n0055 (11) 91234.5678\n12ab\n"
    result = parse(data, "numbers.txt")
    assert result.columns == ["phone"] and result.phone_column == "phone"
    assert [(c.row, c.phone) for c in result.contacts] == [
        (3, "+55 11 91234-5678"),
        (6, "0055 (11) 91234.5678"),
        (7, "12ab"),
    ]
    assert result.contacts[0].variables == {"phone": "+55 11 91234-5678"}


def test_txt_first_line_with_digits_is_a_number():
    result = parse("+5511912345678\n+14155550101", "n.txt")
    assert [c.row for c in result.contacts] == [1, 2]


def test_txt_with_only_a_title():
    assert refused("Numbers\n\n", "n.txt").message == "The file has a header row but no contacts."


def test_pasted_numbers():
    text = "+55 11 91234-5678, 0055 (11) 91234.5678;\n\n+14155550101\r\n;;"
    result = parse_numbers_text(text)
    assert [(c.row, c.phone) for c in result.contacts] == [
        (1, "+55 11 91234-5678"),
        (2, "0055 (11) 91234.5678"),
        (3, "+14155550101"),
    ]
    assert result.phone_column == "phone"


@pytest.mark.parametrize("text", ["", "  \n ,; ", None])
def test_pasted_numbers_empty(text):
    with pytest.raises(ContactFileError) as info:
        parse_numbers_text(text)
    assert (info.value.field, info.value.message) == ("numbers", "No phone numbers were given.")


def test_pasted_numbers_limit():
    with pytest.raises(ContactFileError) as info:
        parse_numbers_text("1111111,2222222,3333333", max_rows=2)
    assert info.value.field == "numbers"
