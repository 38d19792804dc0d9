"""A recipient's time zone from their number, and whether a zone name is one we can use.

`zone_for` runs once per recipient at upload (100,000 of them at a time), so it reads
phonenumbers' prefix table directly instead of parsing the number for every recipient.
"""

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberType,
    number_type,
)

# Private helpers of time_zones_for_number and parse. Calling them follows phonenumbers'
# rules rather than copying them; tests/test_zones.py fails if a release changes them.
from phonenumbers.phonenumberutil import (
    _set_italian_leading_zeros_for_phone_number,
    is_number_type_geographical,
)
from phonenumbers.timezone import UNKNOWN_TIMEZONE, _country_level_time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

# Old spellings phonenumbers still uses, with the canonical zone each is a link to in tzdata
# 2025b. Debian 13 and Ubuntu 24.04 moved many old links to a separate package
# (tzdata-legacy), so such a name may not load; only then is it mapped (see `_usable`).
_LEGACY = {
    "Africa/Asmera": "Africa/Nairobi",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "America/Kralendijk": "America/Puerto_Rico",
    "America/Lower_Princes": "America/Puerto_Rico",
    "Arctic/Longyearbyen": "Europe/Berlin",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Choibalsan": "Asia/Ulaanbaatar",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Europe/Bratislava": "Europe/Prague",
    "Europe/Mariehamn": "Europe/Helsinki",
    "Europe/Podgorica": "Europe/Belgrade",
    "Europe/San_Marino": "Europe/Rome",
    "Europe/Vatican": "Europe/Rome",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Ponape": "Pacific/Guadalcanal",
    "Pacific/Truk": "Pacific/Port_Moresby",
}

_COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def _longest_keys() -> dict[str, int]:
    """For each first digit pair, the longest TIMEZONE_DATA prefix starting with it: India's
    table stops at 2 digits, so its numbers share one memo entry instead of one each."""
    longest: dict[str, int] = {}
    for prefix in TIMEZONE_DATA:
        longest[prefix[:2]] = max(longest.get(prefix[:2], 0), len(prefix))
    return longest


_LONGEST_KEY = _longest_keys()


class _Head(NamedTuple):
    """What all numbers starting with some digits share: their zone by each of the rules."""

    geographic: str | None  # the longest prefix's zone, for fixed lines (and some mobiles)
    other: str | None  # the whole country's zone, for every other type
    country_code: int


def zone_for(e164: str) -> str | None:
    """The IANA zone of a valid E.164 number when phonenumbers knows exactly one, else None.

    Gives what `time_zones_for_number(parse(e164))` does, reduced to one zone. That looks
    the number's longest prefix up in TIMEZONE_DATA, unless the number's type is not
    geographic (mobile outside Brazil, Mexico, Argentina, Indonesia and China; toll-free;
    ...), when it takes the zones of the whole country instead. Both lookups are memoised on
    the first 9 digits: ~0.3 µs a call once those were seen, ~3.5 µs before. Only where the
    two rules disagree (countries spanning several zones: the US, Brazil, Russia, Mexico,
    Australia, ...) does the number's type decide, at one `number_type` call: ~4-9 µs, about
    what normalize_phone costs. (Measured on a busy 2-core machine.) The prefix alone would
    put every Russian mobile in Moscow, every Australian one in Sydney.
    """
    digits = e164[1:] if e164[:1] == "+" else e164
    head = _zones_for_head(digits[: _LONGEST_KEY.get(digits[:2], TIMEZONE_LONGEST_PREFIX)])
    if head.geographic == head.other:
        return head.geographic
    # A number's type follows from its length and its first national digits (operator and
    # area codes; on the +1 islands the exchange too): memoised on those, a list of 100,000
    # numbers costs a few type checks, not 100,000 (2.7 s for US numbers, 4.9 s for
    # Australian ones before). The memo keeps the type's rule, never a zone.
    code = head.country_code
    key = (digits[: len(str(code)) + _type_digits(code, digits)], len(digits))
    rule = _RULE_BY_TYPE.get(key)
    if rule is None:
        if len(_RULE_BY_TYPE) >= 1 << 14:  # bounded like the caches above
            _RULE_BY_TYPE.clear()
        rule = _RULE_BY_TYPE[key] = _rule_by_type(digits, head)
    if rule == "invalid":
        return None
    return head.geographic if rule == "geographic" else head.other


def is_known_zone(name: str) -> bool:
    """Whether zoneinfo can load `name` ("America/Sao_Paulo", "UTC"; not "Etc/Unknown")."""
    try:
        ZoneInfo(name)
    # ValueError: "../x", "", not a TZif file. OSError: with the tzdata package installed,
    # a folder of it ("America") is opened as a file and fails as one.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# Bounded: distinct 9-digit heads can be as many as recipients; 16,384 of them take ~3.5 MB.
@functools.lru_cache(maxsize=1 << 14)
def _zones_for_head(head: str) -> _Head:
    geographic = _one_zone(_longest_prefix_zones(head))
    code = _country_code(head)
    if code is None:
        return _Head(geographic, geographic, 0)
    whole_country = _country_level_time_zones_for_number(PhoneNumber(country_code=code))
    return _Head(geographic, _one_zone(whole_country), code)


TYPE_DIGITS = 4


def _type_digits(code: int, digits: str) -> int:
    """How many national digits decide a number's type. In the +1 countries an area code
    of the US or Canada has the same pattern for fixed and mobile lines, so it decides;
    the islands' area codes (Jamaica's 876, ...) tell mobiles by the exchange too."""
    if code != 1:
        return TYPE_DIGITS
    return 6 if digits[1:4] in _ISLAND_AREA_CODES else 3


def _island_area_codes() -> frozenset[str]:
    codes: set[str] = set()
    for region in COUNTRY_CODE_TO_REGION_CODE[1]:
        metadata = PhoneMetadata.metadata_for_region(region)
        if region not in ("US", "CA") and metadata is not None and metadata.leading_digits:
            codes.update(
                area
                for area in (f"{n:03d}" for n in range(200, 1000))
                if re.match(metadata.leading_digits, area)
            )
    return frozenset(codes)


_ISLAND_AREA_CODES = _island_area_codes()
_RULE_BY_TYPE: dict[tuple[str, int], str] = {}


def _rule_by_type(digits: str, head: _Head) -> str:
    """time_zones_for_number's choice of rule, by the number's type (its costly part):
    "geographic" (the prefix's zone), "country" (the whole country's) or "invalid"."""
    national = digits[len(str(head.country_code)) :]
    if not (national.isascii() and national.isdigit()):
        return "invalid"
    number = PhoneNumber(country_code=head.country_code, national_number=int(national))
    _set_italian_leading_zeros_for_phone_number(national, number)  # as parse does
    kind = number_type(number)
    if kind == PhoneNumberType.UNKNOWN:  # not a valid number
        return "invalid"
    return "geographic" if is_number_type_geographical(kind, head.country_code) else "country"


def _longest_prefix_zones(head: str) -> tuple[str, ...]:
    for length in range(len(head), 0, -1):
        zones = TIMEZONE_DATA.get(head[:length])
        if zones is not None:
            return zones
    return (UNKNOWN_TIMEZONE,)


def _country_code(digits: str) -> int | None:
    for length in (1, 2, 3):
        if digits[:length] in _COUNTRY_CODES:
            return int(digits[:length])
    return None


def _one_zone(zones: Sequence[str]) -> str | None:
    """The zone when `zones` holds exactly one that zoneinfo can use, else None."""
    return _usable(zones[0]) if len(zones) == 1 else None


@functools.cache  # phonenumbers names under 300 zones
def _usable(name: str) -> str | None:
    """`name` if zoneinfo loads it, else its canonical zone, else None ("Etc/Unknown")."""
    if is_known_zone(name):
        return name
    canonical = _LEGACY.get(name)
    return canonical if canonical is not None and is_known_zone(canonical) else None
