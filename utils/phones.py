"""Turn phone numbers as people type them (or as spreadsheets store them) into E.164.

Every number that reaches the queue went through ``normalize_phone``: one spelling per
recipient is what makes duplicate detection after normalising possible.
"""

import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation

import phonenumbers
from phonenumbers import PhoneNumber

from .phone_fast import is_valid as _is_valid
from .phone_fast import parse_digits as _parse_digits

# Separators people put inside numbers. Dashes cover the Unicode look-alikes that word
# processors and spreadsheets substitute for "-".
_SEPARATORS = set(
    " \t\r\n-./()[]\\"
    "\u00a0\u2007\u202f\u2009\u200a\u3000"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
)
# An integral float written out by a spreadsheet or pandas ("5511912345678.0"): without
# this rule the dot would be taken as a separator and the ".0" would add a digit.
_FLOAT_TEXT = re.compile(r"\+?\d+\.0+")
# Scientific notation as a spreadsheet writes big numbers ("5.511912345678E+12").
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE]\+?\d{1,2}")
# E.164 allows 15 digits; a little slack lets a trunk "0" through to phonenumbers,
# which then gives the precise verdict.
_MAX_DIGITS = 17
_MAX_INPUT = 100
# Nearly every number in a real list is plain ASCII: digits, maybe a leading "+", and
# spaces, dashes, dots or brackets. Deleting those in one C call is the fast path.
_ASCII_SEPARATORS = str.maketrans("", "", "".join(c for c in _SEPARATORS if c.isascii()))


class InvalidPhone(ValueError):
    """A number that cannot be turned into a valid E.164 number."""

    def __init__(self, message: str, reason: str = "invalid_phone"):
        super().__init__(message)
        self.message = message
        self.reason = reason


def normalize_phone(raw, default_country: str | None) -> str:
    """Return ``raw`` as an E.164 string such as "+5511912345678", or raise InvalidPhone."""
    text = _as_text(raw)
    plus, digits = _clean(text)
    region = (default_country or "").strip().upper() or None
    if plus:
        return _parse_valid("+" + digits, None)
    if region is None:
        raise InvalidPhone("number has no +country code and DEFAULT_COUNTRY is not set")
    try:
        return _parse_valid(digits, region)
    except InvalidPhone:
        # A "+" lost in a spreadsheet leaves international digits behind; give them a
        # second chance before rejecting the number.
        try:
            return _parse_valid("+" + digits, None)
        except InvalidPhone:
            pass
        raise


def is_known_region(code: str) -> bool:
    """Whether ``code`` (e.g. "BR", "in") is an ISO region phonenumbers can parse for."""
    if not isinstance(code, str):
        return False
    return code.strip().upper() in phonenumbers.SUPPORTED_REGIONS


def _as_text(raw) -> str:
    """Give the text of a str, int or float; floats from spreadsheets lose their ".0"."""
    # bool is an int subclass; True is not a phone number.
    if isinstance(raw, bool) or raw is None:
        raise InvalidPhone("number is empty" if raw is None else "number must be text")
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw) or not raw.is_integer():
            raise InvalidPhone("number is not a whole number")
        # int() avoids "5.511912345678e+12" and "5511912345678.0" artefacts.
        return str(int(raw))
    if not isinstance(raw, str):
        raise InvalidPhone("number must be text")
    text = raw.strip()
    if _FLOAT_TEXT.fullmatch(text):
        return text.split(".", 1)[0]
    if _SCIENTIFIC.fullmatch(text):
        return _from_scientific(text)
    return text


def _from_scientific(text: str) -> str:
    """Expand "5.511912345678E+12", refusing a rounded mantissa that lost digits."""
    mantissa, exponent = re.split("[eE]", text)
    shown = len(mantissa.replace(".", ""))
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        raise InvalidPhone("number is not valid") from None
    # "5.51191E+12" means the spreadsheet kept 6 digits of 13: guessing the rest would
    # message a stranger, so refuse and say how to fix it.
    if shown < int(exponent.lstrip("+")) + 1 or value != value.to_integral_value():
        raise InvalidPhone(
            "number was rounded by a spreadsheet (scientific notation); format the column as text"
        )
    return str(int(value))


def _clean(text: str) -> tuple[bool, str]:
    """Split text into (had a leading +, ASCII digits), rejecting anything else."""
    if len(text) > _MAX_INPUT:
        raise InvalidPhone("number is too long")
    if text.isascii():
        plus = text.startswith("+")
        number = (text[1:] if plus else text).translate(_ASCII_SEPARATORS)
        if number.isdigit():
            return _checked(plus, number)
    # Anything else (Unicode digits or dashes, a "+" after a bracket, a letter) takes the
    # careful way, which also says what exactly is wrong.
    return _clean_carefully(text)


def _clean_carefully(text: str) -> tuple[bool, str]:
    """`_clean` one character at a time: any script's digits, Unicode dashes and spaces."""
    digits: list[str] = []
    plus = False
    for ch in text:
        if ch in _SEPARATORS or unicodedata.category(ch) == "Cf":
            continue  # Cf: invisible direction marks copied along with RTL text
        if ch.isalpha():
            # phonenumbers would quietly turn "1-800-FLOWERS" letters into digits.
            raise InvalidPhone("number contains letters")
        if ch in "+\uff0b" and not digits and not plus:
            plus = True
        elif unicodedata.decimal(ch, None) is not None:
            digits.append(str(unicodedata.decimal(ch)))
        else:
            raise InvalidPhone(f"number contains an unexpected character {ch!r}")
    number = "".join(digits)
    if not number:
        raise InvalidPhone("number is empty")
    return _checked(plus, number)


def _checked(plus: bool, number: str) -> tuple[bool, str]:
    """Turn a leading "00" into "+" and refuse more digits than any number has."""
    if not plus and number.startswith("00"):
        plus, number = True, number[2:]  # "00" is the international call prefix
    if len(number) > _MAX_DIGITS:
        raise InvalidPhone("number is too long")
    return plus, number


def _parse_valid(text: str, region: str | None) -> str:
    """Parse with phonenumbers and return E.164 if the number is valid."""
    number = _parse_digits(text, region)
    if number is None:
        number = _parse(text, region)
    return _e164_if_valid(number)


def _parse(text: str, region: str | None) -> PhoneNumber:
    """phonenumbers.parse, its errors turned into InvalidPhone."""
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(_PARSE_MESSAGES.get(exc.error_type, "number is not valid")) from None


def _e164_if_valid(number: PhoneNumber) -> str:
    """E.164 for a valid number; otherwise InvalidPhone saying why it is not possible."""
    if _is_valid(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    reason = phonenumbers.is_possible_number_with_reason(number)
    raise InvalidPhone(_POSSIBLE_MESSAGES.get(reason, "number is not valid"))


_PARSE_MESSAGES = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "number has an unknown country code",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "number is too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "number is too short",
    phonenumbers.NumberParseException.TOO_LONG: "number is too long",
}
_POSSIBLE_MESSAGES = {
    phonenumbers.ValidationResult.TOO_SHORT: "number is too short",
    phonenumbers.ValidationResult.TOO_LONG: "number is too long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "number has an unknown country code",
    phonenumbers.ValidationResult.INVALID_LENGTH: "number has the wrong length for its country",
}
