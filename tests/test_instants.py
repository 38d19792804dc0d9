"""The phone's times, read in one place (utils/instants.py) by the webhook and the inbox sweep."""

from __future__ import annotations

import pytest

from utils.instants import InstantError, parse_instant
from worker.sms.inbound import _inbound

AT_EPOCH = 1795352400.0  # 2026-11-22T13:00:00Z


@pytest.mark.parametrize(
    "text",
    ["2026-11-22T10:00:00.000-03:00", "2026-11-22T13:00:00Z", "2026-11-22T13:00:00+00:00"],
)
def test_an_iso_time_with_its_offset_is_seconds_since_the_epoch(text):
    assert parse_instant(text) == AT_EPOCH


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-11-22T10:00:00", "must carry its UTC offset"),
        ("yesterday", "must be an ISO 8601 time"),
        (1795352400, "must be an ISO 8601 time"),
        (None, "must be an ISO 8601 time"),
        ("2026-11-22T13:00:00Z" + " " * 30, "must be an ISO 8601 time"),
    ],
)
def test_anything_else_is_refused_saying_why(value, why):
    with pytest.raises(InstantError, match=why):
        parse_instant(value)


def test_the_webhook_and_the_inbox_read_the_same_times_alike():
    entry = {"sender": "+5511912345678", "contentPreview": "oi", "id": "text:1"}
    assert _inbound(entry | {"createdAt": "2026-11-22T10:00:00.000-03:00"}).received_at == AT_EPOCH
    assert _inbound(entry | {"createdAt": "2026-11-22T10:00:00.000"}) is None  # no offset


def test_the_webhook_says_what_is_wrong_with_received_at(client, app):
    import json
    import time

    from tests.sms_standin.inbox import sign

    app.config["SETTINGS"] = app.config["SETTINGS"].replace(sms_webhook_signing_key="k3yK3yK3")
    for at, detail in [
        ("2026-11-22T10:00:00", "payload.receivedAt must carry its UTC offset."),
        ("soon", "payload.receivedAt must be an ISO 8601 time."),
    ]:
        payload = {"message": "oi", "receivedAt": at, "sender": "+5511912345678"}
        body = json.dumps({"event": "sms:received", "payload": payload}).encode()
        stamp = str(int(time.time()))
        headers = {"X-Timestamp": stamp, "X-Signature": sign(body, "k3yK3yK3", stamp)}
        response = client.post("/hooks/smsgate", data=body, headers=headers)
        assert (response.status_code, response.get_json()["detail"]) == (422, detail)
