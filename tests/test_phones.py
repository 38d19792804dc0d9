"""normalize_phone: every way a person or a spreadsheet writes a number, and the bad ones."""

import math

import pytest

from utils.phones import InvalidPhone, is_known_region, normalize_phone

BR_MOBILE = "+5511912345678"


@pytest.mark.parametrize(
    "raw",
    [
        "+55 11 91234-5678",
        "+55 (11) 91234-5678",
        "+55.11.91234.5678",
        "+55/11/91234/5678",
        "0055 11 91234 5678",
        "00 55 (11) 9 1234-5678",
        "+55\u00a011\u00a091234\u20115678",  # NBSP and a non-breaking hyphen
        "\u202a+55 11 91234-5678\u202c",  # direction marks copied from RTL text
        "  +5511912345678  ",
    ],
)
def test_separators_and_international_prefix_need_no_default_country(raw):
    assert normalize_phone(raw, None) == BR_MOBILE


def test_the_same_number_written_three_ways_is_one_e164_number():
    ways = ["+55 (11) 91234-5678", "0055.11.91234.5678", "(11) 91234 5678"]
    assert {normalize_phone(w, "BR") for w in ways} == {BR_MOBILE}


@pytest.mark.parametrize(
    "raw",
    [
        5511912345678.0,
        5.511912345678e12,
        5511912345678,
        "5511912345678.0",
        "5.511912345678E+12",
    ],
)
def test_spreadsheet_numbers_lose_float_artefacts(raw):
    assert normalize_phone(raw, "BR") == BR_MOBILE


def test_default_country_fills_in_a_national_number():
    assert normalize_phone("(11) 91234-5678", "BR") == BR_MOBILE
    assert normalize_phone("011 91234-5678", "br") == BR_MOBILE
    assert normalize_phone("(415) 555-0101", "US") == "+14155550101"


def test_international_digits_whose_plus_was_lost_are_tried_with_a_plus():
    assert normalize_phone("14155550101", "BR") == "+14155550101"
    assert normalize_phone(919876543210.0, "BR") == "+919876543210"


def test_plus_numbers_ignore_the_default_country():
    assert normalize_phone("+1 415 555 0101", "BR") == "+14155550101"
    assert normalize_phone("0091 98765 43210", "US") == "+919876543210"


@pytest.mark.parametrize("country", [None, ""])
def test_without_default_country_a_number_without_plus_is_rejected(country):
    with pytest.raises(InvalidPhone) as info:
        normalize_phone("11 91234-5678", country)
    assert info.value.message == "number has no +country code and DEFAULT_COUNTRY is not set"
    assert info.value.reason == "invalid_phone"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("+55 11 9123", "number is too short"),
        ("123", "number is too short"),
        ("+55 11 91234-5678 9012", "number is too long"),
        ("+55 11 91234-5678 9012 3456 7890", "number is too long"),
        ("12ab", "number contains letters"),
        ("+1 800 FLOWERS", "number contains letters"),
        ("+55 11 91234-5678 ext 2", "number contains letters"),
        ("+999 1234 5678", "number has an unknown country code"),
        ("", "number is empty"),
        ("  - ", "number is empty"),
        (None, "number is empty"),
        ("+55 11 91234#5678", "number contains an unexpected character '#'"),
        ("+55 11 +91234-5678", "number contains an unexpected character '+'"),
        (5.5, "number is not a whole number"),
        (math.nan, "number is not a whole number"),
        (True, "number must be text"),
        (
            "5.51191E+12",
            "number was rounded by a spreadsheet (scientific notation); format the column as text",
        ),
    ],
)
def test_bad_numbers_are_rejected_with_a_reason(raw, message):
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, "BR")
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.reason == "invalid_phone"


def test_invalid_phone_is_a_value_error():
    assert issubclass(InvalidPhone, ValueError)


def test_a_very_long_input_is_refused_before_parsing():
    with pytest.raises(InvalidPhone, match="too long"):
        normalize_phone("1" * 10_000, "BR")


@pytest.mark.parametrize(
    "code, known",
    [
        ("BR", True),
        ("in", True),
        (" us ", True),
        ("GB", True),
        ("XX", False),
        ("", False),
        ("001", False),
        ("BRA", False),
        (None, False),
        (55, False),
    ],
)
def test_is_known_region(code, known):
    assert is_known_region(code) is known


def test_the_ascii_fast_path_agrees_with_the_careful_path():
    """`_clean` skips the per-character walk for ASCII text; both must give the same verdict."""
    import random

    from utils.phones import _clean, _clean_carefully

    def verdict(fn, text):
        try:
            return fn(text)
        except InvalidPhone as exc:
            return ("refused", exc.message)

    rng = random.Random(7)
    alphabet = "0123456789" * 3 + "+ -.()/[]\\\t" + "abX#*,;_"
    samples = [
        "",
        "+",
        "00",
        "+0044",
        "(+55) 11 91234-5678",
        "0044 20 7946 0958",
        "+55 (11) 9.1234-5678",
        "++5511912345678",
        "5511912345678+",
        "1-800-FLOWERS",
        "9" * 18,
        "00" + "9" * 17,
    ]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(5_000)
    ]
    for text in samples:
        assert verdict(_clean, text) == verdict(_clean_carefully, text), text


def _mangled_examples(rng, count):
    """(raw, DEFAULT_COUNTRY) pairs from phonenumbers' own example numbers of every region and
    type, changed the ways people and spreadsheets change them, valid or not."""
    import phonenumbers
    from phonenumbers import PhoneNumberType as Type

    types = (
        Type.FIXED_LINE,
        Type.MOBILE,
        Type.TOLL_FREE,
        Type.PREMIUM_RATE,
        Type.SHARED_COST,
        Type.VOIP,
        Type.PERSONAL_NUMBER,
        Type.PAGER,
        Type.UAN,
        Type.VOICEMAIL,
    )
    examples = [
        (region, phonenumbers.example_number_for_type(region, kind))
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in types
    ]
    examples += [
        (None, phonenumbers.example_number_for_non_geo_entity(code))
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    ]
    examples = [(region, number) for region, number in examples if number is not None]
    # Regions with an IDD or trunk prefix of their own ("011", "0011", "8"), or rules that
    # rewrite a national number (AR, MX), given as DEFAULT_COUNTRY to other regions' numbers;
    # and "ZZ", which phonenumbers does not know.
    defaults = ["BR", "US", "IN", "DE", "IT", "GB", "FR", "AR", "MX", "RU", "AU", "JP", "SM", "ZZ"]
    digit = "0123456789"
    pairs = []
    while len(pairs) < count:
        region, number = rng.choice(examples)
        nsn = phonenumbers.national_significant_number(number)
        roll = rng.random()
        if roll < 0.35:  # another subscriber on the same range: most stay valid
            keep = rng.randint(max(1, len(nsn) - 5), len(nsn))
            nsn = nsn[:keep] + "".join(rng.choice(digit) for _ in range(len(nsn) - keep))
        elif roll < 0.45:  # one digit too few or too many
            at = rng.randrange(len(nsn))
            nsn = nsn[:at] + nsn[at + 1 :] if rng.random() < 0.5 else nsn[:at] + "7" + nsn[at:]
        elif roll < 0.55:  # a trunk prefix or leading zeros left in
            nsn = rng.choice(["0", "00", "000", "1", "8", "9", "90", "015"]) + nsn
        elif roll < 0.6:  # junk of any length
            nsn = "".join(rng.choice(digit) for _ in range(rng.randint(0, 18)))
        code = str(number.country_code)
        style = rng.random()
        if style < 0.45:
            digits, default = "+" + code + nsn, rng.choice([None, region, rng.choice(defaults)])
        elif style < 0.55:  # the "+" or "00" lost in a spreadsheet
            digits, default = rng.choice(["", "00", "011"]) + code + nsn, rng.choice(defaults)
        else:
            digits = nsn
            default = region if region and rng.random() < 0.6 else rng.choice(defaults)
        cut = rng.randint(1, 4) if len(digits) > 6 else 0
        raw = digits[:cut] + rng.choice(["", " ", "-", " (", ".", "\u00a0"]) + digits[cut:]
        pairs.append((rng.choice([raw, digits]), default))
    return pairs


def test_the_phone_fast_path_agrees_with_plain_phonenumbers_parse():
    """`_parse_digits` and `_is_valid` skip phonenumbers' text scanning and repeated pattern
    matching; on 50,000 mangled example numbers every verdict must be parse's verdict."""
    import random

    import phonenumbers

    from utils.phone_fast import is_valid as _is_valid
    from utils.phone_fast import parse_digits as _parse_digits
    from utils.phones import _POSSIBLE_MESSAGES, _clean, _parse, _parse_valid

    def plain(number):
        """The verdict of phonenumbers.parse's number through plain is_valid_number."""
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        reason = phonenumbers.is_possible_number_with_reason(number)
        return ("refused", _POSSIBLE_MESSAGES.get(reason, "number is not valid"))

    def verdict(fn, *args):
        try:
            return fn(*args)
        except InvalidPhone as exc:
            return ("refused", exc.message)

    rng = random.Random(11)
    fast_taken = valid = 0
    for raw, default in _mangled_examples(rng, 50_000):
        try:
            plus, digits = _clean(raw)
        except InvalidPhone:
            continue  # refused before phonenumbers sees it, as normalize_phone does
        # What normalize_phone hands to phonenumbers: "+digits", or national digits and then
        # "+digits" again when the national reading is not valid.
        texts = [("+" + digits, None)] if plus else [(digits, default), ("+" + digits, None)]
        for text, region in texts:
            parsed = verdict(_parse, text, region)  # a PhoneNumber, or ("refused", why)
            fast = _parse_digits(text, region)
            if fast is not None:  # same fields, so every later verdict is the same too
                fast_taken += 1
                assert fast == parsed, (text, region)
            if isinstance(parsed, tuple):
                expected = parsed
            else:
                assert _is_valid(parsed) == phonenumbers.is_valid_number(parsed), (text, region)
                expected = plain(parsed)
            assert verdict(_parse_valid, text, region) == expected, (text, region)
            valid += isinstance(expected, str)
    # The comparison means something only if both paths and both verdicts were exercised.
    assert fast_taken > 40_000 and valid > 20_000, (fast_taken, valid)
