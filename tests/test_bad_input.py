"""Bad input a user will send (reliability.md): each gets a clear 4xx and nothing half-created."""

from __future__ import annotations

import base64
import csv
import io
import threading
import zipfile
from http.client import HTTPConnection
from pathlib import Path

import openpyxl
import pytest
from werkzeug.serving import make_server

from app import create_app
from message_queue import Queue

GOOD = "+14155550101"
PDF_B64 = base64.b64encode(b"%PDF-1.4\n").decode()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


# ---------------------------------------------------------------- helpers


def count_rows(queue):
    conn = queue.db.connection()
    return (
        conn.execute("SELECT count(*) FROM jobs").fetchone()[0],
        conn.execute("SELECT count(*) FROM messages").fetchone()[0],
    )


def stored_files(settings):
    folder = Path(settings.upload_dir)
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def assert_refused(resp, status, queue, settings, validation=None):
    """A problem+json with `status`, and no job, message row or stored file left behind."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status and body["title"] and body["detail"]
    if validation is None:
        validation = status == 422
    if validation:
        assert body["errors"], body
        for error in body["errors"]:
            assert ("field" in error or "row" in error) and error["message"], error
    assert count_rows(queue) == (0, 0)
    assert stored_files(settings) == []
    return body


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pdf_attachment():
    return {"filename": "menu.pdf", "content_base64": PDF_B64}


# ---------------------------------------------------------------- JSON bodies → 422

JSON_422 = {
    "all invalid numbers": ({"message": "Hi", "numbers": ["12ab", "+1415555", "hello"]}, "row"),
    "empty message": ({"message": "", "numbers": [GOOD]}, "message"),
    "missing message": ({"numbers": [GOOD]}, "message"),
    "whitespace-only message": ({"message": " \n\t\u00a0 ", "numbers": [GOOD]}, "message"),
    "70,000-character message": ({"message": "x" * 70_000, "numbers": [GOOD]}, "message"),
    "placeholder naming no column": (
        {"message": "Hi {nmae}", "contacts": [{"phone": GOOD, "name": "Ana"}]},
        "message",
    ),
    "placeholder on pasted numbers": ({"message": "Hi {name}", "numbers": [GOOD]}, "message"),
    "contacts is a string": ({"message": "Hi", "contacts": "abc"}, "contacts"),
    "contacts is an object": ({"message": "Hi", "contacts": {"phone": GOOD}}, "contacts"),
    "numbers is a number": ({"message": "Hi", "numbers": 5}, "numbers"),
    "numbers is an object": ({"message": "Hi", "numbers": {"a": GOOD}}, "numbers"),
    "contacts with a non-object": ({"message": "Hi", "contacts": [{"phone": GOOD}, "abc"]}, "row"),
    "contact value is a list": ({"message": "Hi", "contacts": [{"phone": [GOOD]}]}, "row"),
    "number is a list": ({"message": "Hi", "numbers": [[GOOD]]}, "row"),
    "no recipients at all": ({"message": "Hi"}, "contacts"),
    "empty recipient lists": ({"message": "Hi", "contacts": [], "numbers": []}, "contacts"),
    "numbers text without numbers": ({"message": "Hi", "numbers": " ,; \n"}, "numbers"),
    "message is a number": ({"message": 42, "numbers": [GOOD]}, "message"),
    "message with NUL": ({"message": "Hi\x00there", "numbers": [GOOD]}, "message"),
    "unknown channel": ({"message": "Hi", "numbers": [GOOD], "channel": "telegram"}, "channel"),
    "channel in capitals": ({"message": "Hi", "numbers": [GOOD], "channel": "SMS"}, "channel"),
    "unknown default_country": (
        {"message": "Hi", "numbers": ["11912345678"], "default_country": "XX"},
        "default_country",
    ),
    "default_country is a number": (
        {"message": "Hi", "numbers": [GOOD], "default_country": 55},
        "default_country",
    ),
    "phone_column naming no field": (
        {"message": "Hi", "phone_column": "mobile", "contacts": [{"phone": GOOD}]},
        "phone_column",
    ),
    "phone_column is a list": (
        {"message": "Hi", "phone_column": ["phone"], "contacts": [{"phone": GOOD}]},
        "phone_column",
    ),
    "unknown JSON field": ({"message": "Hi", "numbers": [GOOD], "numbrs": [GOOD]}, "numbrs"),
    "name longer than 200": ({"message": "Hi", "numbers": [GOOD], "name": "n" * 201}, "name"),
    "attachment of type .exe": (
        {
            "message": "Hi",
            "numbers": [GOOD],
            "attachment": {"filename": "setup.exe", "content_base64": PDF_B64},
        },
        "attachment",
    ),
    "attachment without extension": (
        {
            "message": "Hi",
            "numbers": [GOOD],
            "attachment": {"filename": "menu", "content_base64": PDF_B64},
        },
        "attachment",
    ),
    "attachment named .pdf.exe": (
        {
            "message": "Hi",
            "numbers": [GOOD],
            "attachment": {"filename": "menu.pdf.exe", "content_base64": PDF_B64},
        },
        "attachment",
    ),
    "attachment with bad base64": (
        {
            "message": "Hi",
            "numbers": [GOOD],
            "attachment": {"filename": "menu.pdf", "content_base64": "%%% not base64 %%%"},
        },
        "attachment",
    ),
    "attachment that is empty": (
        {
            "message": "Hi",
            "numbers": [GOOD],
            "attachment": {"filename": "menu.pdf", "content_base64": ""},
        },
        "attachment",
    ),
    "contacts with 1,001 fields": (
        {"message": "Hi", "contacts": [{"phone": GOOD, **{f"f{i}": "" for i in range(1_001)}}]},
        "contacts",
    ),
    "attachment is a string": (
        {"message": "Hi", "numbers": [GOOD], "attachment": PDF_B64},
        "attachment",
    ),
    "attachment on an sms job": (
        {"message": "Hi", "numbers": [GOOD], "channel": "sms", "attachment": pdf_attachment()},
        "attachment",
    ),
}


@pytest.mark.parametrize("body, where", JSON_422.values(), ids=JSON_422.keys())
def test_bad_json_send_is_422_and_writes_nothing(client, auth, queue, settings, body, where):
    resp = client.post("/send", json=body, headers=auth)
    problem = assert_refused(resp, 422, queue, settings)
    key = "row" if where == "row" else "field"
    assert any(key in e for e in problem["errors"]), problem
    if key == "field":
        assert where in [e.get("field") for e in problem["errors"]], problem


RAW_JSON = {
    # Python's parser would accept these; the API must not.
    "NaN in a contact value": (
        b'{"message": "Hi", "contacts": [{"phone": "+14155550101", "score": NaN}]}',
        400,
    ),
    "Infinity as a number": (b'{"message": "Hi", "numbers": [Infinity]}', 400),
    "lone surrogate in the message": (
        b'{"message": "Hi \\ud800", "numbers": ["+14155550101"]}',
        422,
    ),
    "lone surrogate in a contact": (
        b'{"message": "Hi {name}", "contacts": [{"phone": "+14155550101", "name": "\\udfff"}]}',
        422,
    ),
    "lone surrogate in a column name": (
        b'{"message": "Hi", "contacts": [{"phone": "+14155550101", "\\ud800": "x"}]}',
        422,
    ),
    "lone surrogate in a number": (b'{"message": "Hi", "numbers": ["+1415555\\ud8000101"]}', 422),
    "lone surrogate in attachment name": (
        b'{"message": "Hi", "numbers": ["+14155550101"], '
        b'"attachment": {"filename": "\\ud800.pdf", '
        b'"content_base64": "JVBERi0="}}',
        422,
    ),
    "number overflowing to infinity": (
        b'{"message": "Hi", "contacts": [{"phone": "+14155550101", "n": 1e400}]}',
        422,
    ),
    "phone overflowing to infinity": (b'{"message": "Hi", "numbers": [-1e999]}', 422),
    "JSON array at top level": (b'[{"message": "Hi", "numbers": ["+14155550101"]}]', 422),
    "null body": (b"null", 422),
    "a bare string": (b'"Hi"', 422),
    "invalid JSON": (b'{"message": "Hi", "numbers": [', 400),
    "trailing comma": (b'{"message": "Hi",}', 400),
    "invalid UTF-8": (b'{"message": "\xff\xfe Hi", "numbers": ["+14155550101"]}', 400),
    "empty body": (b"", 400),
    "whitespace body": (b"  \n ", 400),
    "integer with 5000 digits": (b'{"message": "Hi", "numbers": [' + b"1" * 5000 + b"]}", 400),
}


@pytest.mark.parametrize("raw, status", RAW_JSON.values(), ids=RAW_JSON.keys())
def test_raw_json_bodies(client, auth, queue, settings, raw, status):
    resp = client.post("/send", data=raw, content_type="application/json", headers=auth)
    assert_refused(resp, status, queue, settings)


def test_surrogate_message_names_the_field(client, auth, queue, settings):
    resp = client.post(
        "/send",
        data=b'{"message": "\\ud800", "numbers": ["+14155550101"]}',
        content_type="application/json",
        headers=auth,
    )
    body = assert_refused(resp, 422, queue, settings)
    assert body["errors"] == [{"field": "message", "message": body["detail"]}]


# ---------------------------------------------------------------- files and forms → 422


def _form_file(data: bytes, filename: str, **fields):
    return {"message": "Hi", **fields, "file": (io.BytesIO(data), filename)}


def fresh(form: dict) -> dict:
    """A copy of a form whose files can be read again: the test client closes what it sent,
    and these forms are shared with test_app_page."""
    return {
        k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v
        for k, v in form.items()
    }


def _zip_with_text():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("phones.txt", "+14155550101\n")
    return out.getvalue()


FORM_422 = {
    "empty file": _form_file(b"", "contacts.csv"),
    "blank file": _form_file(b"\n\r\n  \n", "contacts.csv"),
    "BOM-only file": _form_file(b"\xef\xbb\xbf", "contacts.csv"),
    "header-only CSV": _form_file(b"phone,name\n", "contacts.csv"),
    "header-only TXT": _form_file(b"Numbers\n", "numbers.txt"),
    "header-only XLSX": _form_file(xlsx_bytes([["phone", "name"]]), "contacts.xlsx"),
    "empty XLSX": _form_file(xlsx_bytes([]), "contacts.xlsx"),
    ".csv that is really a PNG": _form_file(PNG + b"\x00" * 64, "contacts.csv"),
    ".txt that is really a PDF": _form_file(b"%PDF-1.7\n1 0 obj", "numbers.txt"),
    "XLSX that is not a zip": _form_file(b"phone,name\n+14155550101,Ana\n", "contacts.xlsx"),
    "XLSX that is a broken zip": _form_file(b"PK\x03\x04" + b"\x00" * 100, "contacts.xlsx"),
    "zip that is not a workbook": _form_file(_zip_with_text(), "contacts.xlsx"),
    "old .xls saved as .xlsx": _form_file(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "contacts.xlsx"
    ),
    "unsupported file type": _form_file(b"phone\n+14155550101\n", "contacts.pdf"),
    "CSV without any phone column": _form_file(b"name,city\nAna,Rio\nBia,Lima\n", "c.csv"),
    "phone_column naming no column": _form_file(
        b"phone,name\n+14155550101,Ana\n", "c.csv", phone_column="mobile"
    ),
    "CSV of only invalid numbers": _form_file(b"phone\n12ab\n+1415555\n", "c.csv"),
    "placeholder naming no column of the file": _form_file(
        b"phone,name\n+14155550101,Ana\n", "c.csv", message="Hi {surname}"
    ),
    "pasted numbers are only separators": {"message": "Hi", "numbers": ",;,\n;"},
    "no recipients in the form": {"message": "Hi"},
    "empty message in the form": {"message": "", "numbers": GOOD},
    "unknown channel in the form": {"message": "Hi", "numbers": GOOD, "channel": "fax"},
    "unknown country in the form": {
        "message": "Hi",
        "numbers": "11912345678",
        "default_country": "QQ",
    },
    "name too long in the form": {"message": "Hi", "numbers": GOOD, "name": "n" * 201},
    "attachment .exe in the form": {
        "message": "Hi",
        "numbers": GOOD,
        "attachment": (io.BytesIO(b"MZ\x90\x00"), "setup.exe"),
    },
    "empty attachment in the form": {
        "message": "Hi",
        "numbers": GOOD,
        "attachment": (io.BytesIO(b""), "menu.pdf"),
    },
    "attachment on an sms job in the form": {
        "message": "Hi",
        "numbers": GOOD,
        "channel": "sms",
        "attachment": (io.BytesIO(PNG), "a.png"),
    },
    "attachment with a bad file": {
        "message": "Hi",
        "numbers": GOOD,
        "attachment": (io.BytesIO(PNG), "a.png"),
        "file": (io.BytesIO(b""), "c.csv"),
    },
}


@pytest.mark.parametrize("form", FORM_422.values(), ids=FORM_422.keys())
def test_bad_form_send_is_422_and_writes_nothing(client, auth, queue, settings, form):
    resp = client.post("/send", data=fresh(form), headers=auth, content_type="multipart/form-data")
    assert_refused(resp, 422, queue, settings)


def test_binary_csv_error_says_what_it_looks_like(client, auth, queue, settings):
    resp = client.post(
        "/send",
        data=_form_file(PNG, "contacts.csv"),
        headers=auth,
        content_type="multipart/form-data",
    )
    body = assert_refused(resp, 422, queue, settings)
    assert "PNG" in body["detail"] and body["errors"][0]["field"] == "file"


# ---------------------------------------------------------------- other status codes


def test_body_over_max_upload_is_413(settings, queue):
    small = settings.replace(max_upload_mb=0.01)  # about 10 kB
    client = create_app(small, queue).test_client()
    headers = {"X-API-Key": settings.api_key}
    big = {"message": "x" * 20_000, "numbers": [GOOD]}
    body = assert_refused(client.post("/send", json=big, headers=headers), 413, queue, settings)
    assert "MAX_UPLOAD_MB" in body["detail"] and "0.01" in body["detail"]
    form = {
        "message": "Hi",
        "numbers": GOOD,
        "attachment": (io.BytesIO(b"%PDF" + b"0" * 20_000), "menu.pdf"),
    }
    resp = client.post("/send", data=form, headers=headers, content_type="multipart/form-data")
    assert_refused(resp, 413, queue, settings)
    # just under the cap is fine
    assert (
        client.post("/send", json={"message": "Hi", "numbers": [GOOD]}, headers=headers).status_code
        == 202
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "text/csv", "application/octet-stream"]
)
def test_wrong_content_type_is_415(client, auth, queue, settings, content_type):
    resp = client.post(
        "/send",
        data=b'{"message": "Hi", "numbers": ["+14155550101"]}',
        content_type=content_type,
        headers=auth,
    )
    assert_refused(resp, 415, queue, settings)


def test_missing_content_type_is_415(client, auth, queue, settings):
    resp = client.post("/send", data=b'{"message": "Hi"}', headers=auth)
    assert_refused(resp, 415, queue, settings)


@pytest.mark.parametrize("key", ["k" * 300, " "])
def test_bad_idempotency_key_is_422(client, auth, queue, settings, key):
    body = {"message": "Hi", "numbers": [GOOD], "attachment": pdf_attachment()}
    resp = client.post("/send", json=body, headers={**auth, "Idempotency-Key": key})
    problem = assert_refused(resp, 422, queue, settings)
    assert problem["errors"][0]["field"] == "Idempotency-Key"


def test_missing_api_key_on_send_is_401(client, queue, settings):
    resp = client.post("/send", json={"message": "Hi", "numbers": [GOOD]})
    assert_refused(resp, 401, queue, settings)
    assert resp.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "job_id",
    [
        "1 OR 1=1",
        "1' OR '1'='1",
        "'; DROP TABLE jobs; --",
        "%25",
        "j_" + "a" * 5000,
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
    ],
)
@pytest.mark.parametrize(
    "method, template",
    [
        ("GET", "/status/{}"),
        ("POST", "/pause/{}"),
        ("POST", "/resume/{}"),
        ("POST", "/stop/{}"),
        ("GET", "/jobs/{}/messages"),
        ("GET", "/jobs/{}/export.csv"),
    ],
)
def test_odd_job_ids_are_404(client, auth, queue, method, template, job_id):
    real = client.post("/send", json={"message": "Hi", "numbers": [GOOD]}, headers=auth)
    assert real.status_code == 202
    resp = client.open(template.format(job_id), method=method, headers=auth)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert queue.get_job(real.get_json()["job_id"])["status"] == "pending"
    assert count_rows(queue) == (1, 1)


def test_pause_sent_twice(client, auth, queue):
    job_id = client.post(
        "/send", json={"message": "Hi", "numbers": [GOOD]}, headers=auth
    ).get_json()["job_id"]
    assert client.post(f"/pause/{job_id}", headers=auth).status_code == 200
    second = client.post(f"/pause/{job_id}", headers=auth)
    assert second.status_code == 409 and second.mimetype == "application/problem+json"
    assert second.get_json()["status"] == 409
    assert queue.get_job(job_id)["status"] == "paused"


@pytest.mark.parametrize(
    "move, setup, final",
    [("pause", None, "paused"), ("resume", "pause", "pending"), ("stop", None, "stopped")],
)
def test_the_same_move_twice_at_once_on_a_threaded_server(app, auth, queue, move, setup, final):
    """Eight clients send the same move at the same moment: one wins, the rest get 409."""
    job_id = (
        app.test_client()
        .post("/send", json={"message": "Hi", "numbers": [GOOD]}, headers=auth)
        .get_json()["job_id"]
    )
    if setup:
        app.test_client().post(f"/{setup}/{job_id}", headers=auth)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    barrier, statuses = threading.Barrier(8), []

    def one_request():
        conn = HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.connect()
        barrier.wait()
        conn.request("POST", f"/{move}/{job_id}", headers=auth)
        statuses.append(conn.getresponse().status)
        conn.close()

    try:
        threads = [threading.Thread(target=one_request) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        server.shutdown()
        serving.join(5)
    assert sorted(statuses) == [200] + [409] * 7
    assert queue.get_job(job_id)["status"] == final


# ---------------------------------------------------------------- odd but clean outcomes


def test_csv_cell_over_the_csv_field_limit_is_not_a_500(client, auth, queue):
    huge = "n" * (csv.field_size_limit() + 1 if csv.field_size_limit() < 1_000_000 else 200_000)
    data = f"phone,note\n{GOOD},{huge}\n+14155550102,short\n".encode()
    resp = client.post(
        "/send", data=_form_file(data, "c.csv"), headers=auth, content_type="multipart/form-data"
    )
    assert resp.status_code in (202, 422), resp.get_data(as_text=True)[:500]
    if resp.status_code == 202:
        assert resp.get_json()["total"] == 2
    else:
        assert resp.mimetype == "application/problem+json" and count_rows(queue) == (0, 0)


def test_csv_with_an_unclosed_quote_is_clean(client, auth, queue):
    data = b'phone,name\n+14155550101,"Ana\n+14155550102,Bia\n'
    resp = client.post(
        "/send", data=_form_file(data, "c.csv"), headers=auth, content_type="multipart/form-data"
    )
    assert resp.status_code in (202, 422)
    assert resp.mimetype in ("application/json", "application/problem+json")


def test_bad_numbers_become_rejected_entries(client, auth, queue):
    resp = client.post(
        "/send",
        headers=auth,
        json={
            "message": "Hi",
            "numbers": [
                GOOD,
                "+1415555",
                "+14155550101999999",
                "+1 415 CALL NOW",
                "+",
                "",
                "+999 12345678",
                "5511912345678",
                1.5,
            ],
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["total"] == 1
    assert [(r["row"], r["reason"]) for r in body["rejected"]] == [
        (i, "invalid_phone") for i in range(2, 10)
    ]
    assert [r["phone"] for r in body["rejected"]][:3] == [
        "+1415555",
        "+14155550101999999",
        "+1 415 CALL NOW",
    ]
    assert count_rows(queue) == (1, 1)


def test_same_number_three_ways_is_one_recipient(client, auth, queue):
    resp = client.post(
        "/send",
        headers=auth,
        json={
            "message": "Oi",
            "default_country": "BR",
            "numbers": ["+55 11 91234-5678", "0055 (11) 91234.5678", "(11) 91234-5678"],
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["total"] == 1
    assert body["rejected"] == [
        {"row": 2, "phone": "0055 (11) 91234.5678", "reason": "duplicate"},
        {"row": 3, "phone": "(11) 91234-5678", "reason": "duplicate"},
    ]
    rows, total = queue.list_messages(body["job_id"])
    assert total == 1 and rows[0]["phone"] == "+5511912345678"


def test_emoji_and_right_to_left_text_arrive_intact(client, auth, queue):
    message = "שלום {name} 👋🏽 — مرحبا بك! 👨‍👩‍👧 {{ok}} ✓"
    name = "José 🎉 محمد\u200f"
    resp = client.post(
        "/send",
        headers=auth,
        json={"message": message, "contacts": [{"phone": "\u200f+971 50 123 4567", "name": name}]},
    )
    assert resp.status_code == 202, resp.get_json()
    rows, _ = queue.list_messages(resp.get_json()["job_id"])
    assert rows[0]["text"] == f"שלום {name} 👋🏽 — مرحبا بك! 👨‍👩‍👧 {{ok}} ✓"
    assert rows[0]["name"] == name and rows[0]["phone"] == "+971501234567"
    listed = client.get(f"/jobs/{rows[0]['job_id']}/messages", headers=auth).get_json()
    assert listed["messages"][0]["name"] == name


def test_emoji_survives_a_multipart_csv_in_utf16(client, auth, queue):
    data = "phone\tname\n+14155550101\tAnaïs 🌸\n".encode("utf-16")
    resp = client.post(
        "/send",
        data=_form_file(data, "c.csv", message="Hi {name}"),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert resp.status_code == 202, resp.get_json()
    rows, _ = queue.list_messages(resp.get_json()["job_id"])
    assert rows[0]["text"] == "Hi Anaïs 🌸"


def test_message_at_the_length_limit_is_accepted(client, auth, queue):
    resp = client.post("/send", headers=auth, json={"message": "é" * 65_536, "numbers": [GOOD]})
    assert resp.status_code == 202


def test_rendered_message_over_the_limit_is_a_rejected_row(client, auth, queue, settings):
    resp = client.post(
        "/send",
        headers=auth,
        json={
            "message": "{note}",
            "contacts": [
                {"phone": GOOD, "note": "x" * 70_000},
                {"phone": "+14155550102", "note": "short"},
            ],
        },
    )
    assert resp.status_code == 202
    assert resp.get_json()["rejected"] == [{"row": 1, "phone": GOOD, "reason": "message_too_long"}]
    assert count_rows(queue) == (1, 1)


# ---------------------------------------------------------------- issue 12: found from outside

DEEP_JSON = {
    "[ x 50,000": b"[" * 50_000,
    '{"a": x 50,000': b'{"a":' * 50_000,
    "closed arrays 40 deep": b"[" * 40 + b"]" * 40,
    "deep inside a field": b'{"message": "Hi", "numbers": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("raw", DEEP_JSON.values(), ids=DEEP_JSON.keys())
@pytest.mark.parametrize("route", ["/send", "/preview", "/jobs/{}/resend"])
def test_deeply_nested_json_is_a_400(client, auth, queue, settings, raw, route):
    job_id = ""
    if "resend" in route:
        job_id = client.post(
            "/send", json={"message": "Hi", "numbers": [GOOD]}, headers=auth
        ).get_json()["job_id"]
    resp = client.post(
        route.format(job_id), data=raw, content_type="application/json", headers=auth
    )
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/problem+json"
    assert "deep" in resp.get_json()["detail"]
    assert count_rows(queue) == ((1, 1) if job_id else (0, 0))


def test_brackets_inside_strings_do_not_count_as_nesting(client, auth):
    message = "[{" * 100 + '\\"[' * 50
    resp = client.post(
        "/preview",
        data=f'{{"message": "{message}", "numbers": ["{GOOD}"]}}'.encode(),
        content_type="application/json",
        headers=auth,
    )
    assert resp.status_code == 200, resp.get_json()


BAD_NAMES = {
    "emoji over 255 bytes": "🎉" * 64 + ".pdf",
    "newline": "menu\n.pdf",
    "carriage return": "menu\r\nX-Evil: 1.pdf",
    "NUL": "menu\x00.pdf",
    "tab": "menu\t.pdf",
    "escape": "\x1b[31mmenu.pdf",
    "right-to-left override": "menu\u202efdp.exe.pdf",
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
@pytest.mark.parametrize("route", ["/send", "/preview"])
def test_attachment_names_that_would_break_every_send_are_422(
    client, auth, queue, settings, name, route
):
    body = {
        "message": "Hi",
        "numbers": [GOOD],
        "attachment": {"filename": name, "content_base64": PDF_B64},
    }
    problem = assert_refused(client.post(route, json=body, headers=auth), 422, queue, settings)
    assert problem["errors"][0]["field"] == "attachment"
    assert "name" in problem["detail"]


def test_a_long_emoji_attachment_name_in_a_form_is_422(client, auth, queue, settings):
    form = {
        "message": "Hi",
        "numbers": GOOD,
        "attachment": (io.BytesIO(b"%PDF-1.4\n"), "🎉" * 64 + ".pdf"),
    }
    resp = client.post("/send", data=form, headers=auth, content_type="multipart/form-data")
    problem = assert_refused(resp, 422, queue, settings)
    assert problem["errors"][0]["field"] == "attachment" and "255 bytes" in problem["detail"]


def test_an_attachment_name_of_255_bytes_is_fine(client, auth):
    body = {
        "message": "Hi",
        "numbers": [GOOD],
        "attachment": {"filename": "é" * 125 + "x.pdf", "content_base64": PDF_B64},
    }
    assert client.post("/send", json=body, headers=auth).status_code == 202


def test_health_does_not_show_the_database_path(settings, tmp_path):
    folder = tmp_path / "secret-folder-name"
    folder.mkdir()
    path = folder / "queue.db"
    queue = Queue(path)
    client = create_app(settings.replace(database_path=str(path)), queue).test_client()
    queue.close()  # the next request opens the file again, and finds it broken
    for extra in folder.glob("queue.db-*"):
        extra.unlink()
    path.write_bytes(b"this is not a database " * 512)
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "down", "database": "unavailable", "workers": []}
    assert "secret-folder-name" not in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"numbers": ["1"] * 200_001}, "numbers"),
        ({"numbers": "1\n" * 200_001}, "numbers"),
        ({"contacts": [{"phone": "1"}] * 200_001}, "contacts"),
        ({"contacts": [{"phone": "1"}] * 150_000, "numbers": ["2"] * 50_001}, "numbers"),
    ],
    ids=["numbers list", "numbers text", "contacts", "contacts and numbers together"],
)
def test_json_recipients_have_the_cap_a_file_has(client, auth, queue, settings, body, field):
    resp = client.post("/send", json={"message": "Hi", **body}, headers=auth)
    problem = assert_refused(resp, 422, queue, settings)
    assert problem["errors"][0]["field"] == field and "200,000" in problem["detail"]


def test_a_file_and_pasted_numbers_share_one_cap(client, auth, queue, settings):
    data = ("phone\n" + "1\n" * 199_999).encode()
    form = {
        "message": "Hi",
        "numbers": "+14155550101\n+14155550102",
        "file": (io.BytesIO(data), "c.csv"),
    }
    resp = client.post("/preview", data=form, headers=auth, content_type="multipart/form-data")
    problem = assert_refused(resp, 422, queue, settings)
    assert problem["errors"][0]["field"] == "numbers" and "200,000" in problem["detail"]


@pytest.mark.parametrize(
    "encoding, cell",
    [
        ("utf-16", "An\x00a\x01"),
        ("utf-16-le", "An\x00a"),
        ("utf-16-be", "\x00Ana\x00"),
        ("utf-8", "An\x1fa"),
    ],
)
def test_control_characters_in_file_cells_never_reach_the_database(
    client, auth, queue, encoding, cell
):
    # A stray NUL is what a broken UTF-16 export holds; the rest of the file is fine.
    rows = "".join(f"+1415555{i:04d}\tcustomer number {i}\n" for i in range(2, 12))
    data = f"phone\tname\n+14155550101\t{cell}\n{rows}".encode(encoding)
    resp = client.post(
        "/send",
        data=_form_file(data, "c.csv", message="Hi {name}"),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert resp.status_code == 202, resp.get_json()
    rows, _ = queue.list_messages(resp.get_json()["job_id"])
    assert rows[0]["text"] == "Hi Ana"


def test_api_answers_and_exports_are_not_cached(client, auth):
    job_id = client.post(
        "/send", json={"message": "Hi", "numbers": [GOOD]}, headers=auth
    ).get_json()["job_id"]
    for url in ("/jobs", f"/status/{job_id}", f"/jobs/{job_id}/export.csv"):
        resp = client.get(url, headers=auth)
        assert resp.status_code == 200
        assert "no-store" in resp.headers.get("Cache-Control", ""), url


def test_a_bad_idempotency_key_is_refused_before_the_body_is_read(client, auth, queue, settings):
    resp = client.post(
        "/send",
        data=b'{"message": "Hi", "numbers": [',
        headers={**auth, "Idempotency-Key": "k" * 201},
        content_type="application/json",
    )
    problem = assert_refused(resp, 422, queue, settings)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
