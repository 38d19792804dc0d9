"""A recipient's zone from their number: what phonenumbers says when it says exactly one."""

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from utils.zones import _LEGACY, is_known_zone, zone_for

NEW_YORK = "America/New_York"


def usable(name: str) -> str | None:
    """A zone name as zone_for gives it: itself, or where zoneinfo lacks it, its canonical."""
    return name if is_known_zone(name) else _LEGACY.get(name)


def phonenumbers_zone(e164: str) -> str | None:
    """The reference: time_zones_for_number on the parsed number, when it names one zone."""
    zones = time_zones_for_number(phonenumbers.parse(e164))
    return usable(zones[0]) if len(zones) == 1 else None


@pytest.mark.parametrize(
    "e164, zone",
    [
        ("+5511912345678", "America/Sao_Paulo"),  # mobile; Brazil's mobiles are geographic
        ("+551133334444", "America/Sao_Paulo"),
        ("+12125551234", NEW_YORK),
        ("+14165551234", "America/Toronto"),
        ("+4915112345678", "Europe/Berlin"),  # Germany has one zone: mobiles too
        ("+493012345678", "Europe/Berlin"),
        ("+442071234567", "Europe/London"),
        ("+61892345678", None),  # Perth's area code also holds Adelaide numbers
        ("+74951234567", "Europe/Moscow"),
        ("+74232123456", "Asia/Vladivostok"),
        ("+525512345678", "America/Mexico_City"),
        ("+2348031234567", "Africa/Lagos"),
        ("+351296123456", "Atlantic/Azores"),
        ("+34922123456", "Atlantic/Canary"),
        ("+34912345678", "Europe/Madrid"),
        ("+18769261234", "America/Jamaica"),
        ("5511912345678", "America/Sao_Paulo"),  # the "+" is optional
    ],
)
def test_zone_for_names_the_one_zone(e164, zone):
    assert zone_for(e164) == zone


def test_zone_for_keeps_phonenumbers_names_zoneinfo_can_load():
    assert zone_for("+919812345678") == usable("Asia/Calcutta")
    assert is_known_zone(zone_for("+919812345678") or "")


@pytest.mark.parametrize(
    "e164",
    [
        "+447912345678",  # UK mobile: London, Guernsey, Isle of Man, Jersey
        "+61412345678",  # Australian mobile: eight zones
        "+351912345678",  # Portuguese mobile: Lisbon or the Azores
        "+34612345678",  # Spanish mobile: Madrid or the Canaries
        "+64211234567",  # New Zealand mobile: Auckland or the Chathams
        "+18002345678",  # toll-free: all of +1
        "+18762674732",  # a Jamaican mobile: phonenumbers calls +1 mobiles non-geographic
    ],
)
def test_zone_for_gives_none_where_phonenumbers_gives_several(e164):
    assert len(time_zones_for_number(phonenumbers.parse(e164))) > 1
    assert zone_for(e164) is None


def test_a_russian_mobile_is_not_put_in_moscow_by_its_prefix():
    # The prefix table files every +79 number under Moscow, but Russian mobiles are
    # non-geographic to phonenumbers, which then answers with all sixteen of Russia's and
    # Kazakhstan's zones. This Primorye number is seven hours from Moscow.
    assert TIMEZONE_DATA["79"] == ("Europe/Moscow",)
    assert zone_for("+79146230173") is None


@pytest.mark.parametrize("text", ["", "+", "+999", "+0123", "+1", "+55abc"])
def test_zone_for_gives_none_for_what_is_no_number(text):
    assert zone_for(text) is None


# -- agreement with phonenumbers on sampled numbers -----------------------------------------

REGIONS = ["BR", "US", "IN", "DE", "GB", "AU", "RU", "MX", "NG", "PT", "ES"]
MORE = ["CA", "JM", "IT", "NZ", "KZ", "ID", "AR", "FR", "CN", "CL"]


def sample_numbers(region: str, rng: random.Random) -> dict[str, list[str]]:
    """Valid numbers of `region` by type: varied examples, and one under each prefix key."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None and metadata.general_desc is not None
    code = str(metadata.country_code)
    found: dict[str, list[str]] = {"mobile": [], "fixed": [], "by prefix": []}

    def keep(e164: str, into: str) -> bool:
        number = phonenumbers.parse(e164)
        ok = phonenumbers.is_valid_number(number)
        ok = ok and phonenumbers.region_code_for_number(number) == region
        if ok:
            found[into].append(e164)
        return ok

    for kind, name in ((PhoneNumberType.MOBILE, "mobile"), (PhoneNumberType.FIXED_LINE, "fixed")):
        example = phonenumbers.example_number_for_type(region, kind)
        assert example is not None
        national = phonenumbers.national_significant_number(example)
        for _ in range(400):
            if len(found[name]) >= 25:
                break
            kept = rng.randint(1, max(1, len(national) - 3))
            tail = "".join(rng.choice("0123456789") for _ in national[kept:])
            keep(f"+{code}{national[:kept]}{tail}", name)
    lengths = list(metadata.general_desc.possible_length)
    keys = sorted(k for k in TIMEZONE_DATA if k.startswith(code) and len(k) > len(code))
    for key in rng.sample(keys, min(len(keys), 150)):
        for _ in range(20):
            length = rng.choice(lengths) - (len(key) - len(code))
            tail = "".join(rng.choice("0123456789") for _ in range(max(length, 0)))
            if length > 0 and keep(f"+{key}{tail}", "by prefix"):
                break
    return found


@pytest.mark.parametrize("region", REGIONS + MORE)
def test_zone_for_agrees_with_phonenumbers(region):
    found = sample_numbers(region, random.Random(region))
    assert len(found["mobile"]) >= 10 and len(found["fixed"]) >= 10, found
    numbers = found["mobile"] + found["fixed"] + found["by prefix"]
    wrong = [(n, zone_for(n), phonenumbers_zone(n)) for n in numbers]
    assert [w for w in wrong if w[1] != w[2]] == []


def test_numbers_sharing_their_first_nine_digits_keep_their_own_answers():
    # The memo is per 9-digit head; the answer hanging on the number's type is not memoised.
    for e164 in ["+18762674732", "+18769261234", "+18762674733"]:
        assert zone_for(e164) == phonenumbers_zone(e164)
    assert zone_for("+5511912345678") == zone_for("+5511912345679") == "America/Sao_Paulo"


# -- zone names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["America/Sao_Paulo", "UTC", "Asia/Kolkata", "Australia/Lord_Howe", NEW_YORK]
)
def test_known_zones(name):
    assert is_known_zone(name)


@pytest.mark.parametrize(
    "name",
    [
        "Etc/Unknown",
        "",
        " ",
        "Mars/Olympus_Mons",
        "America",
        "America/",
        "../etc/passwd",
        "/etc/localtime",
        "zone.tab",
        "America/New_York ",
    ],
)
def test_unknown_zones(name):
    assert not is_known_zone(name)


def test_every_zone_phonenumbers_names_can_be_used():
    names = {zone for zones in TIMEZONE_DATA.values() for zone in zones} - {"Etc/Unknown"}
    assert [name for name in names if usable(name) is None] == []


@pytest.mark.parametrize("legacy, canonical", sorted(_LEGACY.items()))
def test_each_legacy_name_maps_to_a_zone_with_the_same_clock(legacy, canonical):
    assert is_known_zone(canonical)
    if not is_known_zone(legacy):
        pytest.skip(f"{legacy} is not installed here")
    old, new = ZoneInfo(legacy), ZoneInfo(canonical)
    months = [
        datetime(year, month, 1, tzinfo=UTC) for year in range(2010, 2031) for month in (1, 7)
    ]
    assert [m.astimezone(old).utcoffset() for m in months] == [
        m.astimezone(new).utcoffset() for m in months
    ]
