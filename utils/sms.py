"""How many SMS parts a text costs: GSM-7 (160, or 153 a part) or UCS-2 (70, or 67 a part).

Carriers bill and Android rate-limits by part, so the count is shown before a job starts.
"""

from __future__ import annotations

# The GSM 03.38 default alphabet, and the extension table whose characters take two septets.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_encoding(text: str) -> str:
    """`gsm7` when every character fits the GSM alphabet, else `ucs2`."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "ucs2"


def sms_length(text: str) -> int:
    """Length in the units parts are counted in: septets for GSM-7, UTF-16 code units for UCS-2."""
    if sms_encoding(text) == "gsm7":
        return sum(2 if c in GSM7_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2  # an emoji outside the BMP takes two units


def sms_parts(text: str) -> int:
    """Number of SMS parts the text is sent as (0 for an empty text)."""
    length = sms_length(text)
    if length == 0:
        return 0
    single, multi = (160, 153) if sms_encoding(text) == "gsm7" else (70, 67)
    return 1 if length <= single else -(-length // multi)
