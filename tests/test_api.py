"""The HTTP API of contract section 5, route by route, through Flask's test client."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import threading
from http.client import HTTPConnection
from pathlib import Path

import openpyxl
import pytest
from werkzeug.serving import make_server

from app import create_app
from message_queue import Queue

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"qr-code-bytes" * 4
PDF = b"%PDF-1.4\n% menu\n"
STATUS_FIELDS = {
    "job_id",
    "name",
    "channel",
    "status",
    "total",
    "counts",
    "progress",
    "eta_seconds",
    "last_error",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
}
MESSAGE_STATUSES = {
    "pending",
    "retrying",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "unknown",
}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Routes anyone may reach (contract section 5: /health, the /app sign-in page, static files).
PUBLIC_ENDPOINTS = {
    "static",
    "session.health",
    "pages.app_page",
    "pages.sign_in",
    "pages.sign_out",
    "pages.index",
    "hooks.smsgate",  # the phone's webhook: signed instead (tests/test_inbound_sms.py)
}


# ---------------------------------------------------------------- helpers


def send_json(client, auth, body, **headers):
    return client.post("/send", json=body, headers={**auth, **headers})


def send_form(client, auth, data, **headers):
    return client.post(
        "/send", data=data, headers={**auth, **headers}, content_type="multipart/form-data"
    )


def messages(queue, job_id):
    rows, _ = queue.list_messages(job_id, limit=1000)
    return rows


def count_rows(queue):
    conn = queue.db.connection()
    return (
        conn.execute("SELECT count(*) FROM jobs").fetchone()[0],
        conn.execute("SELECT count(*) FROM messages").fetchone()[0],
    )


def assert_problem(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def make_job(client, auth, numbers=("+14155550101", "+14155550102"), **extra):
    resp = send_json(client, auth, {"message": "Hi {phone}", "numbers": list(numbers), **extra})
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["job_id"]


def finish_all(queue, channel="whatsapp", worker="w1"):
    """Act as a worker that sends every waiting message of `channel`."""
    while (m := queue.claim_next(channel, worker)) is not None:
        assert queue.mark_sent(m["id"], worker)


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- POST /send (JSON)


def test_send_json_contacts_and_numbers_fill_placeholders(client, auth, queue):
    resp = send_json(
        client,
        auth,
        {
            "message": "Hi {name}, order {order} is ready {{not a placeholder}} for {phone}",
            "contacts": [
                {"phone": "+55 11 91234-5678", "name": "Ana", "order": "A-17"},
                {"phone": "+44 7911 123456", "Name": "Bob", "Order": "B-2"},
            ],
            "numbers": ["+14155550101"],
            "name": "November promo",
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["status"] == "pending" and body["channel"] == "whatsapp"
    assert body["total"] == 3 and body["rejected"] == []
    assert body["job_id"].startswith("j_")
    assert body["status_url"] == f"/status/{body['job_id']}"
    assert resp.headers["Location"] == f"/status/{body['job_id']}"
    rows = messages(queue, body["job_id"])
    assert [(m["phone"], m["name"], m["text"], m["channel"], m["status"]) for m in rows] == [
        (
            "+5511912345678",
            "Ana",
            "Hi Ana, order A-17 is ready {not a placeholder} for +55 11 91234-5678",
            "whatsapp",
            "pending",
        ),
        (
            "+447911123456",
            "Bob",
            "Hi Bob, order B-2 is ready {not a placeholder} for +44 7911 123456",
            "whatsapp",
            "pending",
        ),
        # {phone} is the number as the list wrote it; a pasted number has no name or order:
        # those render as empty text
        (
            "+14155550101",
            "",
            "Hi , order  is ready {not a placeholder} for +14155550101",
            "whatsapp",
            "pending",
        ),
    ]


def test_send_json_reports_invalid_and_duplicate_numbers(client, auth, queue):
    resp = send_json(
        client,
        auth,
        {
            "message": "Hello",
            "contacts": [{"phone": "+14155550101"}, {"phone": "12ab"}],
            "numbers": ["+1 (415) 555-0101", "+14155550102"],
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["total"] == 2
    assert body["rejected"] == [
        {"row": 2, "phone": "12ab", "reason": "invalid_phone"},
        {"row": 3, "phone": "+1 (415) 555-0101", "reason": "duplicate"},
    ]
    assert [m["phone"] for m in messages(queue, body["job_id"])] == ["+14155550101", "+14155550102"]
    assert count_rows(queue) == (1, 2)


def test_send_json_phone_column_picks_the_number_field(client, auth, queue):
    resp = send_json(
        client,
        auth,
        {
            "message": "Oi {nome}",
            "phone_column": "Celular",
            "contacts": [
                {"nome": "Ana", "celular": "+5511912345678"},
                {"nome": "Bia", "celular": "+14155550101"},
            ],
        },
    )
    assert resp.status_code == 202, resp.get_json()
    assert [(m["phone"], m["text"]) for m in messages(queue, resp.get_json()["job_id"])] == [
        ("+5511912345678", "Oi Ana"),
        ("+14155550101", "Oi Bia"),
    ]


def test_send_numbers_as_one_text_in_json(client, auth, queue):
    resp = send_json(
        client, auth, {"message": "Hi", "numbers": "+14155550101; +14155550102\n+5511912345678"}
    )
    assert resp.status_code == 202
    assert resp.get_json()["total"] == 3


def test_default_country_turns_national_numbers_into_e164(client, auth, queue):
    resp = send_json(
        client, auth, {"message": "Oi", "numbers": ["(11) 91234-5678"], "default_country": "br"}
    )
    assert resp.status_code == 202
    assert messages(queue, resp.get_json()["job_id"])[0]["phone"] == "+5511912345678"


@pytest.mark.parametrize(
    "channel, stored", [("sms", "sms"), ("whatsapp_then_sms", "whatsapp"), ("whatsapp", "whatsapp")]
)
def test_channel_choice(client, auth, queue, channel, stored):
    resp = send_json(
        client, auth, {"message": "Hi", "numbers": ["+14155550101"], "channel": channel}
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["channel"] == channel
    assert queue.get_job(body["job_id"])["channel"] == channel
    # whatsapp_then_sms starts every number on WhatsApp; SMS only as the fallback
    assert [m["channel"] for m in messages(queue, body["job_id"])] == [stored]


def test_attachment_as_base64_is_stored_under_a_generated_name(client, auth, queue, settings):
    resp = send_json(
        client,
        auth,
        {
            "message": "Our menu",
            "numbers": ["+14155550101"],
            "attachment": {
                "filename": "../../etc/Menu Nov.PDF",
                "content_base64": base64.b64encode(PDF).decode(),
            },
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["attachment"] == "Menu Nov.PDF"
    status = client.get(body["status_url"], headers=auth).get_json()
    assert status["attachment"] == "Menu Nov.PDF"
    stored = Path(queue.get_job(body["job_id"])["attachment_path"])
    upload_dir = Path(settings.upload_dir).resolve()
    assert stored.parent == upload_dir
    assert re.fullmatch(r"[0-9a-f]{24}\.pdf", stored.name)
    assert stored.read_bytes() == PDF
    assert [p.name for p in upload_dir.iterdir()] == [stored.name]


def test_attachment_as_multipart_file(client, auth, queue, settings):
    resp = send_form(
        client,
        auth,
        {
            "message": "Photo for {phone}",
            "numbers": "+14155550101",
            "attachment": (io.BytesIO(PNG), "foto çà.png"),
        },
    )
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["attachment"] == "foto çà.png"
    stored = Path(queue.get_job(body["job_id"])["attachment_path"])
    assert stored.parent == Path(settings.upload_dir).resolve()
    assert re.fullmatch(r"[0-9a-f]{24}\.png", stored.name)
    assert stored.read_bytes() == PNG


# ---------------------------------------------------------------- POST /send (multipart)


def test_multipart_csv_with_bom_and_semicolons(client, auth, queue):
    csv_bytes = (
        "\ufeffPhone;First Name;Order\r\n+55 11 91234-5678;Ana;A-17\r\n+1 415 555 0101;José;B-2\r\n"
    ).encode("utf-8")
    resp = send_form(
        client,
        auth,
        {
            "message": "Hi {first_name} ({Order})",
            "file": (io.BytesIO(csv_bytes), "contacts.csv"),
            "name": "csv job",
        },
    )
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["total"] == 2 and body["name"] == "csv job" and body["rejected"] == []
    assert [(m["phone"], m["text"], m["row"]) for m in messages(queue, body["job_id"])] == [
        ("+5511912345678", "Hi Ana (A-17)", 2),
        ("+14155550101", "Hi José (B-2)", 3),
    ]


def test_multipart_cp1252_csv_with_tabs(client, auth, queue):
    data = "Telefone\tNome\r\n+55 (11) 91234-5678\tJosé Conceição\r\n".encode("cp1252")
    resp = send_form(
        client, auth, {"message": "Olá {nome}", "file": (io.BytesIO(data), "lista.csv")}
    )
    assert resp.status_code == 202, resp.get_json()
    assert messages(queue, resp.get_json()["job_id"])[0]["text"] == "Olá José Conceição"


def test_multipart_xlsx_with_phone_stored_as_float(client, auth, queue):
    data = xlsx_bytes(
        [
            ["Name", "Celular"],
            ["Ana", 5511912345678.0],
            ["Bia", "+14155550101"],
            ["Caio", 5511912345678.0],
        ]
    )
    resp = send_form(
        client,
        auth,
        {"message": "Oi {name}", "default_country": "BR", "file": (io.BytesIO(data), "list.xlsx")},
    )
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["total"] == 2
    assert body["rejected"] == [{"row": 4, "phone": "5511912345678", "reason": "duplicate"}]
    assert [(m["phone"], m["text"]) for m in messages(queue, body["job_id"])] == [
        ("+5511912345678", "Oi Ana"),
        ("+14155550101", "Oi Bia"),
    ]


def test_multipart_txt_file_one_number_a_line(client, auth, queue):
    txt = b"Numbers\n+14155550101\n\n+14155550102\r\nnot-a-number 12\n"
    resp = send_form(
        client, auth, {"message": "Hello {phone}", "file": (io.BytesIO(txt), "numbers.txt")}
    )
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["total"] == 2
    assert body["rejected"] == [{"row": 5, "phone": "not-a-number 12", "reason": "invalid_phone"}]
    assert [m["text"] for m in messages(queue, body["job_id"])] == [
        "Hello +14155550101",
        "Hello +14155550102",
    ]


def test_multipart_pasted_numbers_with_mixed_separators(client, auth, queue):
    pasted = "+14155550101\n+14155550102, +5511912345678;+447911123456\r\n\n+14155550101"
    resp = send_form(client, auth, {"message": "Hi", "numbers": pasted})
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["total"] == 4
    assert body["rejected"] == [{"row": 5, "phone": "+14155550101", "reason": "duplicate"}]


def test_multipart_file_and_pasted_numbers_together(client, auth, queue):
    csv_bytes = b"phone,name\n+14155550101,Ana\n"
    resp = send_form(
        client,
        auth,
        {
            "message": "Hi {name}!",
            "numbers": "+14155550102",
            "file": (io.BytesIO(csv_bytes), "c.csv"),
        },
    )
    assert resp.status_code == 202
    rows = messages(queue, resp.get_json()["job_id"])
    assert [(m["phone"], m["text"], m["row"]) for m in rows] == [
        ("+14155550101", "Hi Ana!", 2),
        ("+14155550102", "Hi !", 3),
    ]


def test_phone_placeholder_with_a_celular_column_and_pasted_numbers(client, auth, queue):
    csv_bytes = b"celular,nome\n+5511912345678,Ana\n"
    resp = send_form(
        client,
        auth,
        {
            "message": "{nome}: {phone}",
            "numbers": "+14155550102",
            "file": (io.BytesIO(csv_bytes), "c.csv"),
        },
    )
    assert resp.status_code == 202, resp.get_json()
    assert [m["text"] for m in messages(queue, resp.get_json()["job_id"])] == [
        "Ana: +5511912345678",
        ": +14155550102",
    ]
    resp = send_json(
        client,
        auth,
        {
            "message": "{phone}",
            "phone_column": "celular",
            "contacts": [{"celular": "+55 11 91234-5678"}],
        },
    )
    assert [m["text"] for m in messages(queue, resp.get_json()["job_id"])] == ["+5511912345678"]


def test_multipart_phone_column_choice(client, auth, queue):
    csv_bytes = (
        b"name,phone,backup\nAna,+14155550101,+5511912345678\nBia,+14155550102,+447911123456\n"
    )
    resp = send_form(
        client,
        auth,
        {
            "message": "Hi {name} ({phone})",
            "phone_column": "Backup",
            "file": (io.BytesIO(csv_bytes), "c.csv"),
        },
    )
    assert resp.status_code == 202
    rows = messages(queue, resp.get_json()["job_id"])
    # {phone} is still the "phone" column of the file; the recipient is the chosen column
    assert [(m["phone"], m["text"]) for m in rows] == [
        ("+5511912345678", "Hi Ana (+14155550101)"),
        ("+447911123456", "Hi Bia (+14155550102)"),
    ]


def test_multipart_channel_sms(client, auth, queue):
    resp = send_form(client, auth, {"message": "Hi", "numbers": "+14155550101", "channel": "sms"})
    assert resp.status_code == 202
    assert resp.get_json()["channel"] == "sms"
    assert messages(queue, resp.get_json()["job_id"])[0]["channel"] == "sms"


# ---------------------------------------------------------------- Idempotency-Key


def test_idempotency_key_replay_returns_the_first_job(client, auth, queue):
    body = {"message": "Hi {name}", "contacts": [{"phone": "+14155550101", "name": "Ana"}]}
    first = send_json(client, auth, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == 202
    before = count_rows(queue)
    again = send_json(client, auth, body, **{"Idempotency-Key": "order-42"})
    assert again.status_code == 202
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert count_rows(queue) == before == (1, 1)


def test_idempotency_replay_with_attachment_leaves_one_file(client, auth, queue, settings):
    body = {
        "message": "menu",
        "numbers": ["+14155550101"],
        "attachment": {"filename": "m.pdf", "content_base64": base64.b64encode(PDF).decode()},
    }
    first = send_json(client, auth, body, **{"Idempotency-Key": "k1"})
    again = send_json(client, auth, body, **{"Idempotency-Key": "k1"})
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert len(list(Path(settings.upload_dir).iterdir())) == 1


def test_idempotency_key_with_a_different_body_is_422(client, auth, queue, settings):
    first = send_json(
        client,
        auth,
        {"message": "Hi", "numbers": ["+14155550101"]},
        **{"Idempotency-Key": "order-42"},
    )
    assert first.status_code == 202
    other = send_json(
        client,
        auth,
        {
            "message": "Hi",
            "numbers": ["+14155550102"],
            "attachment": {"filename": "m.pdf", "content_base64": base64.b64encode(PDF).decode()},
        },
        **{"Idempotency-Key": "order-42"},
    )
    body = assert_problem(other, 422)
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert count_rows(queue) == (1, 1)
    assert not Path(settings.upload_dir).exists() or not any(Path(settings.upload_dir).iterdir())


def test_different_idempotency_keys_make_different_jobs(client, auth, queue):
    body = {"message": "Hi", "numbers": ["+14155550101"]}
    a = send_json(client, auth, body, **{"Idempotency-Key": "a"}).get_json()["job_id"]
    b = send_json(client, auth, body, **{"Idempotency-Key": "b"}).get_json()["job_id"]
    c = send_json(client, auth, body).get_json()["job_id"]
    assert len({a, b, c}) == 3 and count_rows(queue) == (3, 3)


# ---------------------------------------------------------------- GET /status


def test_status_object_has_every_contract_field(client, auth, queue):
    job_id = make_job(client, auth, name="Promo")
    resp = client.get(f"/status/{job_id}", headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) >= STATUS_FIELDS
    assert body["job_id"] == job_id and body["name"] == "Promo"
    assert body["channel"] == "whatsapp" and body["status"] == "pending"
    assert body["total"] == 2
    assert body["counts"] == {s: (2 if s == "pending" else 0) for s in MESSAGE_STATUSES}
    assert body["progress"] == 0
    assert isinstance(body["eta_seconds"], int) and body["eta_seconds"] > 0
    assert body["last_error"] is None
    assert ISO_Z.match(body["created_at"]) and ISO_Z.match(body["updated_at"])
    assert body["started_at"] is None and body["finished_at"] is None


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "whatsapp_then_sms"])
def test_a_fresh_jobs_eta_is_the_estimate_preview_gave(client, auth, app, settings, channel):
    # SMS is paced by its own, slower delays: the ETA once ignored them.
    app.config["SETTINGS"] = settings.replace(
        min_delay=2,
        max_delay=4,
        sms_min_delay=10,
        sms_max_delay=20,
        long_pause_every=5,
        long_pause_min=30,
        long_pause_max=50,
    )
    body = {
        "message": "Hi {phone}",
        "channel": channel,
        "numbers": ["+14155550101", "+14155550102", "+5511912345678"],
    }
    preview = client.post("/preview", json=body, headers=auth).get_json()
    job_id = send_json(client, auth, body).get_json()["job_id"]
    status = client.get(f"/status/{job_id}", headers=auth).get_json()
    assert status["eta_seconds"] == preview["estimate_seconds"] > 0


def test_status_follows_the_worker(client, auth, queue):
    job_id = make_job(
        client, auth, numbers=["+14155550101", "+14155550102", "+5511912345678", "+447911123456"]
    )
    first = queue.claim_next("whatsapp", "w1")
    queue.mark_sent(first["id"], "w1")
    second = queue.claim_next("whatsapp", "w1")
    queue.mark_failed(second["id"], "w1", "not_on_whatsapp")
    queue.claim_next("whatsapp", "w1")
    body = client.get(f"/status/{job_id}", headers=auth).get_json()
    assert body["status"] == "running"
    assert body["counts"] == {
        "pending": 1,
        "retrying": 0,
        "sending": 1,
        "sent": 1,
        "delivered": 0,
        "failed": 1,
        "cancelled": 0,
        "unknown": 0,
    }
    assert body["progress"] == 0.5
    assert body["last_error"] == "not_on_whatsapp"
    assert ISO_Z.match(body["started_at"]) and body["finished_at"] is None
    finish_all(queue)
    third = [m for m in messages(queue, job_id) if m["status"] == "sending"][0]
    queue.mark_sent(third["id"], "w1")
    body = client.get(f"/status/{job_id}", headers=auth).get_json()
    assert body["status"] == "completed" and body["progress"] == 1
    assert body["eta_seconds"] == 0 and ISO_Z.match(body["finished_at"])


def test_status_of_unknown_job_is_404(client, auth):
    assert_problem(client.get("/status/j_doesnotexist", headers=auth), 404)


def test_compat_status_idle_then_newest_job(client, auth):
    resp = client.get("/status", headers=auth)
    assert resp.status_code == 200 and resp.get_json() == {"status": "idle"}
    make_job(client, auth, name="old")
    newest = make_job(client, auth, name="new")
    body = client.get("/status", headers=auth).get_json()
    assert body["job_id"] == newest and body["name"] == "new"
    assert set(body) >= STATUS_FIELDS


# ---------------------------------------------------------------- job control


def test_pause_resume_stop_legal_moves(client, auth, queue):
    job_id = make_job(client, auth)
    resp = client.post(f"/pause/{job_id}", headers=auth)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "paused" and set(resp.get_json()) >= STATUS_FIELDS
    assert queue.claim_next("whatsapp", "w1") is None  # a paused job hands nothing out
    resp = client.post(f"/resume/{job_id}", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["status"] == "pending"
    queue.claim_next("whatsapp", "w1")
    client.post(f"/pause/{job_id}", headers=auth)
    resp = client.post(f"/resume/{job_id}", headers=auth)
    assert resp.get_json()["status"] == "running"  # it had started before the pause
    resp = client.post(f"/stop/{job_id}", headers=auth)
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "stopped"
    assert body["counts"]["cancelled"] == 1 and body["counts"]["sending"] == 1
    assert ISO_Z.match(body["finished_at"])


@pytest.mark.parametrize(
    "setup, move",
    [
        ([], "resume"),  # pending is not paused
        (["pause"], "pause"),  # paused twice
        (["stop"], "pause"),  # pause a stopped job
        (["stop"], "resume"),
        (["stop"], "stop"),
        (["pause", "stop"], "resume"),
    ],
)
def test_illegal_moves_are_409(client, auth, queue, setup, move):
    job_id = make_job(client, auth)
    for step in setup:
        assert client.post(f"/{step}/{job_id}", headers=auth).status_code == 200
    before = queue.get_job(job_id)["status"]
    body = assert_problem(client.post(f"/{move}/{job_id}", headers=auth), 409)
    assert job_id in body["detail"]
    assert queue.get_job(job_id)["status"] == before


@pytest.mark.parametrize("move", ["pause", "resume", "stop"])
def test_moves_on_a_completed_job_are_409(client, auth, queue, move):
    job_id = make_job(client, auth)
    finish_all(queue)
    assert queue.get_job(job_id)["status"] == "completed"
    assert_problem(client.post(f"/{move}/{job_id}", headers=auth), 409)


@pytest.mark.parametrize("move", ["pause", "resume", "stop"])
def test_moves_on_unknown_job_are_404(client, auth, move):
    assert_problem(client.post(f"/{move}/j_nope", headers=auth), 404)


def test_compat_stop_stops_every_active_job(client, auth, queue):
    done = make_job(client, auth, numbers=["+14155550101"])
    finish_all(queue)
    a = make_job(client, auth)
    b = make_job(client, auth)
    client.post(f"/pause/{b}", headers=auth)
    resp = client.post("/stop", headers=auth)
    assert resp.status_code == 200
    assert sorted(resp.get_json()["stopped"]) == sorted([a, b])
    assert queue.get_job(a)["status"] == queue.get_job(b)["status"] == "stopped"
    assert queue.get_job(done)["status"] == "completed"
    assert client.post("/stop", headers=auth).get_json() == {"stopped": []}


# ---------------------------------------------------------------- lists and results


def test_jobs_lists_active_newest_first_and_all(client, auth, queue):
    first = make_job(client, auth, name="first")
    second = make_job(client, auth, name="second")
    third = make_job(client, auth, name="third")
    client.post(f"/stop/{second}", headers=auth)
    client.post(f"/pause/{third}", headers=auth)
    resp = client.get("/jobs", headers=auth)
    assert resp.status_code == 200
    jobs = resp.get_json()["jobs"]
    assert [j["job_id"] for j in jobs] == [third, first]
    assert all(set(j) >= STATUS_FIELDS for j in jobs)
    everything = client.get("/jobs?all=1", headers=auth).get_json()["jobs"]
    assert [j["job_id"] for j in everything] == [third, second, first]


def test_jobs_is_empty_list_without_jobs(client, auth):
    assert client.get("/jobs", headers=auth).get_json() == {
        "jobs": [],
        "total": 0,
        "limit": 200,
        "offset": 0,
    }


def test_jobs_are_paged_newest_first_and_say_how_many_there_are(client, auth, queue):
    ids = [make_job(client, auth, name=f"job {i}") for i in range(5)][::-1]  # newest first
    client.post(f"/stop/{ids[0]}", headers=auth)
    page = client.get("/jobs?all=1&limit=2&offset=1", headers=auth).get_json()
    assert [j["job_id"] for j in page["jobs"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    active = client.get("/jobs?limit=10", headers=auth).get_json()
    assert [j["job_id"] for j in active["jobs"]] == ids[1:] and active["total"] == 4
    assert client.get("/jobs?all=1&offset=5", headers=auth).get_json()["jobs"] == []
    for bad in ("limit=0", "limit=1001", "limit=x", "offset=-1"):
        resp = client.get(f"/jobs?{bad}", headers=auth)
        assert resp.status_code == 422 and resp.mimetype == "application/problem+json", bad


def test_job_messages_filter_page_and_search(client, auth, queue):
    resp = send_json(
        client,
        auth,
        {
            "message": "Hi {name}",
            "contacts": [
                {"phone": "+14155550101", "name": "Ana"},
                {"phone": "+14155550102", "name": "Bia"},
                {"phone": "+5511912345678", "name": "Caio"},
                {"phone": "+447911123456", "name": "Ana_B"},
            ],
        },
    )
    job_id = resp.get_json()["job_id"]
    first = queue.claim_next("whatsapp", "w1")
    queue.mark_failed(first["id"], "w1", "not_on_whatsapp")
    url = f"/jobs/{job_id}/messages"

    page = client.get(url, headers=auth)
    assert page.status_code == 200
    body = page.get_json()
    assert body["total"] == 4 and len(body["messages"]) == 4
    m = body["messages"][0]
    assert {"id", "phone", "name", "status", "attempts", "error", "sent_at", "updated_at"} <= set(m)
    assert (m["phone"], m["name"], m["status"], m["attempts"], m["error"], m["sent_at"]) == (
        "+14155550101",
        "Ana",
        "failed",
        1,
        "not_on_whatsapp",
        None,
    )
    assert ISO_Z.match(m["updated_at"])

    failed = client.get(f"{url}?status=failed", headers=auth).get_json()
    assert failed["total"] == 1 and [x["name"] for x in failed["messages"]] == ["Ana"]
    pending = client.get(f"{url}?status=pending&limit=2&offset=1", headers=auth).get_json()
    assert pending["total"] == 3 and [x["name"] for x in pending["messages"]] == ["Caio", "Ana_B"]
    paged = client.get(f"{url}?limit=1&offset=3", headers=auth).get_json()
    assert paged["total"] == 4 and [x["name"] for x in paged["messages"]] == ["Ana_B"]
    beyond = client.get(f"{url}?offset=10", headers=auth).get_json()
    assert beyond["total"] == 4 and beyond["messages"] == []
    # q matches name or phone; "_" and "%" are literal, not wildcards
    assert [x["name"] for x in client.get(f"{url}?q=ana", headers=auth).get_json()["messages"]] == [
        "Ana",
        "Ana_B",
    ]
    assert [x["name"] for x in client.get(f"{url}?q=_", headers=auth).get_json()["messages"]] == [
        "Ana_B"
    ]
    assert client.get(f"{url}?q=%25", headers=auth).get_json()["total"] == 0
    assert client.get(f"{url}?q=5511", headers=auth).get_json()["messages"][0]["name"] == "Caio"


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=bogus", "status"),
        ("status=PENDING", "status"),
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("limit=1.5", "limit"),
    ],
)
def test_job_messages_bad_query_is_422(client, auth, query, field):
    job_id = make_job(client, auth)
    body = assert_problem(client.get(f"/jobs/{job_id}/messages?{query}", headers=auth), 422)
    assert body["errors"][0]["field"] == field


def test_job_messages_of_unknown_job_is_404(client, auth):
    assert_problem(client.get("/jobs/j_nope/messages", headers=auth), 404)


def test_export_csv_is_spreadsheet_safe(client, auth, queue):
    resp = send_json(
        client,
        auth,
        {
            "message": "{note} for {name}",
            "contacts": [
                {"phone": "+14155550101", "name": '=HYPERLINK("http://x")', "note": "ok"},
                {"phone": "+14155550102", "name": "@sum", "note": "-1+1"},
                {"phone": "+5511912345678", "name": "Ana", "note": "fine"},
            ],
        },
    )
    job_id = resp.get_json()["job_id"]
    first = queue.claim_next("whatsapp", "w1")
    queue.mark_sent(first["id"], "w1")
    second = queue.claim_next("whatsapp", "w1")
    queue.mark_failed(second["id"], "w1", "not_on_whatsapp")
    export = client.get(f"/jobs/{job_id}/export.csv", headers=auth)
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [r["phone"] for r in rows] == ["+14155550101", "+14155550102", "+5511912345678"]
    assert [r["name"] for r in rows] == ['\'=HYPERLINK("http://x")', "'@sum", "Ana"]
    assert [r["status"] for r in rows] == ["sent", "failed", "pending"]
    assert [r["error"] for r in rows] == ["", "not_on_whatsapp", ""]
    assert rows[1]["message"] == "'-1+1 for @sum"
    assert rows[0]["message"] == 'ok for =HYPERLINK("http://x")'
    assert ISO_Z.match(rows[0]["sent_at"]) and rows[1]["sent_at"] == ""
    assert all(r["row"] for r in rows) and all(r["attempts"] for r in rows[:2])


def test_export_csv_of_unknown_job_is_404(client, auth):
    assert_problem(client.get("/jobs/j_nope/export.csv", headers=auth), 404)


# ---------------------------------------------------------------- health and session


def test_health_without_auth_and_workers(client, queue):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "degraded", "database": "ok", "workers": []}
    queue.heartbeat("wa-1", "whatsapp", "logged_in")
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert [{k: w[k] for k in ("worker_id", "channel", "state")} for w in body["workers"]] == [
        {"worker_id": "wa-1", "channel": "whatsapp", "state": "logged_in"}
    ]
    assert isinstance(body["workers"][0]["heartbeat_age_s"], (int, float))
    queue.heartbeat("sms-1", "sms", "gateway_down")
    assert client.get("/health").get_json()["status"] == "degraded"


@pytest.mark.parametrize("breakage", ["folder_removed", "file_corrupted"])
def test_health_is_503_when_the_database_is_unusable(settings, tmp_path, breakage):
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "queue.db"
    queue = Queue(path)
    app = create_app(settings.replace(database_path=str(path)), queue)
    queue.close()  # the next request opens the file again
    if breakage == "folder_removed":
        shutil.rmtree(folder)
    else:
        for extra in folder.glob("queue.db-*"):
            extra.unlink()
        path.write_bytes(b"this is not a database " * 512)
    client = app.test_client()
    resp = client.get("/health")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["database"] != "ok" and body["status"] not in ("ok", "degraded")
    # other routes say so as problem+json, not 500
    assert_problem(client.get("/status/j_x", headers={"X-API-Key": settings.api_key}), 503)


def test_session_and_qr_code(client, auth, queue):
    assert client.get("/session", headers=auth).get_json() == {"workers": []}
    assert_problem(client.get("/session/qr.png", headers=auth), 404)
    queue.heartbeat("wa-1", "whatsapp", "qr_required")
    queue.save_qr("wa-1", PNG)
    resp = client.get("/session/qr.png", headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.get_data() == PNG
    workers = client.get("/session", headers=auth).get_json()["workers"]
    assert len(workers) == 1
    w = workers[0]
    assert {
        "worker_id",
        "channel",
        "state",
        "qr_available",
        "heartbeat_at",
        "current_job_id",
    } <= set(w)
    assert (w["worker_id"], w["channel"], w["state"], w["qr_available"], w["current_job_id"]) == (
        "wa-1",
        "whatsapp",
        "qr_required",
        True,
        None,
    )
    assert ISO_Z.match(w["heartbeat_at"])
    # once logged in the old code is no longer offered
    queue.heartbeat("wa-1", "whatsapp", "logged_in")
    assert_problem(client.get("/session/qr.png", headers=auth), 404)
    assert client.get("/session", headers=auth).get_json()["workers"][0]["qr_available"] is False


def test_silent_worker_is_shown_disconnected(settings):
    now = [1_000_000.0]
    queue = Queue(settings.database, clock=lambda: now[0])
    client = create_app(settings, queue).test_client()
    queue.heartbeat("wa-1", "whatsapp", "logged_in", current_job_id="j_1")
    now[0] += 61
    workers = client.get("/session", headers={"X-API-Key": settings.api_key}).get_json()["workers"]
    assert workers[0]["state"] == "disconnected" and workers[0]["current_job_id"] == "j_1"
    assert client.get("/health").get_json()["status"] == "degraded"
    queue.close()


# ---------------------------------------------------------------- auth and headers


def private_routes(app):
    """(method, url) for every route that is not public, with a dummy id filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "j_dummy", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_route_walk_finds_the_contract_routes(app):
    routes = set(private_routes(app))
    for expected in [
        ("POST", "/send"),
        ("GET", "/status/j_dummy"),
        ("GET", "/status"),
        ("POST", "/pause/j_dummy"),
        ("POST", "/resume/j_dummy"),
        ("POST", "/stop/j_dummy"),
        ("POST", "/stop"),
        ("GET", "/jobs"),
        ("GET", "/jobs/j_dummy/messages"),
        ("GET", "/jobs/j_dummy/export.csv"),
        ("GET", "/session"),
        ("GET", "/session/qr.png"),
    ]:
        assert expected in routes
    assert ("GET", "/health") not in routes


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key-0123456789"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "ключ-доступа"},
        {"X-API-Key": "cl\u00e9"},
    ],
)
def test_every_private_route_refuses_missing_or_wrong_key(app, client, queue, headers):
    for method, url in private_routes(app):
        resp = client.open(url, method=method, headers=headers, json={"message": "x"})
        body = assert_problem(resp, 401)
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, url)
        assert body["title"] == "Unauthorized"
    assert count_rows(queue) == (0, 0)


def test_bearer_token_and_key_header_both_work(client, auth):
    key = auth["X-API-Key"]
    assert client.get("/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/jobs", headers={"Authorization": f"bearer  {key} "}).status_code == 200
    assert client.get("/jobs", headers={"X-API-Key": f" {key} "}).status_code == 200
    resp = client.post(
        "/send",
        json={"message": "Hi", "numbers": ["+14155550101"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 202


def test_non_ascii_key_over_a_real_socket_is_401_not_500(app):
    """A real server hands headers over as latin-1 text; UTF-8 bytes must not crash the check."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        conn = HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        conn.putrequest("GET", "/jobs")
        conn.putheader("X-API-Key", "ключ-é-🔑".encode())
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 401
        assert resp.getheader("Content-Type") == "application/problem+json"
        assert resp.getheader("WWW-Authenticate")
        assert json.loads(resp.read())["status"] == 401
        conn.close()
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/health", {}),
        ("/jobs", {"X-API-Key": "test-key-0123456789abcdef"}),
        ("/jobs", {}),
        ("/status/j_nope", {"X-API-Key": "test-key-0123456789abcdef"}),
    ],
)
def test_security_headers_on_every_kind_of_answer(client, path, headers):
    resp = client.get(path, headers=headers)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_unknown_route_and_wrong_method_are_problems(client, auth):
    assert_problem(client.get("/no/such/route", headers=auth), 404)
    assert_problem(client.get("/send", headers=auth), 405)


@pytest.mark.parametrize("path", ["/jobs", "/suppressions", "/conversations"])
def test_an_empty_paging_number_is_refused_not_read_as_the_default(client, auth, path):
    # Found by make fuzz: `offset=` is not the integer the description promises.
    assert_problem(client.get(f"{path}?offset=", headers=auth), 422)
    assert_problem(client.get(f"{path}?limit=", headers=auth), 422)
