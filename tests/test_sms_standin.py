"""The phone-gateway stand-in, spoken to over real HTTP with plain ``requests``.

If these pass, an SMS sender written against the SMSGate local-server API
(shared/reference/smsgate-api.md) can be tested on it, faults included.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.sms_standin import GatewayServer
from tests.sms_standin.inbox import sign

AUTH = ("sms", "secret")
PHONE, OTHER = "+5511912345678", "+15550001234"
STEP = 0.05  # seconds per state step: Delivered 0.15 s after arrival
TIMEOUT = 3  # every call has one; a hung stand-in fails the test instead of blocking it


@pytest.fixture(scope="module")
def server():
    with GatewayServer(step_delay=STEP) as srv:
        yield srv


@pytest.fixture
def gw(server):
    server.reset()
    return server


def send(gw, body=None, path="/messages", auth=AUTH, timeout=TIMEOUT, **params):
    body = {"textMessage": {"text": "Hi Ana"}, "phoneNumbers": [PHONE]} if body is None else body
    return requests.post(gw.url + path, json=body, auth=auth, params=params, timeout=timeout)


def get(gw, msg_id, path="/messages", auth=AUTH):
    return requests.get(f"{gw.url}{path}/{msg_id}", auth=auth, timeout=TIMEOUT)


def wait_for_state(gw, msg_id, want, seconds=3.0, auth=AUTH):
    """Poll GET /messages/{id} until its state is ``want``; the last body seen."""
    deadline = time.monotonic() + seconds
    while True:
        body = get(gw, msg_id, auth=auth).json()
        if body["state"] == want:
            return body
        assert time.monotonic() < deadline, f"never reached {want}: {body}"
        time.sleep(0.01)


def stays(gw, msg_id, state, seconds=6 * STEP):
    """Assert the message keeps ``state`` (None: unknown, 404) for several steps."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = get(gw, msg_id)
        assert (response.json()["state"] if response.status_code == 200 else None) == state
        assert response.status_code in (200, 404)
        time.sleep(0.01)


# --- auth and health --------------------------------------------------------------------
@pytest.mark.parametrize("auth", [None, ("sms", "wrong"), ("other", "secret")])
def test_every_route_but_health_needs_basic_auth(gw, auth):
    for response in (
        send(gw, {"id": "x", "message": "m", "phoneNumbers": [PHONE]}, auth=auth),
        requests.get(gw.url + "/messages/x", auth=auth, timeout=TIMEOUT),
        requests.delete(gw.url + "/messages/x", auth=auth, timeout=TIMEOUT),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="')
        assert "SMS Gateway" in response.headers["WWW-Authenticate"]
        assert response.content == b""
    assert requests.get(gw.url + "/health", timeout=TIMEOUT).status_code == 200
    assert gw.accepted() == []


def test_set_credentials_replaces_the_old_ones(gw):
    gw.set_credentials("gateway", "n3w")
    assert send(gw).status_code == 401
    assert send(gw, auth=("gateway", "n3w")).status_code == 202


@pytest.mark.parametrize("health,code", [("pass", 200), ("warn", 200), ("fail", 500)])
def test_health_reports_status_in_body_and_code(gw, health, code):
    gw.set_health(health)
    response = requests.get(gw.url + "/health", timeout=TIMEOUT)
    assert response.status_code == code
    body = response.json()
    assert body["status"] == health
    assert body["version"].startswith("1.") and isinstance(body["releaseId"], int)
    assert all(check["status"] in ("pass", "warn", "fail") for check in body["checks"].values())


# --- sending and states -----------------------------------------------------------------
def test_send_is_accepted_then_moves_to_delivered(gw):
    response = send(
        gw,
        {
            "id": "m_1_a",
            "textMessage": {"text": "Hi Ana"},
            "ttl": 86400,
            "phoneNumbers": [PHONE],
            "withDeliveryReport": True,
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert {k: body[k] for k in ("id", "state", "isHashed", "isEncrypted")} == {
        "id": "m_1_a",
        "state": "Pending",
        "isHashed": False,
        "isEncrypted": False,
    }
    assert body["deviceId"]
    assert body["recipients"] == [{"phoneNumber": PHONE, "state": "Pending"}]
    assert list(body["states"]) == ["Pending"]

    body = wait_for_state(gw, "m_1_a", "Delivered")
    assert body["recipients"] == [{"phoneNumber": PHONE, "state": "Delivered"}]
    assert list(body["states"]) == ["Pending", "Processed", "Sent", "Delivered"]
    times = list(body["states"].values())
    assert times == sorted(times) and len(set(times)) == 4
    assert [(m["id"], m["phone"], m["text"]) for m in gw.accepted()] == [("m_1_a", PHONE, "Hi Ana")]


def test_without_delivery_report_it_ends_sent(gw):
    send(
        gw,
        {
            "id": "nodr",
            "textMessage": {"text": "x"},
            "phoneNumbers": [PHONE],
            "withDeliveryReport": False,
        },
    )
    wait_for_state(gw, "nodr", "Sent")
    stays(gw, "nodr", "Sent")


def test_legacy_body_and_path(gw):
    response = send(
        gw, {"id": "old", "message": "Hi Ana", "phoneNumbers": [PHONE]}, path="/message"
    )
    assert response.status_code == 202
    assert get(gw, "old", path="/message").json()["id"] == "old"
    assert get(gw, "old").status_code == 200
    assert gw.accepted()[0]["text"] == "Hi Ana"


def test_id_is_generated_and_unknown_fields_are_tolerated(gw):
    response = send(
        gw,
        {
            "textMessage": {"text": "x", "extra": 1},
            "phoneNumbers": [PHONE],
            "simNumber": 1,
            "priority": 0,
            "somethingNew": {"a": [1]},
        },
    )
    assert response.status_code == 202
    msg_id = response.json()["id"]
    assert msg_id and get(gw, msg_id).status_code == 200
    assert gw.accepted()[0]["id"] == msg_id


@pytest.mark.parametrize(
    "body",
    [
        {"textMessage": {"text": "x"}},
        {"textMessage": {"text": "x"}, "phoneNumbers": []},
        {"phoneNumbers": [PHONE]},
        {"textMessage": {"text": ""}, "phoneNumbers": [PHONE]},
        {"textMessage": {}, "phoneNumbers": [PHONE]},
        {"message": "x", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]},
        {"textMessage": {"text": "x"}, "phoneNumbers": ["12ab"]},
        {"textMessage": {"text": "x"}, "phoneNumbers": [PHONE, "call me"]},
        {"textMessage": {"text": "x"}, "phoneNumbers": PHONE},
        ["not", "an", "object"],
    ],
    ids=[
        "no-phones",
        "empty-phones",
        "no-text",
        "empty-text",
        "text-missing",
        "two-kinds",
        "bad-phone",
        "one-bad-phone",
        "phones-not-list",
        "not-object",
    ],
)
def test_bad_requests_get_400_with_a_message(gw, body):
    response = send(gw, body)
    assert response.status_code == 400
    assert isinstance(response.json()["message"], str) and response.json()["message"]
    assert gw.accepted() == []


def test_invalid_json_gets_400(gw):
    response = requests.post(
        gw.url + "/messages",
        data=b'{"phoneNumbers": [',
        auth=AUTH,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["message"]


def test_skip_phone_validation(gw):
    body = {"id": "ussd", "textMessage": {"text": "x"}, "phoneNumbers": ["*100#"]}
    assert send(gw, body).status_code == 400
    assert send(gw, body, skipPhoneValidation="maybe").status_code == 400
    assert send(gw, body, skipPhoneValidation="true").status_code == 202
    assert [m["phone"] for m in gw.accepted()] == ["*100#"]


def test_bad_phone_fail_mode_accepts_then_fails_like_the_phone(gw):
    gw.configure(bad_phone="fail")
    assert (
        send(gw, {"id": "bp", "textMessage": {"text": "x"}, "phoneNumbers": ["12ab"]}).status_code
        == 202
    )
    body = wait_for_state(gw, "bp", "Failed")
    assert body["recipients"][0]["error"] == "sendSMS: Invalid phone number"


def test_reused_id_gets_409_and_is_recorded_once(gw):
    body = {"id": "dup", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]}
    assert send(gw, body).status_code == 202
    response = send(gw, body)
    assert response.status_code == 409
    assert response.json()["message"]
    assert [m["id"] for m in gw.accepted()] == ["dup"]


def test_unknown_id_is_404_with_empty_body(gw):
    response = get(gw, "never-sent")
    assert response.status_code == 404
    assert response.content == b""


def test_delete_cancels_only_while_pending(gw):
    gw.configure(step_delay=30)  # stays Pending for the whole test
    send(gw, {"id": "c1", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]})
    response = requests.delete(gw.url + "/messages/c1", auth=AUTH, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["state"] == "Cancelled"
    assert response.json()["recipients"] == [{"phoneNumber": PHONE, "state": "Cancelled"}]
    assert list(get(gw, "c1").json()["states"]) == ["Pending", "Cancelled"]

    gw.configure(step_delay=STEP)
    send(gw, {"id": "c2", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]})
    wait_for_state(gw, "c2", "Delivered")
    response = requests.delete(gw.url + "/messages/c2", auth=AUTH, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["message"]
    assert requests.delete(gw.url + "/messages/nope", auth=AUTH, timeout=TIMEOUT).status_code == 404
    stays(gw, "c1", "Cancelled", seconds=3 * STEP)


def test_recipients_have_their_own_states(gw):
    gw.fail_message(OTHER, "RESULT_ERROR_NO_SERVICE")
    send(gw, {"id": "two", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE, OTHER]})
    body = wait_for_state(gw, "two", "Sent")  # the app's rule: not all Delivered, not all Failed
    deadline = time.monotonic() + 3
    while body["recipients"][0]["state"] != "Delivered":
        assert time.monotonic() < deadline, body
        body = get(gw, "two").json()
    assert body["state"] == "Sent"
    assert body["recipients"][1] == {
        "phoneNumber": OTHER,
        "state": "Failed",
        "error": "Send result: RESULT_ERROR_NO_SERVICE",
    }


# --- faults -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status,body", [(500, None), (503, "<html>Bad gateway</html>"), (503, {"error": "down"})]
)
def test_fail_with_answers_every_request_with_that_status(gw, status, body):
    gw.fail_with(status, body=body)
    for response in (send(gw), get(gw, "x"), requests.get(gw.url + "/health", timeout=TIMEOUT)):
        assert response.status_code == status
        if isinstance(body, str):
            assert response.text == body
            with pytest.raises(ValueError):
                response.json()
        else:
            assert response.json() == (body or {"message": f"forced {status}"})
    assert gw.accepted() == []
    assert requests.get(gw.url + "/_standin/accepted", timeout=TIMEOUT).status_code == 200
    gw.fail_with(None)
    assert send(gw).status_code == 202


@pytest.mark.parametrize(
    "reason", ["RESULT_ERROR_LIMIT_EXCEEDED", "RESULT_ERROR_RADIO_OFF", "RESULT_ERROR_NULL_PDU"]
)
def test_fail_message_ends_failed_with_the_reason_once(gw, reason):
    gw.fail_message(PHONE, reason)
    msg_id = send(gw).json()["id"]
    body = wait_for_state(gw, msg_id, "Failed")
    assert body["recipients"] == [
        {"phoneNumber": PHONE, "state": "Failed", "error": f"Send result: {reason}"}
    ]
    assert list(body["states"]) == ["Pending", "Processed", "Failed"]
    wait_for_state(gw, send(gw).json()["id"], "Delivered")  # only the next message fails


def test_hang_times_out_the_client_but_the_phone_has_the_message(gw):
    gw.hang(5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        send(gw, {"id": "slow", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]}, timeout=0.3)
    assert time.monotonic() - started < 2
    assert [m["id"] for m in gw.accepted()] == ["slow"]
    gw.hang(0)  # also lets the held request go at once
    assert get(gw, "slow").status_code == 200
    retry = send(gw, {"id": "slow", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]})
    assert retry.status_code == 409  # the client's retry with the same id
    deadline = time.monotonic() + 2
    while ("POST", "/messages", 202) not in gw.request_log():
        assert time.monotonic() < deadline, gw.request_log()
        time.sleep(0.01)


def test_refuse_connections_then_the_same_port_works_again(gw):
    url = gw.url
    gw.refuse_connections(True)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=TIMEOUT)
    with pytest.raises(requests.ConnectionError):
        send(gw)
    gw.refuse_connections(False)
    assert gw.url == url
    assert requests.get(url + "/health", timeout=TIMEOUT).status_code == 200
    assert send(gw).status_code == 202


def test_refusing_cuts_a_request_in_flight(gw):
    gw.hang(5)
    errors = []

    def slow_send():
        try:
            send(gw, timeout=TIMEOUT)
        except requests.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=slow_send)
    client.start()
    deadline = time.monotonic() + 2
    while not gw.accepted():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gw.refuse_connections(True)
    client.join(TIMEOUT + 1)
    assert [type(e) for e in errors] == [requests.ConnectionError]
    gw.reset()
    assert requests.get(gw.url + "/health", timeout=TIMEOUT).status_code == 200


def test_lose_message_accepts_then_forgets(gw):
    gw.lose_message(PHONE)
    body = {"id": "gone", "textMessage": {"text": "x"}, "phoneNumbers": [PHONE]}
    assert send(gw, body).status_code == 202
    stays(gw, "gone", None)  # still unknown after it would have been Delivered
    assert gw.accepted() == []
    assert [(m["id"], m["phone"]) for m in gw.lost()] == [("gone", PHONE)]
    assert send(gw, body).status_code == 202  # the phone never stored it: the id is free
    wait_for_state(gw, "gone", "Delivered")


def test_stick_in_processed(gw):
    gw.stick_in_processed(PHONE)
    msg_id = send(gw).json()["id"]
    wait_for_state(gw, msg_id, "Processed")
    stays(gw, msg_id, "Processed")


def test_accepted_records_each_recipient_exactly_once(gw):
    send(gw, {"id": "a", "textMessage": {"text": "one"}, "phoneNumbers": [PHONE, OTHER]})
    send(gw, {"id": "b", "message": "two", "phoneNumbers": [OTHER]})
    send(gw, {"id": "a", "textMessage": {"text": "one"}, "phoneNumbers": [PHONE, OTHER]})
    send(gw, {"textMessage": {"text": "bad"}, "phoneNumbers": ["nope"]})
    assert [(m["id"], m["phone"], m["text"]) for m in gw.accepted()] == [
        ("a", PHONE, "one"),
        ("a", OTHER, "one"),
        ("b", OTHER, "two"),
    ]
    ats = [m["at"] for m in gw.accepted()]
    assert ats == sorted(ats)


def test_request_log(gw):
    send(gw, auth=None)
    msg_id = send(gw).json()["id"]
    get(gw, msg_id)
    requests.get(gw.url + "/_standin/requests", timeout=TIMEOUT)  # controls are not logged
    assert gw.request_log() == [
        ("POST", "/messages", 401),
        ("POST", "/messages", 202),
        ("GET", f"/messages/{msg_id}", 200),
    ]


def test_http_controls_for_other_processes(gw):
    def control(name, **args):
        response = requests.post(f"{gw.url}/_standin/{name}", json=args, timeout=TIMEOUT)
        assert response.status_code == 200, response.text

    control("fail_message", phone=PHONE, reason="RESULT_ERROR_NO_SERVICE")
    control("stick_in_processed", phone=OTHER)
    control("credentials", username="u", password="p")
    control("health", status="warn")
    assert requests.get(gw.url + "/health", timeout=TIMEOUT).json()["status"] == "warn"
    assert send(gw).status_code == 401
    first = send(gw, auth=("u", "p")).json()["id"]
    failed = wait_for_state(gw, first, "Failed", auth=("u", "p"))
    assert failed["recipients"][0]["error"] == "Send result: RESULT_ERROR_NO_SERVICE"
    stuck = send(gw, {"textMessage": {"text": "x"}, "phoneNumbers": [OTHER]}, auth=("u", "p"))
    assert stuck.status_code == 202

    listed = requests.get(gw.url + "/_standin/accepted", timeout=TIMEOUT).json()["accepted"]
    assert [m["phone"] for m in listed] == [PHONE, OTHER]
    logged = requests.get(gw.url + "/_standin/requests", timeout=TIMEOUT).json()["requests"]
    assert ["POST", "/messages", 401] in logged

    control("fail_with", status=503, body="down")
    assert requests.get(gw.url + "/health", timeout=TIMEOUT).status_code == 503
    control("fail_with", status=None)
    control("lose_message", phone=PHONE)
    control("hang", seconds=0)
    control("reset")
    assert send(gw).status_code == 202  # default credentials again, nothing lost
    assert requests.get(gw.url + "/_standin/lost", timeout=TIMEOUT).json()["lost"] == []
    bad = requests.post(gw.url + "/_standin/health", json={"status": "great"}, timeout=TIMEOUT)
    assert bad.status_code == 400


# --- receiving: the inbox, webhooks and their signature (tests/sms_standin/inbox.py) ----------
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers the statuses it is given, then 200."""

    def __init__(self, statuses=()):
        from werkzeug.serving import make_server

        self.statuses, self.calls = list(statuses), []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k[:5] == "HTTP_"
        }
        self.calls.append((body, headers))
        status = self.statuses.pop(0) if self.statuses else 200
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b""]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def register(gw, url, event="sms:received", **more):
    body = {"url": url, "event": event, **more}
    return requests.post(gw.url + "/webhooks", json=body, auth=AUTH, timeout=TIMEOUT)


def test_the_inbox_lists_received_sms_newest_first_as_the_app_does(gw):
    gw.inbox.receive(PHONE, "primeira", at=1795352400)
    gw.inbox.receive(OTHER, "second <b>", at=1795352460.7)
    response = requests.get(gw.url + "/inbox", params={"limit": 1}, auth=AUTH, timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["X-Total-Count"] == "2"
    (newest,) = response.json()
    assert newest["id"].startswith("text:") and newest["type"] == "SMS"
    assert (newest["sender"], newest["contentPreview"]) == (OTHER, "second <b>")
    assert newest["createdAt"] == "2026-11-22T10:01:00.000-03:00"  # whole seconds, phone's zone
    page2 = requests.get(gw.url + "/inbox?limit=1&offset=1", auth=AUTH, timeout=TIMEOUT).json()
    assert [m["contentPreview"] for m in page2] == ["primeira"]
    since = {"from": "2026-11-22T13:00:30.000Z"}
    later = requests.get(gw.url + "/inbox", params=since, auth=AUTH, timeout=TIMEOUT).json()
    assert [m["sender"] for m in later] == [OTHER]
    assert requests.get(gw.url + "/inbox", timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize(
    "params, message",
    [
        ({"limit": 0}, "limit must be between 1 and 500"),
        ({"limit": 501}, "limit must be between 1 and 500"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"from": "yesterday"}, "Invalid from datetime"),
        ({"to": "2026-11-22T10:00:00"}, "Invalid to datetime"),
        ({"type": "FAX"}, "Invalid type"),
        ({"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"}, "Start date"),
    ],
)
def test_the_inbox_refuses_a_bad_query_with_400(gw, params, message):
    response = requests.get(gw.url + "/inbox", params=params, auth=AUTH, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["message"].startswith(message)


def test_webhooks_are_registered_as_the_app_registers_them(gw):
    first = register(gw, "https://example.invalid/hook", id="ours")
    assert first.status_code == 201
    assert first.json() == {"id": "ours", "url": "https://example.invalid/hook",
                            "event": "sms:received", "source": "Local"}  # fmt: skip
    assert register(gw, "http://127.0.0.1:9/hook", id="ours").status_code == 201  # replaced
    assert register(gw, "https://example.invalid/other").json()["id"] != "ours"  # a new one
    listed = requests.get(gw.url + "/webhooks", auth=AUTH, timeout=TIMEOUT).json()
    assert sorted(h["url"] for h in listed) == [
        "http://127.0.0.1:9/hook",
        "https://example.invalid/other",
    ]
    for url in ("http://localhost:9/hook", "http://192.168.1.10/hook", "ftp://x"):
        refused = register(gw, url)
        assert refused.status_code == 400
        assert refused.json()["message"] == "url must start with https:// or http://127.0.0.1"
    assert register(gw, "https://example.invalid", event="sms:nope").status_code == 400
    gone = requests.delete(gw.url + "/webhooks/unknown", auth=AUTH, timeout=TIMEOUT)
    assert gone.status_code == 204


def test_a_received_sms_is_posted_signed_and_retried_with_the_same_event_id(gw, receiver):
    hook = receiver([500, 503])
    settings = {"webhooks": {"signing_key": "s1gn1ngK"}}
    assert requests.patch(gw.url + "/settings", json=settings, auth=AUTH, timeout=TIMEOUT).ok
    register(gw, hook.url, id="h1")
    gw.inbox.receive(PHONE, "Sim <pode> ligar", at=1795352400)
    until(lambda: len(hook.calls) == 3 and gw.inbox.idle())
    ids = set()
    for body, headers in hook.calls:
        assert headers["X-Signature"] == sign(body, "s1gn1ngK", headers["X-Timestamp"])
        event = json.loads(body)
        ids.add(event["id"])
    assert b"\\u003cpode\\u003e" in body  # Gson's HTML escaping: verify raw bytes, not a re-dump
    assert len(ids) == 1 and event["event"] == "sms:received" and event["webhookId"] == "h1"
    assert event["payload"] == {
        "message": "Sim <pode> ligar",
        "receivedAt": "2026-11-22T10:00:00.000-03:00",
        "messageId": event["payload"]["messageId"],
        "sender": PHONE,
        "simNumber": 1,
        "phoneNumber": PHONE,
    }
    assert [a["status"] for a in gw.inbox.attempts] == [500, 503, 200]


def test_retries_are_bounded_by_the_retry_count_setting(gw, receiver):
    hook = receiver([500] * 10)
    patch = {"webhooks": {"retry_count": 3}}
    assert requests.patch(gw.url + "/settings", json=patch, auth=AUTH, timeout=TIMEOUT).ok
    register(gw, hook.url)
    gw.inbox.receive(PHONE, "x")
    until(lambda: len(gw.inbox.attempts) == 3 and gw.inbox.idle())
    assert len(hook.calls) == 3
    shown = requests.get(gw.url + "/settings", auth=AUTH, timeout=TIMEOUT).json()
    assert shown == {"webhooks": {"internet_required": True, "retry_count": 3}}  # no key shown
    zero = {"webhooks": {"retry_count": 0}}
    assert (
        requests.patch(gw.url + "/settings", json=zero, auth=AUTH, timeout=TIMEOUT).status_code
        == 400
    )


def test_receive_is_a_control_for_tests_in_other_processes(gw, receiver):
    hook = receiver()
    register(gw, hook.url)
    sms = {"phone": PHONE, "text": "oi", "at": 1795352400}
    made = requests.post(gw.url + "/_standin/receive", json=sms, timeout=TIMEOUT).json()
    assert len(made["events"]) == 1
    until(
        lambda: requests.get(gw.url + "/_standin/webhook_attempts", timeout=TIMEOUT).json()["idle"]
    )
    attempts = requests.get(gw.url + "/_standin/webhook_attempts", timeout=TIMEOUT).json()
    assert [a["event"] for a in attempts["attempts"]] == made["events"]
