"""The suppression list (contract §7): a number that opted out gets nothing more, on any
channel, whatever was queued for it and whenever; the one exception is its confirmation."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from message_queue import NewJob, Queue, Recipient, job_channel
from tests.fakes import Clock
from utils.optout import keyword_kind

T0 = 1_700_000_000.0
A, B, C = "+14155550101", "+14155550102", "+14155550103"
OUT = "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT,PARAR,SAIR,CANCELAR,DESCADASTRAR,BAJA,ALTO"
IN = "START,UNSTOP,VOLTAR,ALTA"


@pytest.fixture
def q(database):
    queue = Queue(database, clock=Clock(T0))
    yield queue
    queue.close()


def job(q, phones, channel="whatsapp"):
    first = job_channel(channel).first
    rows = [Recipient(p, f"hi {p}", first, row=i) for i, p in enumerate(phones, 1)]
    created, _ = q.create_job(NewJob(channel=channel, template="hi"), rows)
    return created


def rows_of(q, job_id):
    found, _ = q.list_messages(job_id, limit=1000)
    return {m["phone"]: (m["status"], m["error"]) for m in found}


def drain(q, channel="whatsapp"):
    """Claim and send until nothing is left; the phones handed out."""
    sent = []
    while (m := q.claim_next(channel, "w1")) is not None:
        q.mark_sent(m["id"], "w1")
        sent.append(m["phone"])
    return sent


# ---------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    "text, kind",
    [
        ("STOP", "opt_out"),
        (" Stop! ", "opt_out"),
        ("stop.", "opt_out"),
        ("PARÁR", "opt_out"),
        ("párar", "opt_out"),
        ("Stop all", "opt_out"),
        ("¡Baja!", "opt_out"),
        ("ＳＴＯＰ", "opt_out"),  # full-width letters, as some keyboards type them
        ("start", "opt_in"),
        ("Voltar!!", "opt_in"),
        ("stop sending me these", None),
        ("stopp", None),
        ("the end", None),
        ("", None),
        ("!!!", None),
        ("stop" * 100, None),
    ],
)
def test_a_reply_is_a_keyword_only_when_it_is_one_whole(text, kind):
    assert keyword_kind(text, OUT, IN) == kind


def test_keyword_settings_are_comma_separated_and_folded_too():
    assert keyword_kind("nao", " Não , chega ", "") == "opt_out"
    assert keyword_kind("chega", " Não , chega ", "") == "opt_out"
    assert keyword_kind("stop", " Não , chega ", "") is None
    assert keyword_kind("stop", ",,", "") is None


# ---------------------------------------------------------------- the queue


def test_an_opt_out_cancels_its_rows_in_every_job_even_a_running_one(q):
    running, other = job(q, [A, B, C]), job(q, [A], channel="sms")
    first = q.claim_next("whatsapp", "w1")  # A of the running job: in flight, left alone
    assert first["phone"] == A
    assert q.add_suppressions([B, A, B], "keyword", "STOP", inbound_id=7) == [B, A]
    assert rows_of(q, running["id"]) == {
        A: ("sending", None),
        B: ("cancelled", "opted_out"),
        C: ("pending", None),
    }
    assert rows_of(q, other["id"]) == {A: ("cancelled", "opted_out")}
    assert q.get_job(other["id"])["status"] == "completed"  # nothing open was left
    q.mark_sent(first["id"], "w1")
    assert drain(q) == [C]  # the other numbers go on
    assert q.get_job(running["id"])["status"] == "completed"
    assert q.add_suppressions([A], "manual") == []  # already there: nothing new
    entries, total = q.list_suppressions()
    assert total == 2
    assert {(e["phone"], e["reason"], e["source"], e["inbound_id"]) for e in entries} == {
        (A, "keyword", "STOP", 7),
        (B, "keyword", "STOP", 7),
    }


@pytest.mark.parametrize("undo", ["retry_later", "release", "reroute"])
def test_a_row_in_flight_during_the_opt_out_is_never_handed_out_again(q, undo):
    queued = job(q, [A, B], channel="whatsapp_then_sms")
    message = q.claim_next("whatsapp", "w1")
    q.add_suppressions([A], "keyword")
    args = {
        "retry_later": ("chat_not_open", 0),
        "release": (),
        "reroute": ("sms", "not_on_whatsapp"),
    }[undo]
    assert getattr(q, undo)(message["id"], "w1", *args) is True
    assert drain(q, "whatsapp") + drain(q, "sms") == [B]
    assert rows_of(q, queued["id"])[A] == ("cancelled", "opted_out")
    assert q.get_job(queued["id"])["status"] == "completed"


def test_a_stop_between_the_send_check_and_the_insert_still_keeps_the_number_out(q):
    q.add_suppressions([A], "keyword")  # lands after /send looked at the list
    created = job(q, [A, B])
    assert rows_of(q, created["id"]) == {A: ("cancelled", "opted_out"), B: ("pending", None)}
    assert created["counts"]["pending"] == 1
    alone = job(q, [A])
    assert alone["status"] == "completed"
    assert drain(q) == [B]


def test_sending_opted_out_rows_again_cancels_them_again(q):
    first = job(q, [A, B])
    q.add_suppressions([A], "manual")
    again = q.resend(first["id"], ["cancelled"])
    assert rows_of(q, again["id"]) == {A: ("cancelled", "opted_out")}
    assert again["status"] == "completed"


def test_after_a_start_keyword_new_jobs_reach_the_number_again(q):
    q.add_suppressions([A], "keyword")
    assert q.remove_suppression(A) is True
    assert q.remove_suppression(A) is False
    job(q, [A])
    assert drain(q) == [A]


def test_the_confirmation_goes_out_once_and_nothing_else_does(q):
    q.add_suppressions([A], "keyword", "STOP")  # frozen clock: the same instant as below
    confirmation = q.queue_confirmation(A, "You will get no more messages.", "sms")
    assert confirmation["total"] == 1 and confirmation["channel"] == "sms"
    assert q.queue_confirmation(A, "You will get no more messages.", "sms") is None
    later = job(q, [A], channel="sms")
    message = q.claim_next("sms", "w1")
    assert (message["job_id"], message["text"]) == (confirmation["id"], confirmation["template"])
    # A failed attempt that sent nothing is tried again: it is still the confirmation.
    q.retry_later(message["id"], "w1", "gateway_failed:timeout", at=0)
    assert drain(q, "sms") == [A]
    assert drain(q, "sms") == []
    assert rows_of(q, later["id"]) == {A: ("cancelled", "opted_out")}


def test_no_confirmation_without_text_or_without_an_opt_out(q):
    assert q.queue_confirmation(A, "Bye", "whatsapp") is None  # not suppressed
    q.add_suppressions([A], "keyword")
    assert q.queue_confirmation(A, "  ", "whatsapp") is None  # OPT_OUT_CONFIRMATION empty
    assert q.list_jobs(active_only=False) == []


def test_a_second_opt_out_after_a_start_is_confirmed_again(q):
    q.add_suppressions([A], "keyword")
    assert q.queue_confirmation(A, "Bye", "whatsapp") is not None
    drain(q)
    q.remove_suppression(A)
    q.clock.now += 60
    q.add_suppressions([A], "keyword")
    assert q.queue_confirmation(A, "Bye", "whatsapp") is not None


def test_suppressed_answers_for_a_hundred_thousand_numbers(q):
    numbers = [f"+1415{i:07d}" for i in range(100_000)]
    q.add_suppressions(numbers[::1000], "import", "big.csv")
    assert q.suppressed(numbers) == set(numbers[::1000])
    assert q.suppressed([]) == set()


def test_an_unknown_reason_is_refused(q):
    with pytest.raises(ValueError):
        q.add_suppressions([A], "because")
    assert q.suppressed([A]) == set()


# ---------------------------------------------------------------- /send and /preview


def test_send_and_preview_set_suppressed_numbers_aside(client, auth, queue):
    queue.add_suppressions([A], "keyword")
    body = {"message": "Hi", "numbers": ["+1 415 555 0101", B]}
    preview = client.post("/preview", json=body, headers=auth).get_json()
    assert preview["rejected"] == [{"row": 1, "phone": "+1 415 555 0101", "reason": "opted_out"}]
    assert preview["rows"][0]["status"] == "opted_out" and preview["total"] == 1
    sent = client.post("/send", json=body, headers=auth)
    assert sent.status_code == 202
    assert sent.get_json()["rejected"] == preview["rejected"]
    assert rows_of(queue, sent.get_json()["job_id"]) == {B: ("pending", None)}


def test_a_job_of_only_suppressed_numbers_is_422_and_writes_nothing(client, auth, queue):
    queue.add_suppressions([A, B], "manual")
    for route in ("/send", "/preview"):
        response = client.post(route, json={"message": "Hi", "numbers": [A, B]}, headers=auth)
        assert response.status_code == 422
        body = response.get_json()
        assert body["detail"] == "None of the numbers can be sent to."
        assert body["errors"][0] == {"row": 1, "message": f"{A}: opted_out"}
    assert queue.list_jobs(active_only=False) == []


def test_a_replay_after_an_opt_out_is_still_the_same_request(client, auth, queue):
    body, key = {"message": "Hi", "numbers": [A, B]}, {"Idempotency-Key": "k1", **auth}
    first = client.post("/send", json=body, headers=key).get_json()
    queue.add_suppressions([A], "keyword")
    again = client.post("/send", json=body, headers=key)
    assert again.status_code == 202 and again.get_json()["job_id"] == first["job_id"]


def test_a_stop_landing_while_send_runs_is_honoured(settings, auth):
    """/send checked the list before the STOP was stored; the job still never sends to A."""
    from app import create_app

    class StopArrivesMeanwhile(Queue):
        def suppressed(self, phones):
            answer = super().suppressed(phones)
            self.add_suppressions([A], "keyword")  # the inbound webhook, between the two
            return answer

    queue = StopArrivesMeanwhile(settings.database_path)
    client = create_app(settings, queue).test_client()
    sent = client.post("/send", json={"message": "Hi", "numbers": [A, B]}, headers=auth)
    assert sent.status_code == 202 and sent.get_json()["rejected"] == []
    assert rows_of(queue, sent.get_json()["job_id"])[A] == ("cancelled", "opted_out")
    assert drain(queue) == [B]


# ---------------------------------------------------------------- the API


def add(client, auth, phones, **extra):
    return client.post("/suppressions", json={"phones": phones, **extra}, headers=auth)


def test_add_list_search_page_and_remove(client, auth, queue):
    response = add(client, auth, [A, "415-555-0102", "nope", A, 14155550103], default_country="US")
    assert response.status_code == 200
    assert response.get_json() == {
        "added": [A, B, C],
        "rejected": [
            {"row": 3, "phone": "nope", "reason": "invalid_phone"},
            {"row": 4, "phone": A, "reason": "duplicate"},
        ],
    }
    again = add(client, auth, [B]).get_json()
    assert again == {
        "added": [],
        "rejected": [{"row": 1, "phone": B, "reason": "already_suppressed"}],
    }
    page = client.get("/suppressions?limit=2&offset=1", headers=auth).get_json()
    assert (page["total"], page["limit"], page["offset"], len(page["suppressions"])) == (3, 2, 1, 2)
    entry = page["suppressions"][0]
    assert set(entry) == {"phone", "reason", "at", "source"} and entry["reason"] == "manual"
    assert entry["at"].endswith("Z")
    found = client.get("/suppressions", query_string={"q": "(415) 555-0102"}, headers=auth)
    assert [s["phone"] for s in found.get_json()["suppressions"]] == [B]
    assert client.delete("/suppressions/%2B14155550102", headers=auth).status_code == 204
    assert client.delete("/suppressions/14155550101", headers=auth).status_code == 204
    gone = client.delete("/suppressions/14155550101", headers=auth)
    assert gone.status_code == 404 and gone.mimetype == "application/problem+json"
    assert queue.suppressed([A, B, C]) == {C}


def test_adding_by_hand_cancels_what_was_queued(client, auth, queue):
    created = job(queue, [A, B])
    assert add(client, auth, [A]).status_code == 200
    assert rows_of(queue, created["id"])[A] == ("cancelled", "opted_out")


def xlsx(rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "name, data",
    [
        ("list.csv", b"Name;Celular\nAna;+1 415 555 0101\nBo;4155550102\nCy;junk\n"),
        ("list.xlsx", xlsx([["Name", "Mobile"], ["Ana", A], ["Bo", "4155550102"], ["Cy", "junk"]])),
        ("list.txt", b"+14155550101\n4155550102\njunk\n"),
    ],
)
def test_import_a_contact_file(client, auth, queue, name, data):
    response = client.post(
        "/suppressions/import",
        data={"file": (io.BytesIO(data), name), "default_country": "US"},
        headers=auth,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["added"] == [A, B]
    assert [r["reason"] for r in body["rejected"]] == ["invalid_phone"]
    entries = client.get("/suppressions", headers=auth).get_json()["suppressions"]
    assert {(s["reason"], s["source"]) for s in entries} == {("import", name)}


def test_export_then_import_round_trip(client, auth, queue, tmp_path):
    queue.add_suppressions([A], "keyword", '=HYPERLINK("http://x")')
    queue.add_suppressions([B], "import", "@list.csv")
    export = client.get("/suppressions/export.csv", headers=auth)
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0] == ["phone", "reason", "at", "source"]
    assert [r[:2] for r in rows[1:]] == [[A, "keyword"], [B, "import"]]
    assert [r[3] for r in rows[1:]] == ['\'=HYPERLINK("http://x")', "'@list.csv"]  # no formulas
    other = Queue(tmp_path / "other.db")
    from app import create_app

    fresh = create_app(client.application.config["SETTINGS"], other).test_client()
    imported = fresh.post(
        "/suppressions/import",
        data={"file": (io.BytesIO(export.get_data()), "suppressions.csv")},
        headers=auth,
    )
    assert imported.get_json() == {"added": [A, B], "rejected": []}
    assert other.suppressed([A, B, C]) == {A, B}


# ---------------------------------------------------------------- bad input


def nothing_stored(queue):
    return queue.list_suppressions()[1] == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"phones": "+14155550101"}, "phones"),
        ({"phones": []}, "phones"),
        ({"phones": [A, None]}, None),
        ({"phones": [A, {"x": 1}]}, None),
        ({"phones": [A, True]}, None),
        ({"phones": [A], "reason": "keyword"}, "reason"),
        ({"phones": [A], "reason": "import"}, "reason"),
        ({"phones": [A], "reason": 5}, "reason"),
        ({"phones": [A], "why": "x"}, "why"),
        ({"phones": [A], "default_country": "XX"}, "default_country"),
        ({"phones": ["abc", "12"]}, None),
        ({"phones": [A, "+1415\ud800"]}, "phones[2]"),
        ({"phones": [A] * 200_001}, "phones"),
    ],
)
def test_bad_additions_are_422_and_store_nothing(client, auth, queue, body, field):
    response = client.post("/suppressions", json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert response.mimetype == "application/problem+json" and problem["detail"]
    if field:
        assert problem["errors"][0]["field"] == field
    assert nothing_stored(queue)


@pytest.mark.parametrize(
    "raw, status",
    [(b"", 400), (b"{", 400), (b"[1]", 422), (b"NaN", 400)],
)
def test_bad_json_bodies(client, auth, queue, raw, status):
    response = client.post("/suppressions", data=raw, content_type="application/json", headers=auth)
    assert response.status_code == status
    assert nothing_stored(queue)


@pytest.mark.parametrize(
    "data, status, field",
    [
        ({"default_country": "US"}, 422, "file"),
        ({"file": (b"a,b\n", "list.pdf")}, 422, "file"),
        ({"file": (b"", "list.csv")}, 422, "file"),
        ({"file": (b"phone\n", "list.csv")}, 422, "file"),
        ({"file": (b"name\nAna\n", "list.csv")}, 422, "phone_column"),
        ({"file": (b"phone\nx\ny\n", "list.csv")}, 422, None),
        ({"file": (b"\x00\xff" * 50, "list.xlsx")}, 422, "file"),
        (
            {"file": (f"phone\n{A}\n".encode(), "l.csv"), "phone_column": "tel"},
            422,
            "phone_column",
        ),
    ],
)
def test_bad_imports_are_4xx_and_store_nothing(client, auth, queue, data, status, field):
    # Files are made here: a parametrized BytesIO would be read up by the first backend's run.
    data = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    response = client.post("/suppressions/import", data=data, headers=auth)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    if field:
        assert response.get_json()["errors"][0]["field"] == field
    assert nothing_stored(queue)


def test_import_must_be_multipart(client, auth, queue):
    response = client.post("/suppressions/import", json={"phones": [A]}, headers=auth)
    assert response.status_code == 415
    assert nothing_stored(queue)


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "offset=-1", "limit=1001"])
def test_bad_paging_is_422(client, auth, query):
    response = client.get(f"/suppressions?{query}", headers=auth)
    assert response.status_code == 422


@pytest.mark.parametrize("phone", ["abc", "%2B", "1" * 30, "%00"])
def test_removing_something_that_is_no_number_is_404(client, auth, phone):
    response = client.delete(f"/suppressions/{phone}", headers=auth)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/suppressions"),
        ("post", "/suppressions"),
        ("delete", f"/suppressions/{A}"),
        ("get", "/suppressions/export.csv"),
        ("post", "/suppressions/import"),
    ],
)
def test_the_list_needs_the_key(client, method, path):
    assert getattr(client, method)(path).status_code == 401


# ---------------------------------------------------------------- the /app screen


def test_the_opt_outs_screen_manages_the_list_with_the_session_and_csrf(client, queue):
    from tests.test_app_page import page_token, sign_in

    assert 'name="api_key"' in client.get("/app/opt-outs").get_data(as_text=True)
    assert sign_in(client, next_url="/app/opt-outs").headers["Location"] == "/app/opt-outs"
    html = client.get("/app/opt-outs").get_data(as_text=True)
    assert 'href="/app/opt-outs" aria-current="page">Opt-outs</a>' in html
    assert "/static/opt_outs.js" in html and 'href="/suppressions/export.csv"' in html
    assert client.get("/static/opt_outs.js").status_code == 200
    token = {"X-CSRF-Token": page_token(html)}
    assert client.post("/suppressions", json={"phones": [A]}).status_code == 403
    assert client.post("/suppressions", json={"phones": [A]}, headers=token).status_code == 200
    assert client.get("/suppressions").get_json()["total"] == 1
    assert client.delete("/suppressions/14155550101", headers=token).status_code == 204
    assert queue.suppressed([A]) == set()


def test_the_import_and_export_routes_are_never_read_as_a_number_to_delete(client, auth):
    # Found by make fuzz: /suppressions/<phone> once matched "import" and "export.csv".
    for path in ("/suppressions/import", "/suppressions/export.csv"):
        allowed = client.options(path, headers=auth).headers["Allow"]
        assert "DELETE" not in allowed, (path, allowed)
        assert client.delete(path, headers=auth).status_code == 405


def test_a_stop_whose_write_failed_is_honoured_when_it_comes_again(q, settings, monkeypatch):
    from message_queue import DatabaseUnavailable
    from message_queue.suppressions import SuppressionStore
    from utils.replies import take_inbound

    job, _ = q.create_job(NewJob(channel="sms", template="x"), [Recipient(A, "hi", "sms")])
    real = SuppressionStore._apply_keyword

    def outage(self, *args):
        monkeypatch.setattr(SuppressionStore, "_apply_keyword", real)
        raise DatabaseUnavailable("the database went away mid-write")

    monkeypatch.setattr(SuppressionStore, "_apply_keyword", outage)
    reply = dict(phone=A, channel="sms", sender="phone-1", text="STOP", received_at=T0)
    with pytest.raises(DatabaseUnavailable):
        take_inbound(q, settings, **reply)
    # Nothing of it was kept: not the reply without its opt-out.
    assert q.db.connection().execute("SELECT count(*) FROM inbound").fetchone()[0] == 0
    assert take_inbound(q, settings, **reply)  # the phone's retry
    assert q.suppressed([A]) == {A}
    assert q.get_job(job["id"])["counts"]["cancelled"] == 1
