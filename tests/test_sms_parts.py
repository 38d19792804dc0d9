"""SMS part counting, at the edges where carriers split a text."""

from __future__ import annotations

import pytest

from utils.sms import sms_encoding, sms_length, sms_parts


@pytest.mark.parametrize(
    "text, encoding, parts",
    [
        ("", "gsm7", 0),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # two septets each: exactly 160
        ("€" * 81, "gsm7", 2),
        ("Olá, José! Açaí", "ucs2", 1),  # á and í are not in GSM-7 (é is)
        ("ç" * 70, "ucs2", 1),
        ("ç" * 71, "ucs2", 2),
        ("😀" * 35, "ucs2", 1),  # 70 UTF-16 units
        ("😀" * 36, "ucs2", 2),
        ("مرحبا" * 14, "ucs2", 1),
        ("مرحبا" * 15, "ucs2", 2),
    ],
)
def test_parts(text, encoding, parts):
    assert sms_encoding(text) == encoding
    assert sms_parts(text) == parts


def test_length_counts_extension_characters_twice():
    assert sms_length("[x]") == 5


def test_sms_job_status_shows_its_part_count(client, auth):
    body = {
        "message": "Olá {name}! " + "x" * 70,
        "channel": "sms",
        "contacts": [
            {"phone": "+5511912345678", "name": "Ana"},
            {"phone": "+5511912345679", "name": "Bartolomeu"},
        ],
    }
    response = client.post("/send", json=body, headers=auth)
    assert response.status_code == 202
    assert response.get_json()["sms_parts"] == 2  # UCS-2 (á): 82 and 89 units, 67 a part
    whatsapp = client.post(
        "/send", json={"message": "hi", "numbers": ["+5511912345670"]}, headers=auth
    ).get_json()
    assert "sms_parts" not in whatsapp
