"""The /app page through Flask's test client: sign-in, CSRF, the sign-in limit, POST /preview,
escaping, and pages that keep to the Content-Security-Policy (no inline script or style)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest

from api.limiter import LIMIT, WrongKeyLimiter
from tests.conftest import API_KEY
from tests.test_bad_input import FORM_422, JSON_422, fresh

ROOT = Path(__file__).resolve().parents[1]
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
GOOD = "+14155550101"
# In /preview an empty message is fine (a list is looked at before the message is written).
EMPTY_MESSAGE_CASES = {
    "empty message",
    "missing message",
    "whitespace-only message",
    "empty message in the form",
}


def form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def page_token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def sign_in(client, key=API_KEY, next_url="/app", address="127.0.0.1", **headers):
    token = form_token(client.get("/app").get_data(as_text=True))
    return client.post(
        "/app/sign-in",
        data={"csrf": token, "api_key": key, "next": next_url},
        headers={**HTML, **headers},
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.fixture
def csrf(client):
    """Sign the test client in; the page's CSRF token."""
    assert sign_in(client).status_code == 303
    return page_token(client.get("/app").get_data(as_text=True))


def rows_and_files(queue, settings):
    conn = queue.db.connection()
    counts = (
        conn.execute("SELECT count(*) FROM jobs").fetchone()[0],
        conn.execute("SELECT count(*) FROM messages").fetchone()[0],
    )
    uploads = Path(settings.upload_dir)
    return counts, sorted(uploads.iterdir()) if uploads.exists() else []


# ---------------------------------------------------------------- signing in and out


def test_root_goes_to_the_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/app"


@pytest.mark.parametrize("path", ["/app", "/app/new", "/app/jobs/j_123"])
def test_signed_out_every_view_shows_the_sign_in_form(client, path):
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert 'id="sign-in"' in html and 'type="password"' in html
    assert f'name="next" value="{path}"' in html
    assert form_token(html)  # the sign-in form carries a CSRF token too
    assert "<script" not in html  # nothing runs before sign-in
    assert response.headers["Cache-Control"] == "no-store"


def test_sign_in_then_the_api_works_with_the_cookie(client, queue):
    response = sign_in(client, next_url="/app/new")
    assert response.status_code == 303 and response.headers["Location"] == "/app/new"
    assert client.get("/jobs").status_code == 200
    html = client.get("/app").get_data(as_text=True)
    assert 'id="jobs"' in html and 'src="/static/campaigns.js"' in html


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/app",
        "//evil.example/app",
        "/app\\..\\evil",
        "javascript:alert(1)",
        "/jobs",
    ],
)
def test_sign_in_never_redirects_off_the_page(client, target):
    response = sign_in(client, next_url=target)
    assert response.status_code == 303 and response.headers["Location"] == "/app"


@pytest.mark.parametrize(
    "target",
    [
        "/app\r\nSet-Cookie: planted=1",
        "/app/new\n",
        "/app\x00",
        "/app/jobs/j_1\x7f",
        "/app/\t",
        "/app/" + "a" * 5000,
        "/app/ new",
        "/app/jobs/j_\u00e9\u2028",
        "/application",
    ],
)
def test_sign_in_with_a_strange_next_goes_to_the_page_not_500(client, target):
    response = sign_in(client, next_url=target)
    assert response.status_code == 303 and response.headers["Location"] == "/app"
    assert "planted" not in str(response.headers)


@pytest.mark.parametrize("path", ["/app/jobs/%0d%0aSet-Cookie:x=1", "/app/jobs/" + "j" * 5000])
def test_the_sign_in_form_never_carries_a_strange_next(client, path):
    html = client.get(path).get_data(as_text=True)
    assert 'name="next" value="/app"' in html


def test_a_plain_page_path_survives_sign_in(client):
    response = sign_in(client, next_url="/app/jobs/j_8f2c01?tab=failed")
    assert response.headers["Location"] == "/app/jobs/j_8f2c01?tab=failed"


def test_wrong_key_shows_the_form_again_with_the_reason(client):
    response = sign_in(client, key="wrong-key-0123456789")
    html = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "That is not the API key" in html and 'id="sign-in-error"' in html
    assert "wrong-key-0123456789" not in html  # a typed key is never echoed back
    assert client.get("/jobs").status_code == 401


def test_sign_in_without_the_forms_csrf_token_is_refused(client):
    client.get("/app")
    response = client.post("/app/sign-in", data={"api_key": API_KEY}, headers=HTML)
    assert response.status_code == 400 and "try again" in response.get_data(as_text=True)
    assert client.get("/jobs").status_code == 401


def test_sign_in_replaces_the_session_and_its_token(client):
    before = form_token(client.get("/app").get_data(as_text=True))
    assert sign_in(client).status_code == 303
    after = page_token(client.get("/app").get_data(as_text=True))
    assert after != before  # a token planted before sign-in is worth nothing after it


def test_sign_out_needs_the_token_and_ends_the_session(client, csrf):
    refused = client.post("/app/sign-out")
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert client.get("/jobs").status_code == 200
    response = client.post("/app/sign-out", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/app"
    assert client.get("/jobs").status_code == 401


# ---------------------------------------------------------------- guessing the key


def test_a_few_wrong_keys_a_minute_then_429_for_that_address_only(app, client):
    now = [1000.0]
    app.extensions["key_limiter"] = WrongKeyLimiter(clock=lambda: now[0])
    for i in range(LIMIT):
        assert sign_in(client, key=f"guess-{i}-0123456789", address="10.0.0.9").status_code == 401
    limited = sign_in(client, key=API_KEY, address="10.0.0.9")  # even the right key waits
    html = limited.get_data(as_text=True)
    assert limited.status_code == 429 and "Too many wrong keys" in html
    assert "even the right key" in html
    assert limited.headers["Retry-After"] == "60"
    assert client.get("/jobs").status_code == 401

    as_json = sign_in(client, key=API_KEY, address="10.0.0.9", Accept="application/json")
    assert as_json.status_code == 429 and as_json.mimetype == "application/problem+json"
    assert as_json.get_json()["status"] == 429 and "Wait" in as_json.get_json()["detail"]
    assert as_json.headers["Retry-After"] == "60"

    assert sign_in(client, address="10.0.0.10").status_code == 303  # another address
    now[0] += 30
    assert sign_in(client, address="10.0.0.9").headers["Retry-After"] == "30"
    now[0] += 31
    assert sign_in(client, address="10.0.0.9").status_code == 303  # a minute later


def test_right_keys_do_not_count_against_the_limit(app, client):
    for _ in range(LIMIT * 2):
        assert sign_in(client).status_code == 303


def test_the_same_mistyped_key_again_is_not_a_new_guess(app, client):
    for _ in range(LIMIT * 2):
        assert sign_in(client, key="my-old-key-0123456789").status_code == 401
    assert sign_in(client).status_code == 303


# ---------------------------------------------------------------- CSRF on every write


def test_the_cookie_alone_cannot_write(client, queue, settings, csrf):
    body = {"message": "Hi", "numbers": [GOOD]}
    for method, url in [
        ("POST", "/send"),
        ("POST", "/preview"),
        ("POST", "/stop"),
        ("POST", "/pause/j_x"),
        ("POST", "/resume/j_x"),
        ("POST", "/stop/j_x"),
    ]:
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": csrf + "x"}):
            response = client.open(url, method=method, json=body, headers=headers)
            assert response.status_code == 403, (url, headers)
            assert response.mimetype == "application/problem+json"
    assert rows_and_files(queue, settings) == ((0, 0), [])
    assert client.post("/send", json=body, headers={"X-CSRF-Token": csrf}).status_code == 202


# ---------------------------------------------------------------- POST /preview


def csv_with_bom_and_semicolons(rows: int = 25) -> bytes:
    lines = ["Nome;Celular;Pedido"]
    lines += [f"Cliente {i};+1 415 555 {100 + i:04d};A-{i}" for i in range(1, rows + 1)]
    lines += ["Sem número;12ab;X-1", "Repetido;+14155550101;X-2"]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def test_preview_of_a_csv_shows_rows_columns_rejects_and_messages(client, auth, queue, settings):
    response = client.post(
        "/preview",
        headers=auth,
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(csv_with_bom_and_semicolons()), "clientes.csv"),
            "message": "Olá {nome}, pedido {pedido}",
        },
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["columns"] == ["nome", "celular", "pedido"]
    assert body["headers"] == ["Nome", "Celular", "Pedido"]
    assert body["placeholders"] == ["nome", "celular", "pedido", "phone"]
    assert body["phone_column"] == "celular"
    assert body["total"] == 25
    assert len(body["rows"]) == 20
    assert body["rows"][0] == {
        "row": 2,
        "phone": "+1 415 555 0101",
        "normalized": GOOD,
        "status": "ok",
        "values": {"nome": "Cliente 1", "celular": "+1 415 555 0101", "pedido": "A-1"},
    }
    assert body["rejected"] == [
        {"row": 27, "phone": "12ab", "reason": "invalid_phone"},
        {"row": 28, "phone": GOOD, "reason": "duplicate"},
    ]
    assert body["rejected_total"] == 2
    assert [p["text"] for p in body["previews"]] == [
        f"Olá Cliente {i}, pedido A-{i}" for i in range(1, 6)
    ]
    assert body["previews"][0] == {
        "row": 2,
        "phone": GOOD,
        "name": "",
        "text": "Olá Cliente 1, pedido A-1",
        "characters": 25,
        "sms_parts": 1,
    }
    assert body["sms"] is None  # WhatsApp: no parts to count
    assert body["estimate_seconds"] == 0 * 25 + 5 * 25  # no pacing in tests, 5 s a send
    assert rows_and_files(queue, settings) == ((0, 0), [])


def test_preview_counts_sms_parts_and_paces_sms_on_its_own(app, client, auth, settings):
    app.config["SETTINGS"] = settings.replace(
        min_delay=4,
        max_delay=8,
        sms_min_delay=8,
        sms_max_delay=16,
        long_pause_every=10,
        long_pause_min=20,
        long_pause_max=40,
    )
    body = client.post(
        "/preview",
        headers=auth,
        json={
            "channel": "sms",
            "message": "Olá {name} 😀 " + "x" * 55,
            "contacts": [
                {"phone": GOOD, "name": "Ana"},
                {"phone": "+14155550102", "name": "Bartholomew"},
            ],
        },
    ).get_json()
    # The emoji makes it UCS-2 (70 a part, 67 above) and counts as two.
    assert body["sms"] == {"encoding": "ucs2", "parts": 2, "characters": 74, "total_parts": 3}
    assert [(p["characters"], p["sms_parts"]) for p in body["previews"]] == [(66, 1), (74, 2)]
    assert body["pacing"]["min_delay"] == 8 and body["pacing"]["max_delay"] == 16
    assert body["pacing"]["summary"] == (
        "One message every 8–16 seconds, with a longer break of 20–40 seconds after every 10 "
        "messages, so it looks like a person typing and not like a robot."
    )
    assert body["estimate_seconds"] == round((12 + 5 + 3) * 2)
    whatsapp = client.post(
        "/preview", headers=auth, json={"message": "Hi", "numbers": [GOOD]}
    ).get_json()
    assert whatsapp["pacing"]["min_delay"] == 4 and whatsapp["estimate_seconds"] == 6 + 5 + 3


def test_preview_with_a_chosen_phone_column_and_pasted_numbers(client, auth):
    data = {
        "file": (io.BytesIO(b"name,home,mobile\nAna,+14155550101,+14155550102\n"), "c.csv"),
        "phone_column": "mobile",
        "numbers": "+14155550103\n+14155550104",
        "message": "Hi {name}",
    }
    body = client.post(
        "/preview", headers=auth, data=data, content_type="multipart/form-data"
    ).get_json()
    assert body["phone_column"] == "mobile" and body["headers"] == ["name", "home", "mobile"]
    assert [r["normalized"] for r in body["rows"]] == [
        "+14155550102",
        "+14155550103",
        "+14155550104",
    ]
    assert [r["row"] for r in body["rows"]] == [2, 3, 4]  # pasted rows follow the file's
    assert [p["text"] for p in body["previews"]] == ["Hi Ana", "Hi ", "Hi "]


def test_preview_before_the_message_is_written(client, auth):
    body = client.post(
        "/preview",
        headers=auth,
        data={"numbers": f"{GOOD}, 12ab"},
        content_type="multipart/form-data",
    ).get_json()
    assert body["previews"] == [] and body["total"] == 1
    assert body["rejected"] == [{"row": 2, "phone": "12ab", "reason": "invalid_phone"}]


def test_preview_checks_the_attachment_but_stores_nothing(client, auth, queue, settings):
    pdf = base64.b64encode(b"%PDF-1.4\n").decode()
    body = client.post(
        "/preview",
        headers=auth,
        json={
            "message": "Menu",
            "numbers": [GOOD],
            "attachment": {"filename": "menu.pdf", "content_base64": pdf},
        },
    ).get_json()
    assert body["attachment"] == {"filename": "menu.pdf", "bytes": 9}
    assert rows_and_files(queue, settings) == ((0, 0), [])


def test_preview_needs_the_key(client):
    response = client.post("/preview", json={"message": "Hi", "numbers": [GOOD]})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "body",
    [v[0] for k, v in JSON_422.items() if k not in EMPTY_MESSAGE_CASES],
    ids=[k for k in JSON_422 if k not in EMPTY_MESSAGE_CASES],
)
def test_preview_refuses_bad_json_exactly_as_send_does(client, auth, queue, settings, body):
    send = client.post("/send", json=body, headers=auth)
    preview = client.post("/preview", json=body, headers=auth)
    assert preview.status_code == send.status_code == 422
    assert preview.mimetype == "application/problem+json"
    assert preview.get_json() == send.get_json()
    assert rows_and_files(queue, settings) == ((0, 0), [])


@pytest.mark.parametrize(
    "form",
    [v for k, v in FORM_422.items() if k not in EMPTY_MESSAGE_CASES],
    ids=[k for k in FORM_422 if k not in EMPTY_MESSAGE_CASES],
)
def test_preview_refuses_bad_forms_exactly_as_send_does(client, auth, queue, settings, form):
    send = client.post("/send", data=fresh(form), headers=auth, content_type="multipart/form-data")
    preview = client.post(
        "/preview", data=fresh(form), headers=auth, content_type="multipart/form-data"
    )
    assert preview.status_code == send.status_code == 422
    assert preview.get_json() == send.get_json()
    assert rows_and_files(queue, settings) == ((0, 0), [])


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b"", "application/json", 400),
        (b"[1, 2]", "application/json", 422),
        (b'{"message": NaN}', "application/json", 400),
        (b"message=Hi", "text/plain", 415),
    ],
)
def test_preview_refuses_bad_bodies_as_send_does(client, auth, raw, content_type, status):
    send = client.post("/send", data=raw, content_type=content_type, headers=auth)
    preview = client.post("/preview", data=raw, content_type=content_type, headers=auth)
    assert preview.status_code == send.status_code == status
    assert preview.get_json() == send.get_json()


@pytest.mark.parametrize("case", sorted(EMPTY_MESSAGE_CASES))
def test_an_empty_message_is_refused_by_send_but_previewed(client, auth, case):
    form = FORM_422.get(case)
    if form is not None:
        kwargs = {"data": fresh(form), "content_type": "multipart/form-data"}
    else:
        kwargs = {"json": JSON_422[case][0]}
    assert client.post("/send", headers=auth, **kwargs).status_code == 422
    kwargs = {**kwargs, "data": fresh(form)} if form is not None else kwargs
    response = client.post("/preview", headers=auth, **kwargs)
    assert response.status_code == 200 and response.get_json()["previews"] == []


# ---------------------------------------------------------------- pages: escaping, CSP


def test_names_and_messages_are_escaped_in_the_detail_page(client, auth, csrf):
    xss = "<img src=x onerror=alert(1)>"
    job = client.post(
        "/send",
        headers=auth,
        json={
            "name": f"<script>alert('n')</script>{xss}",
            "message": f"Hi {{name}} {xss}",
            "contacts": [{"phone": GOOD, "name": xss}],
        },
    ).get_json()["job_id"]
    html = client.get(f"/app/jobs/{job}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert (
        "&lt;script&gt;alert(&#39;n&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    )
    assert "Hi {name} &lt;img src=x onerror=alert(1)&gt;" in html  # the message, as written


def test_an_unknown_campaign_is_a_404_page_and_its_id_is_escaped(client, csrf):
    response = client.get("/app/jobs/<img src=x onerror=alert(1)>")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html


def test_the_banner_is_shown_while_a_job_waits_for_login(client, auth, queue, csrf):
    client.post("/send", headers=auth, json={"message": "Hi", "numbers": [GOOD]})
    assert 'id="banner-login" hidden' in client.get("/app/new").get_data(as_text=True)
    queue.set_channel_waiting("whatsapp", "waiting_for_login")
    html = client.get("/app/new").get_data(as_text=True)
    assert 'id="banner-login">' in html and 'id="banner-gateway" hidden' in html


def test_pages_keep_to_the_csp_no_inline_script_style_or_handler(app, client, auth, csrf):
    job = client.post("/send", headers=auth, json={"message": "Hi", "numbers": [GOOD]})
    pages = ["/app", "/app/new", f"/app/jobs/{job.get_json()['job_id']}", "/app/jobs/j_none"]
    signed_out = app.test_client()
    html_of_sign_in = sign_in(signed_out, key="wrong-0123456789abc").get_data(as_text=True)
    assert "<script" not in html_of_sign_in and " style=" not in html_of_sign_in
    for path in pages:
        response = client.get(path)
        html = response.get_data(as_text=True)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert re.search(r'\bsrc="/static/[\w.]+\.js"', tag), (path, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), path  # nothing inline
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no onclick=... handlers
        assert not re.search(r"\sstyle\s*=", html) and "<style" not in html, path
        assert 'rel="stylesheet" href="/static/app.css"' in html
        assert "http://" not in html and "https://" not in html, path  # no CDN, ever
    for script in re.findall(
        r'src="/static/([\w.]+\.js)"', client.get("/app").get_data(as_text=True)
    ):
        assert client.get(f"/static/{script}").status_code == 200


def test_scripts_never_put_data_into_html():
    for script in sorted((ROOT / "static").glob("*.js")):
        code = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{script.name} uses {sink}"


def test_changing_the_api_key_signs_every_page_session_out(app, client, csrf):
    assert client.get("/jobs").status_code == 200
    app.config["API_KEY"] = "a-brand-new-key-0123456789"  # what a restart with a new key does
    assert client.get("/jobs").status_code == 401
    assert "api_key" in client.get("/app").get_data(as_text=True)  # the sign-in form again


def test_without_secret_key_every_process_shares_the_sessions(settings, queue):
    # gunicorn's workers each build the app: a session signed in on one must work on all, and
    # a new API key (so a new derived secret) must end it.
    from app import create_app

    one = create_app(settings.replace(secret_key=""), queue)
    two = create_app(settings.replace(secret_key=""), queue)
    other = create_app(
        settings.replace(secret_key="", api_key="another-key-0123456789abcdef"), queue
    )
    assert one.secret_key == two.secret_key != other.secret_key
    browser = one.test_client()
    assert sign_in(browser).status_code == 303
    cookie = browser.get_cookie("session").value
    for app, status in ((two, 200), (other, 401)):
        elsewhere = app.test_client()
        elsewhere.set_cookie("session", cookie)
        assert elsewhere.get("/jobs").status_code == status
