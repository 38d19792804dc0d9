"""SEND_WINDOW's time math (contract section 8): open on the recipient's own clock,
start inclusive, end exclusive, across midnight and daylight saving, with real zoneinfo."""

import functools
import random
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from utils.sendwindow import SendWindow

NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"  # +10:30, and +11:00 in summer: a 30-minute DST change


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def window(text: str) -> SendWindow:
    parsed = SendWindow.parse(text)
    assert parsed is not None
    return parsed


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("09:00-20:00", 9 * 60, 20 * 60),
        ("9:00-20:00", 9 * 60, 20 * 60),
        (" 9:00 - 20:00 ", 9 * 60, 20 * 60),
        ("08:30-17:45", 8 * 60 + 30, 17 * 60 + 45),
        ("22:00-06:00", 22 * 60, 6 * 60),
        ("09:00-00:00", 9 * 60, 0),
        ("00:00-23:59", 0, 23 * 60 + 59),
    ],
)
def test_parse_reads_hh_mm_dash_hh_mm(text, start, end):
    assert SendWindow.parse(text) == SendWindow(start, end)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_setting_is_no_window(text):
    assert SendWindow.parse(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "9-20",
        "09:00",
        "0900-2000",
        "09.00-20.00",
        "09:00 to 20:00",
        "09:00-20:00-21:00",
        "24:00-06:00",
        "09:00-24:00",
        "09:60-10:00",
        "9:5-10:00",
        "１９:００-20:00",  # full-width digits
        "-09:00-20:00",
        "morning",
    ],
)
def test_parse_rejects_other_text_naming_the_setting_and_its_form(text):
    with pytest.raises(ValueError, match=r"SEND_WINDOW must be HH:MM-HH:MM"):
        SendWindow.parse(text)


def test_a_window_that_starts_when_it_ends_is_a_typo_not_all_day():
    with pytest.raises(ValueError, match=r"SEND_WINDOW '09:00-9:00' is empty"):
        SendWindow.parse(" 09:00-9:00 ")
    with pytest.raises(ValueError):
        SendWindow(600, 600)


@pytest.mark.parametrize("start, end", [(-1, 600), (0, 1440), (1440, 0)])
def test_minutes_outside_a_day_are_refused(start, end):
    with pytest.raises(ValueError):
        SendWindow(start, end)


def test_a_window_prints_as_it_is_written():
    assert str(window(" 9:05 - 20:00")) == "09:05-20:00"
    assert str(window("22:00-06:00")) == "22:00-06:00"


def test_open_seconds_per_day_wrap_past_midnight():
    assert window("09:00-20:00").open_seconds_per_day() == 11 * 3600
    assert window("22:00-06:00").open_seconds_per_day() == 8 * 3600
    assert window("09:00-00:00").open_seconds_per_day() == 15 * 3600
    assert window("00:00-23:59").open_seconds_per_day() == 24 * 3600 - 60


# -- is_open at the edges -------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone, opens_utc",
    [
        ("UTC", (2026, 6, 15, 9, 0)),
        ("America/Sao_Paulo", (2026, 6, 15, 12, 0)),  # -03:00 all year since 2019
        ("Asia/Kolkata", (2026, 6, 15, 3, 30)),  # +05:30
        (LORD_HOWE, (2026, 6, 14, 22, 30)),  # +10:30 in (southern) winter
        (LORD_HOWE, (2026, 12, 14, 22, 0)),  # +11:00 in summer
        (NEW_YORK, (2026, 6, 15, 13, 0)),  # EDT, -04:00
        (NEW_YORK, (2026, 12, 15, 14, 0)),  # EST, -05:00
    ],
)
def test_start_is_inclusive_and_end_exclusive(zone, opens_utc):
    nine_to_eight = window("09:00-20:00")
    opens = utc(*opens_utc)
    closes = opens + 11 * 3600
    assert not nine_to_eight.is_open(zone, opens - 1)
    assert not nine_to_eight.is_open(zone, opens - 0.001)
    assert nine_to_eight.is_open(zone, opens)
    assert nine_to_eight.is_open(zone, closes - 0.001)
    assert not nine_to_eight.is_open(zone, closes)
    assert nine_to_eight.next_open(zone, opens - 3600) == opens
    assert nine_to_eight.closes_at(zone, opens) == closes


def test_a_window_spanning_midnight_is_open_on_both_sides_of_it():
    nights = window("22:00-06:00")
    assert nights.is_open("UTC", utc(2026, 6, 15, 22, 0))
    assert nights.is_open("UTC", utc(2026, 6, 15, 23, 59, 59))
    assert nights.is_open("UTC", utc(2026, 6, 16, 0, 0))
    assert nights.is_open("UTC", utc(2026, 6, 16, 5, 59, 59))
    assert not nights.is_open("UTC", utc(2026, 6, 16, 6, 0))
    assert not nights.is_open("UTC", utc(2026, 6, 16, 21, 59, 59))
    # 22:00 in Kolkata is 16:30 UTC.
    assert not nights.is_open("Asia/Kolkata", utc(2026, 6, 15, 16, 29, 59))
    assert nights.is_open("Asia/Kolkata", utc(2026, 6, 15, 16, 30))


def test_an_unknown_zone_is_an_error_callers_avoid_with_is_known_zone():
    with pytest.raises(ZoneInfoNotFoundError):
        window("09:00-20:00").is_open("Mars/Olympus_Mons", 0.0)


# -- next_open and closes_at ----------------------------------------------------------------


def test_next_open_from_inside_before_and_after_the_window():
    nine_to_eight = window("09:00-20:00")
    inside = utc(2026, 6, 15, 12, 34, 56) + 0.5
    assert nine_to_eight.next_open("UTC", inside) == inside
    assert nine_to_eight.next_open("UTC", utc(2026, 6, 15, 3, 0)) == utc(2026, 6, 15, 9, 0)
    assert nine_to_eight.next_open("UTC", utc(2026, 6, 15, 20, 0)) == utc(2026, 6, 16, 9, 0)
    assert nine_to_eight.next_open("UTC", utc(2026, 6, 15, 23, 59)) == utc(2026, 6, 16, 9, 0)
    # A fraction of a second before the start: the start itself, to the second.
    assert nine_to_eight.next_open("UTC", utc(2026, 6, 15, 8, 59, 59) + 0.25) == utc(2026, 6, 15, 9)


def test_next_open_of_a_window_spanning_midnight():
    nights = window("22:00-06:00")
    assert nights.next_open("UTC", utc(2026, 6, 15, 12, 0)) == utc(2026, 6, 15, 22, 0)
    assert nights.next_open("UTC", utc(2026, 6, 15, 23, 0)) == utc(2026, 6, 15, 23, 0)
    assert nights.next_open("UTC", utc(2026, 6, 16, 5, 59)) == utc(2026, 6, 16, 5, 59)
    assert nights.next_open("UTC", utc(2026, 6, 16, 6, 0)) == utc(2026, 6, 16, 22, 0)
    assert nights.closes_at("UTC", utc(2026, 6, 15, 23, 0)) == utc(2026, 6, 16, 6, 0)


def test_closes_at_is_the_end_when_open_and_now_when_closed():
    nine_to_eight = window("09:00-20:00")
    sao_paulo = "America/Sao_Paulo"  # 20:00 there is 23:00 UTC
    assert nine_to_eight.closes_at(sao_paulo, utc(2026, 6, 15, 13)) == utc(2026, 6, 15, 23)
    closed = utc(2026, 6, 15, 23, 30)
    assert nine_to_eight.closes_at(sao_paulo, closed) == closed


# -- daylight saving: New York, 2026-03-08 (02:00 EST -> 03:00 EDT) and 2026-11-01
# (02:00 EDT -> 01:00 EST); the clocks change at 07:00 and 06:00 UTC.

SPRING_EVE = utc(2026, 3, 8, 5, 0)  # 00:00 EST on the night the clocks spring forward
FALL_EVE = utc(2026, 11, 1, 4, 0)  # 00:00 EDT on the night they fall back


def test_spring_forward_a_window_across_the_gap_opens_at_its_start_and_closes_after_it():
    # 01:30 EST exists (06:30 UTC). The clock then reads 01:59:59 EST and next 03:00 EDT,
    # which is the end: the window closes at 07:00 UTC after 30 minutes, not 90.
    early = window("01:30-03:00")
    assert early.next_open(NEW_YORK, SPRING_EVE) == utc(2026, 3, 8, 6, 30)
    assert early.is_open(NEW_YORK, utc(2026, 3, 8, 6, 59, 59))
    assert early.closes_at(NEW_YORK, utc(2026, 3, 8, 6, 30)) == utc(2026, 3, 8, 7, 0)
    assert not early.is_open(NEW_YORK, utc(2026, 3, 8, 7, 0))


def test_spring_forward_a_start_inside_the_gap_opens_at_the_first_instant_after_it():
    # 02:30 does not exist that night: the window opens at 03:00 EDT (07:00 UTC).
    late = window("02:30-04:00")
    assert late.next_open(NEW_YORK, SPRING_EVE) == utc(2026, 3, 8, 7, 0)
    assert not late.is_open(NEW_YORK, utc(2026, 3, 8, 6, 59, 59))
    assert late.closes_at(NEW_YORK, utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 8, 0)


def test_spring_forward_a_window_wholly_inside_the_gap_waits_for_the_next_night():
    inside_gap = window("02:10-02:40")
    assert inside_gap.next_open(NEW_YORK, SPRING_EVE) == utc(2026, 3, 9, 6, 10)  # 02:10 EDT


def test_spring_forward_a_window_spanning_midnight_ends_at_the_gap_when_its_end_is_in_it():
    nights = window("22:00-02:30")  # 22:00 EST is 03:00 UTC
    assert nights.next_open(NEW_YORK, utc(2026, 3, 7, 20, 0)) == utc(2026, 3, 8, 3, 0)
    assert nights.closes_at(NEW_YORK, utc(2026, 3, 8, 3, 0)) == utc(2026, 3, 8, 7, 0)


def test_fall_back_a_window_starting_at_a_twice_shown_time_opens_at_the_first():
    from_half_past_one = window("01:30-06:00")
    assert from_half_past_one.next_open(NEW_YORK, FALL_EVE) == utc(2026, 11, 1, 5, 30)  # EDT
    # At 02:00 EDT (06:00 UTC) the clock goes back to 01:00 EST, before the start: closed
    # until it shows 01:30 again (06:30 UTC), then open until 06:00 EST (11:00 UTC).
    assert from_half_past_one.closes_at(NEW_YORK, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6)
    assert from_half_past_one.next_open(NEW_YORK, utc(2026, 11, 1, 6)) == utc(2026, 11, 1, 6, 30)
    assert from_half_past_one.closes_at(NEW_YORK, utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 1, 11)


def test_fall_back_a_short_window_is_open_both_times_the_clock_shows_it():
    short = window("01:30-01:45")
    first = short.next_open(NEW_YORK, FALL_EVE)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert short.closes_at(NEW_YORK, first) == utc(2026, 11, 1, 5, 45)
    second = short.next_open(NEW_YORK, utc(2026, 11, 1, 5, 45))
    assert second == utc(2026, 11, 1, 6, 30)  # 01:30 EST
    assert short.closes_at(NEW_YORK, second) == utc(2026, 11, 1, 6, 45)


def test_fall_back_the_clock_jumping_back_into_the_window_opens_it_at_the_jump():
    # At 02:00 EDT (06:00 UTC) the clock shows 01:00 EST, inside 00:30-01:30 again.
    small_hours = window("00:30-01:30")
    assert small_hours.next_open(NEW_YORK, utc(2026, 11, 1, 5, 40)) == utc(2026, 11, 1, 6, 0)
    assert small_hours.closes_at(NEW_YORK, utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 1, 6, 30)


def test_lord_howe_half_hour_changes():
    # 2026-10-04: 02:00 +10:30 (15:30 UTC the day before) becomes 02:30 +11:00.
    in_gap = window("02:15-03:00")
    assert in_gap.next_open(LORD_HOWE, utc(2026, 10, 3, 13, 0)) == utc(2026, 10, 3, 15, 30)
    assert in_gap.closes_at(LORD_HOWE, utc(2026, 10, 3, 15, 30)) == utc(2026, 10, 3, 16, 0)
    # 2026-04-05: 02:00 +11:00 (15:00 UTC the day before) becomes 01:30 +10:30.
    twice = window("01:40-01:50")
    first = twice.next_open(LORD_HOWE, utc(2026, 4, 4, 13, 0))
    assert first == utc(2026, 4, 4, 14, 40)
    assert twice.closes_at(LORD_HOWE, first) == utc(2026, 4, 4, 14, 50)
    assert twice.next_open(LORD_HOWE, utc(2026, 4, 4, 14, 50)) == utc(2026, 4, 4, 15, 10)


# -- properties over many zones, windows and instants ---------------------------------------

ZONES = [
    "UTC",
    NEW_YORK,
    "America/Sao_Paulo",
    "Asia/Kolkata",
    LORD_HOWE,
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 with DST
    "America/Santiago",  # changes at midnight: local midnight is skipped
    "America/Havana",  # changes at 00:00 / 01:00
    "Africa/Casablanca",  # DST suspended each Ramadan: four changes a year
    "Europe/Dublin",  # "negative" DST in tzdata
    "Europe/London",
    "Pacific/Kiritimati",  # +14:00
    "Pacific/Apia",
]


@functools.cache
def offset_changes(zone: str, year: int) -> list[float]:
    """The hours of `year` in which `zone`'s offset changes (to aim samples at them)."""
    tz, changes = ZoneInfo(zone), []
    hour = utc(year, 1, 1)
    before = datetime.fromtimestamp(hour, tz).utcoffset()
    while hour < utc(year + 1, 1, 1):
        hour += 3600
        now = datetime.fromtimestamp(hour, tz).utcoffset()
        if now != before:
            changes.append(hour)
        before = now
    return changes


def random_cases(count: int, seed: int):
    """(zone, window, instant): half of the instants in the day before an offset change.

    2018 adds Sao Paulo's last DST changes, made at midnight.
    """
    rng = random.Random(seed)
    changes = {zone: offset_changes(zone, 2018) + offset_changes(zone, 2026) for zone in ZONES}
    for _ in range(count):
        zone = rng.choice(ZONES)
        start = rng.randrange(1440) if rng.random() < 0.5 else rng.randrange(0, 240, 15)
        end = rng.randrange(1440) if rng.random() < 0.5 else (start + rng.randrange(1, 1440)) % 1440
        if end == start:
            end = (start + 1) % 1440
        if changes[zone] and rng.random() < 0.5:
            at = rng.choice(changes[zone]) + rng.uniform(-26 * 3600, 2 * 3600)
        else:
            at = rng.uniform(utc(2017, 1, 1), utc(2028, 1, 1))
        yield zone, SendWindow(start, end), at


def test_next_open_is_open_and_nothing_sampled_before_it_is():
    for zone, win, at in random_cases(400, seed=14):
        opens = win.next_open(zone, at)
        case = (zone, str(win), at, opens)
        assert opens >= at, case
        assert win.is_open(zone, opens), case
        assert (opens == at) == win.is_open(zone, at), case
        assert opens - at < 2 * 86400, case
        if opens > at:
            # Openings fall on whole seconds: the second before is still closed.
            assert opens == int(opens), case
            assert opens - 1 < at or not win.is_open(zone, opens - 1), case
        sample = at
        while sample < opens:
            assert not win.is_open(zone, sample), (case, sample)
            sample += 300


def test_closes_at_is_closed_and_everything_sampled_before_it_is_open():
    for zone, win, at in random_cases(400, seed=3):
        opens = win.next_open(zone, at)
        closes = win.closes_at(zone, opens)
        case = (zone, str(win), opens, closes)
        assert closes > opens, case
        assert not win.is_open(zone, closes), case
        assert closes - 1 < opens or win.is_open(zone, closes - 1), case
        sample = opens
        while sample < closes:
            assert win.is_open(zone, sample), (case, sample)
            sample += 300


def test_is_open_agrees_with_the_recipients_clock():
    # Every instant shows one wall time, so the naive reading has no gap to trip on.
    for zone, win, at in random_cases(3000, seed=8):
        shown = datetime.fromtimestamp(at, ZoneInfo(zone)).time()
        start, end = time(win.start // 60, win.start % 60), time(win.end // 60, win.end % 60)
        if start < end:
            expected = start <= shown < end
        else:
            expected = shown >= start or shown < end
        assert win.is_open(zone, at) == expected, (zone, str(win), at, shown)
