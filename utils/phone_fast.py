"""The fast path of utils/phones.py: what phonenumbers.parse and is_valid_number would say,
for the plain digits nearly every contact list holds, at a third of their cost.

parse spends two thirds of its time scanning free text that utils/phones.py has already
reduced to ASCII digits, and is_valid_number matches a shared calling code's patterns twice.
Whatever this module is unsure of, it hands back (None) to the full parse. Agreement with
plain phonenumbers is proven on 75,000 generated inputs in tests/test_phones.py.
"""

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, ValidationResult

# Private helpers of phonenumbers.parse and is_valid_number. `parse_digits` and `is_valid`
# call them as those functions do, so they follow phonenumbers' rules rather than copy them;
# the agreement test in tests/test_phones.py fails if a phonenumbers release changes them.
from phonenumbers.phonenumberutil import (
    _is_number_matching_desc,
    _maybe_strip_national_prefix_carrier_code,
    _set_italian_leading_zeros_for_phone_number,
    _test_number_length,
)

if hasattr(phonenumbers, "enable_pattern_cache"):  # older releases lack it
    # Keep every compiled metadata pattern. Without this, once a list holds numbers of a few
    # dozen countries, re's 512-entry cache churns and each number costs ~10x more, spent
    # recompiling its region's patterns. All ~2,000 of them take ~1.3 MB.
    phonenumbers.enable_pattern_cache()


def parse_digits(text: str, region: str | None) -> PhoneNumber | None:
    """What phonenumbers.parse gives for "+digits" or national digits; None when unsure.

    parse spends two thirds of its time scanning free text (RFC 3966, extensions, letters,
    Unicode digits) that `_clean` has already reduced to ASCII digits; this skips that and
    gives up (None: take parse) on every branch it does not copy, never raising itself.
    """
    # Under 4 characters parse may call the text no number at all; over 18 it is too long.
    digits = text[1:] if text[:1] == "+" else text
    if not (4 <= len(text) <= 18 and digits.isascii() and digits.isdigit()):
        return None
    if text[0] == "+":
        country_code, national = _split_country_code(digits)
        metadata = _metadata_for_code(country_code)
    elif region is not None:
        metadata = _metadata_for_region(region)
        if metadata is None or metadata.country_code is None:
            return None
        if _may_hold_country_code(text, metadata):
            return None
        country_code, national = metadata.country_code, text
    else:
        return None
    if metadata is None or len(national) < 2:
        return None
    # parse strips a trunk prefix ("0" in "030 ...") only if what remains has a possible
    # length, so that a short number is not cut.
    stripped = _maybe_strip_national_prefix_carrier_code(national, metadata)[1]
    if stripped != national and _test_number_length(stripped, metadata) not in _KEEP_PREFIX:
        national = stripped
    if not 2 <= len(national) <= 17:
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    _set_italian_leading_zeros_for_phone_number(national, number)
    return number


def _split_country_code(digits: str) -> tuple[int, str]:
    """Split international digits at the shortest known calling code, as parse does."""
    if digits[0] != "0":  # no calling code starts with 0
        for size in (1, 2, 3):
            if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                return int(digits[:size]), digits[size:]
    return 0, digits


def _may_hold_country_code(digits: str, metadata: PhoneMetadata) -> bool:
    """Whether parse might read national digits as international: an IDD or the own code."""
    # Only None means "no prefix" to parse: an empty pattern matches every number.
    idd = metadata.international_prefix
    return (idd is not None and _pattern(idd).match(digits) is not None) or digits.startswith(
        str(metadata.country_code)
    )


@functools.lru_cache(maxsize=512)
def _metadata_for_code(country_code: int) -> PhoneMetadata | None:
    """The metadata parse uses for a number written with +country_code (None for 0)."""
    if country_code == 0:
        return None
    region = phonenumbers.region_code_for_country_code(country_code)
    return PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


@functools.lru_cache(maxsize=512)
def _metadata_for_region(region: str) -> PhoneMetadata | None:
    """The metadata parse uses for a DEFAULT_COUNTRY, None where parse would refuse it."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    return PhoneMetadata.metadata_for_region(region, None)


@functools.lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A metadata pattern compiled once (re's own cache is shared and soon full)."""
    return re.compile(pattern)


def is_valid(number: PhoneNumber) -> bool:
    """phonenumbers.is_valid_number, without matching the same patterns twice.

    is_valid_number first picks the region of a shared calling code (+1, +7, +39) by
    matching the number against each region's patterns, then matches them all again.
    """
    country_code = number.country_code or 0  # unset, like 0, is no region's code
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    nsn = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        return metadata is not None and _valid_in(nsn, metadata, country_code)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            # Leading digits alone claim the number for this region, valid or not.
            if _pattern(metadata.leading_digits).match(nsn):
                return _valid_in(nsn, metadata, country_code)
        elif _matches_a_type(nsn, metadata):
            return metadata.country_code == country_code
    return False


def _valid_in(nsn: str, metadata: PhoneMetadata, country_code: int) -> bool:
    """is_valid_number_for_region once the region's metadata is known."""
    return metadata.country_code == country_code and _matches_a_type(nsn, metadata)


def _matches_a_type(nsn: str, metadata: PhoneMetadata) -> bool:
    """Whether phonenumbers gives the number a type (is valid) in a region's metadata."""
    if not _is_number_matching_desc(nsn, metadata.general_desc):
        return False
    # phonenumbers tries the rare types first; any match makes a number valid, so try the
    # types nearly every recipient has first.
    if not metadata.same_mobile_and_fixed_line_pattern and _is_number_matching_desc(
        nsn, metadata.mobile
    ):
        return True
    return any(
        _is_number_matching_desc(nsn, desc)
        for desc in (
            metadata.fixed_line,
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
    )


# Length verdicts after stripping a trunk prefix for which parse keeps the prefix.
_KEEP_PREFIX = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)
