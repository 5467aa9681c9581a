"""Tests for jobmail.when: every --at form, in several zones, with a fixed clock.

Calendar used below (2026): Jan 1 is a Thursday; Jun 10 a Wednesday. The US springs
forward on Sun Mar 8 (02:00 EST -> 03:00 EDT) and falls back on Sun Nov 1
(02:00 EDT -> 01:00 EST); the EU on Sun Mar 29 (02:00 CET -> 03:00 CEST) and
Sun Oct 25 (03:00 CEST -> 02:00 CET).
"""

import sys
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobmail.when import (
    BusinessHours,
    WhenError,
    _local_zone,
    describe,
    parse_when,
    resolve_zone,
)

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
CAIRO = ZoneInfo("Africa/Cairo")


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


# Wed 2026-06-10: 08:00 EDT in New York, 14:00 CEST in Paris, 17:30 IST in Kolkata.
WEDNESDAY_NOON_UTC = utc(2026, 6, 10, 12, 0)


def when(text: str, zone, now: datetime = WEDNESDAY_NOON_UTC, **kwargs) -> datetime:
    return parse_when(text, now, zone, **kwargs)


# --- the forms, in several zones ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-12-01T09:30:00+01:00", NEW_YORK, utc(2026, 12, 1, 8, 30)),
        ("2026-12-01T09:30:00+01:00", KOLKATA, utc(2026, 12, 1, 8, 30)),
        ("2026-12-01T08:30Z", PARIS, utc(2026, 12, 1, 8, 30)),
        ("2026-12-01t08:30:15.25z", NEW_YORK, utc(2026, 12, 1, 8, 30, 15, 250000)),
        ("2026-12-01T09:30-0530", PARIS, utc(2026, 12, 1, 15, 0)),
        ("2026-12-01 09:30 +05", PARIS, utc(2026, 12, 1, 4, 30)),
        ("2026-12-01T09:30", NEW_YORK, utc(2026, 12, 1, 14, 30)),
        ("2026-12-01 09:30", PARIS, utc(2026, 12, 1, 8, 30)),
        ("2026-12-01 09:30", KOLKATA, utc(2026, 12, 1, 4, 0)),
        ("2026-07-01T09:30:45", PARIS, utc(2026, 7, 1, 7, 30, 45)),
    ],
)
def test_iso_date_time(text, zone, expected):
    assert when(text, zone) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("09:00", NEW_YORK, utc(2026, 6, 10, 13, 0)),  # still ahead: today
        ("9:05", NEW_YORK, utc(2026, 6, 10, 13, 5)),
        ("07:00", NEW_YORK, utc(2026, 6, 11, 11, 0)),  # gone: tomorrow
        ("08:00", NEW_YORK, utc(2026, 6, 10, 12, 0)),  # this very minute: today
        ("15:30", PARIS, utc(2026, 6, 10, 13, 30)),
        ("10:00", PARIS, utc(2026, 6, 11, 8, 0)),
        ("00:00", PARIS, utc(2026, 6, 10, 22, 0)),
        ("18:00", KOLKATA, utc(2026, 6, 10, 12, 30)),
        ("17:00", KOLKATA, utc(2026, 6, 11, 11, 30)),
    ],
)
def test_clock_time_is_the_next_time_the_clock_shows_it(text, zone, expected):
    assert when(text, zone) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("today 17:00", NEW_YORK, utc(2026, 6, 10, 21, 0)),
        ("tomorrow 07:00", NEW_YORK, utc(2026, 6, 11, 11, 0)),
        ("TODAY 23:59", KOLKATA, utc(2026, 6, 10, 18, 29)),
        ("Tomorrow 00:30", KOLKATA, utc(2026, 6, 10, 19, 0)),
        ("  tomorrow   09:00 ", PARIS, utc(2026, 6, 11, 7, 0)),
    ],
)
def test_today_and_tomorrow(text, zone, expected):
    assert when(text, zone) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("monday 09:00", NEW_YORK, utc(2026, 6, 15, 13, 0)),
        ("mon 9:00", PARIS, utc(2026, 6, 15, 7, 0)),
        ("wed 10:00", NEW_YORK, utc(2026, 6, 10, 14, 0)),  # today, still ahead
        ("wednesday 07:00", NEW_YORK, utc(2026, 6, 17, 11, 0)),  # today, gone
        ("wed 17:00", KOLKATA, utc(2026, 6, 17, 11, 30)),
        ("FRI 09:00", KOLKATA, utc(2026, 6, 12, 3, 30)),
        ("Sunday 12:00", PARIS, utc(2026, 6, 14, 10, 0)),
        ("thu 00:15", KOLKATA, utc(2026, 6, 10, 18, 45)),  # Kolkata's Thursday
    ],
)
def test_weekday_with_time(text, zone, expected):
    assert when(text, zone) == expected


@pytest.mark.parametrize("zone", [NEW_YORK, KOLKATA])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+45m", utc(2026, 6, 10, 12, 45)),
        ("+2h", utc(2026, 6, 10, 14, 0)),
        ("+1h30m", utc(2026, 6, 10, 13, 30)),
        ("+90s", utc(2026, 6, 10, 12, 1, 30)),
        ("+1d", utc(2026, 6, 11, 12, 0)),
        (" +2H ", utc(2026, 6, 10, 14, 0)),
        ("+1d 2h", utc(2026, 6, 11, 14, 0)),
        ("+0m", utc(2026, 6, 10, 12, 0)),
    ],
)
def test_delay(text, zone, expected):
    assert when(text, zone) == expected


@pytest.mark.parametrize("zone", [PARIS, KOLKATA])
def test_now_is_now_in_utc(zone):
    now = datetime(2026, 6, 10, 8, 0, 12, 345, tzinfo=NEW_YORK)
    result = when(" NOW ", zone, now=now)
    assert result == utc(2026, 6, 10, 12, 0, 12, 345)
    assert result.tzinfo is UTC


def test_results_are_in_utc():
    for text in ("09:00", "+1h", "mon 09:00", "2026-12-01T09:30+01:00", "2026-12-01 09:30"):
        assert when(text, PARIS).tzinfo is UTC


# --- daylight-saving changes --------------------------------------------------

US_SPRING_SATURDAY = utc(2026, 3, 7, 17, 0)  # Sat 12:00 EST
US_FALL_SATURDAY = utc(2026, 10, 31, 16, 0)  # Sat 12:00 EDT
EU_SPRING_SATURDAY = utc(2026, 3, 28, 11, 0)  # Sat 12:00 CET
EU_FALL_SATURDAY = utc(2026, 10, 24, 10, 0)  # Sat 12:00 CEST


@pytest.mark.parametrize(
    ("text", "zone", "now", "expected"),
    [
        # US spring-forward: 02:30 does not exist and moves forward to 03:30 EDT.
        ("2026-03-08 02:30", NEW_YORK, US_SPRING_SATURDAY, utc(2026, 3, 8, 7, 30)),
        ("sun 02:30", NEW_YORK, US_SPRING_SATURDAY, utc(2026, 3, 8, 7, 30)),
        ("tomorrow 09:00", NEW_YORK, US_SPRING_SATURDAY, utc(2026, 3, 8, 13, 0)),
        ("02:30", NEW_YORK, utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7, 30)),
        ("01:30", NEW_YORK, utc(2026, 3, 8, 7, 10), utc(2026, 3, 9, 5, 30)),
        # A delay is elapsed time: +1d is 24 hours, so 13:00 EDT on the clock.
        ("+1d", NEW_YORK, US_SPRING_SATURDAY, utc(2026, 3, 8, 17, 0)),
        # US fall-back: 01:30 happens twice; the first (EDT) is taken...
        ("2026-11-01 01:30", NEW_YORK, US_FALL_SATURDAY, utc(2026, 11, 1, 5, 30)),
        ("01:30", NEW_YORK, utc(2026, 11, 1, 5, 10), utc(2026, 11, 1, 5, 30)),
        # ...unless it is already past and the second (EST) is not.
        ("01:30", NEW_YORK, utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 6, 30)),
        ("2026-11-01 01:30", NEW_YORK, utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)),
        ("tomorrow 09:00", NEW_YORK, US_FALL_SATURDAY, utc(2026, 11, 1, 14, 0)),
        ("mon 09:00", NEW_YORK, US_FALL_SATURDAY, utc(2026, 11, 2, 14, 0)),
        # EU spring-forward: 02:30 moves forward to 03:30 CEST.
        ("2026-03-29 02:30", PARIS, EU_SPRING_SATURDAY, utc(2026, 3, 29, 1, 30)),
        ("2026-03-29 01:30", PARIS, EU_SPRING_SATURDAY, utc(2026, 3, 29, 0, 30)),
        ("tomorrow 09:00", PARIS, EU_SPRING_SATURDAY, utc(2026, 3, 29, 7, 0)),
        # EU fall-back: 02:30 happens twice; the first (CEST) is taken.
        ("2026-10-25 02:30", PARIS, EU_FALL_SATURDAY, utc(2026, 10, 25, 0, 30)),
        ("sun 09:00", PARIS, EU_FALL_SATURDAY, utc(2026, 10, 25, 8, 0)),
        ("tomorrow 09:00", NEW_YORK, EU_FALL_SATURDAY, utc(2026, 10, 25, 13, 0)),
    ],
)
def test_daylight_saving_changes(text, zone, now, expected):
    assert when(text, zone, now=now) == expected


# --- next-business-morning ----------------------------------------------------


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # New York, summer: 09:00 EDT is 13:00 UTC.
        (utc(2026, 6, 13, 15, 0), NEW_YORK, utc(2026, 6, 15, 13, 0)),  # Sat 11:00
        (utc(2026, 6, 12, 22, 0), NEW_YORK, utc(2026, 6, 15, 13, 0)),  # Fri 18:00
        (utc(2026, 6, 10, 12, 0), NEW_YORK, utc(2026, 6, 10, 13, 0)),  # Wed 08:00
        (utc(2026, 6, 10, 14, 0), NEW_YORK, utc(2026, 6, 10, 14, 0)),  # Wed 10:00: now
        (utc(2026, 6, 10, 13, 0), NEW_YORK, utc(2026, 6, 10, 13, 0)),  # Wed 09:00: now
        (utc(2026, 6, 10, 21, 0), NEW_YORK, utc(2026, 6, 11, 13, 0)),  # Wed 17:00
        (utc(2026, 6, 15, 3, 0), NEW_YORK, utc(2026, 6, 15, 13, 0)),  # Sun 23:00
        # Saturday before the US spring-forward: Monday 09:00 is already EDT.
        (US_SPRING_SATURDAY, NEW_YORK, utc(2026, 3, 9, 13, 0)),
        # Paris, summer (09:00 CEST = 07:00 UTC), and across the EU fall-back.
        (utc(2026, 6, 13, 10, 0), PARIS, utc(2026, 6, 15, 7, 0)),  # Sat 12:00
        (utc(2026, 6, 12, 16, 0), PARIS, utc(2026, 6, 15, 7, 0)),  # Fri 18:00
        (utc(2026, 10, 23, 16, 0), PARIS, utc(2026, 10, 26, 8, 0)),  # Fri 18:00
        # `now` in Tokyo (Fri 23:00 UTC): the weekday is judged in the chosen zone.
        (datetime(2026, 6, 13, 8, 0, tzinfo=TOKYO), KOLKATA, utc(2026, 6, 15, 3, 30)),
        (datetime(2026, 6, 13, 8, 0, tzinfo=TOKYO), NEW_YORK, utc(2026, 6, 15, 13, 0)),
    ],
)
def test_next_business_morning(now, zone, expected):
    assert when("next-business-morning", zone, now=now) == expected


@pytest.mark.parametrize(
    ("now", "zone", "hours", "expected"),
    [
        (utc(2026, 6, 10, 12, 45), NEW_YORK, "08:30-16:00", utc(2026, 6, 10, 12, 45)),
        (utc(2026, 6, 10, 12, 0), NEW_YORK, "08:30-16:00", utc(2026, 6, 10, 12, 30)),
        (utc(2026, 6, 10, 20, 0), NEW_YORK, "08:30-16:00", utc(2026, 6, 11, 12, 30)),
        (utc(2026, 6, 14, 15, 0), NEW_YORK, "08:30-16:00", utc(2026, 6, 15, 12, 30)),
        (utc(2026, 6, 10, 4, 0), PARIS, "07:00-15:00", utc(2026, 6, 10, 5, 0)),
        (utc(2026, 6, 10, 13, 0), PARIS, "07:00-15:00", utc(2026, 6, 11, 5, 0)),
        # Cairo falls back on Thu 2026-10-29 at midnight, so 23:00-24:00 happens twice.
        # At 23:10 on the second showing, the first 23:30 is gone: the second is next.
        (utc(2026, 10, 29, 21, 10), CAIRO, "23:30-23:59", utc(2026, 10, 29, 21, 30)),
        (utc(2026, 10, 29, 20, 10), CAIRO, "23:30-23:59", utc(2026, 10, 29, 20, 30)),
    ],
)
def test_next_business_morning_with_custom_hours(now, zone, hours, expected):
    result = when("next-business-morning", zone, now=now, hours=BusinessHours.parse(hours))
    assert result == expected


@pytest.mark.parametrize("text", ["NEXT-BUSINESS-MORNING", " next business morning "])
def test_next_business_morning_spellings(text):
    assert when(text, NEW_YORK, now=utc(2026, 6, 13, 15, 0)) == utc(2026, 6, 15, 13, 0)


# --- the past -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "now", "understood_as"),
    [
        ("2026-01-01 09:00", PARIS, WEDNESDAY_NOON_UTC, "Thu 2026-01-01 09:00 CET"),
        ("today 07:00", NEW_YORK, WEDNESDAY_NOON_UTC, "Wed 2026-06-10 07:00 EDT"),
        ("today 17:00", KOLKATA, WEDNESDAY_NOON_UTC, "Wed 2026-06-10 17:00 IST"),
        ("2026-06-10T11:59:58Z", KOLKATA, WEDNESDAY_NOON_UTC, "Wed 2026-06-10 17:29 IST"),
        ("2026-03-08 02:30", NEW_YORK, utc(2026, 3, 9), "Sun 2026-03-08 03:30 EDT"),
    ],
)
def test_past_time_names_what_it_was_understood_as(text, zone, now, understood_as):
    with pytest.raises(WhenError) as caught:
        when(text, zone, now=now)
    assert str(caught.value) == (f'"{text}" is in the past (understood as {understood_as}): give a future time')


def test_up_to_one_second_in_the_past_is_accepted():
    half_a_second_late = utc(2026, 6, 10, 12, 0, 0, 500000)
    assert when("2026-06-10T12:00Z", PARIS, now=half_a_second_late) == utc(2026, 6, 10, 12)
    assert when("today 08:00", NEW_YORK, now=half_a_second_late) == utc(2026, 6, 10, 12)
    with pytest.raises(WhenError, match="in the past"):
        when("2026-06-10T12:00Z", PARIS, now=utc(2026, 6, 10, 12, 0, 1, 500000))


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "next week",
        "9",
        "monday",
        "funday 09:00",
        "tomorrow at 9",
        "+",
        "+5x",
        "-5m",
        "+1m30h",
        "2026-12-01",
        "12/01/2026 09:30",
    ],
)
def test_garbage_lists_the_accepted_forms(text):
    with pytest.raises(WhenError) as caught:
        when(text, PARIS)
    message = str(caught.value)
    assert message.startswith(f'cannot understand the time "{text.strip()}": use now, +45m')
    assert "next-business-morning" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00", '"25:00" is not a time of day: use HH:MM from 00:00 to 23:59'),
        ("mon 12:60", '"12:60" is not a time of day: use HH:MM from 00:00 to 23:59'),
        ("2026-02-30 09:00", '"2026-02-30 09:00" is not a valid date-time (day is out'),
        ("2026-12-01 24:00", '"2026-12-01 24:00" is not a valid date-time (hour must'),
        ("2026-12-01T09:30+24:00", '"2026-12-01T09:30+24:00" has an impossible UTC offset'),
        ("+99999999d", '"+99999999d" is too far away'),
        ("9999-12-31 23:59", '"9999-12-31 23:59" is too far away'),
    ],
)
def test_impossible_values_say_what_is_wrong(text, message):
    with pytest.raises(WhenError) as caught:
        when(text, NEW_YORK)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_naive_now_is_a_programming_error_not_a_user_error():
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_when("now", datetime(2026, 6, 10, 12), PARIS)
    assert not isinstance(caught.value, WhenError)


# --- zones --------------------------------------------------------------------


def test_resolve_zone_by_iana_name():
    assert resolve_zone("America/New_York") is NEW_YORK
    assert resolve_zone(" Asia/Kolkata ") is KOLKATA
    assert resolve_zone("europe/paris").utcoffset(datetime(2026, 1, 1)) == timedelta(hours=1)


@pytest.mark.parametrize("name", ["Mars/Base", "America", "../etc/passwd", "/etc/localtime", "Europe/Paris/", "JST-9"])
def test_unknown_zone(name):
    with pytest.raises(WhenError) as caught:
        resolve_zone(name)
    assert str(caught.value) == (
        f"unknown time zone '{name}': use an IANA name such as Europe/Paris or America/New_York"
    )


@pytest.mark.parametrize("name", [None, "", "  "])
def test_no_zone_means_the_local_zone(name):
    now = datetime.now().astimezone()
    assert now.astimezone(resolve_zone(name)).utcoffset() == now.utcoffset()


@pytest.mark.parametrize(
    ("tz_variable", "expected"),
    [
        ("Asia/Kolkata", KOLKATA),
        (":Europe/Paris", PARIS),
        ("/usr/share/zoneinfo/America/New_York", NEW_YORK),
    ],
)
def test_local_zone_named_by_tz_variable(tz_variable, expected):
    assert _local_zone({"TZ": tz_variable}) is expected


@pytest.mark.parametrize("environ", [{"TZ": "JST-9"}, {"TZ": ""}, {}])
def test_local_zone_falls_back_to_the_current_fixed_offset(environ, tmp_path):
    missing = str(tmp_path / "localtime")
    assert _local_zone(environ, missing) == datetime.now().astimezone().tzinfo


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_local_zone_named_by_localtime_link(tmp_path):
    target = tmp_path / "zoneinfo" / "Asia" / "Kolkata"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    link = tmp_path / "localtime"
    link.symlink_to(target)
    assert _local_zone({}, str(link)) is KOLKATA


def test_local_zone_read_from_a_copied_localtime_file(tmp_path):
    sources = [path for root in TZPATH if (path := Path(root, "Asia", "Kolkata")).is_file()]
    if not sources:
        pytest.skip("no system zone database to copy a zone file from")
    source = sources[0]
    copy = tmp_path / "localtime"
    copy.write_bytes(source.read_bytes())
    zone = _local_zone({}, str(copy))
    assert datetime(2026, 1, 1, tzinfo=zone).utcoffset() == timedelta(hours=5, minutes=30)


# --- business hours -----------------------------------------------------------


def test_business_hours_parse():
    assert BusinessHours.parse("09:00-17:00") == BusinessHours()
    assert BusinessHours.parse(" 8:30 - 16:45 ") == BusinessHours(time(8, 30), time(16, 45))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-5", 'cannot read business hours "9-5": use START-END, e.g. 09:00-17:00'),
        ("", 'cannot read business hours "": use START-END, e.g. 09:00-17:00'),
        ("09:00", 'cannot read business hours "09:00": use START-END, e.g. 09:00-17:00'),
        ("09:00 to 17:00", 'cannot read business hours "09:00 to 17:00": use START-END'),
        ("17:00-09:00", "business hours 17:00-09:00 do not end after they start"),
        ("09:00-09:00", "business hours 09:00-09:00 do not end after they start"),
        ("24:00-25:00", '"24:00" is not a time of day: use HH:MM from 00:00 to 23:59'),
        ("09:00-17:60", '"17:60" is not a time of day: use HH:MM from 00:00 to 23:59'),
    ],
)
def test_business_hours_parse_rejects(text, message):
    with pytest.raises(WhenError) as caught:
        BusinessHours.parse(text)
    assert str(caught.value).startswith(message)


def test_business_hours_must_end_after_they_start():
    with pytest.raises(WhenError, match="do not end after they start"):
        BusinessHours(time(17), time(9))


# --- describe -----------------------------------------------------------------


def test_describe_shows_zone_and_local_time():
    assert describe(utc(2026, 11, 30, 14), NEW_YORK, LONDON) == (
        "Mon 2026-11-30 09:00 EST (America/New_York); Mon 2026-11-30 14:00 GMT local"
    )
    assert describe(utc(2026, 6, 15, 3, 30), KOLKATA, PARIS) == (
        "Mon 2026-06-15 09:00 IST (Asia/Kolkata); Mon 2026-06-15 05:30 CEST local"
    )


def test_describe_says_it_once_when_the_offsets_agree():
    assert describe(utc(2026, 11, 30, 14), LONDON, ZoneInfo("Etc/UTC")) == ("Mon 2026-11-30 14:00 GMT (Europe/London)")
    assert describe(utc(2026, 6, 15, 3, 30), timezone(timedelta(hours=2)), PARIS) == ("Mon 2026-06-15 05:30 UTC+02:00")


def test_describe_defaults_to_the_machine_zone():
    assert describe(utc(2026, 11, 30, 14), NEW_YORK).startswith("Mon 2026-11-30 09:00 EST (America/New_York)")


# --- properties ---------------------------------------------------------------

# A real clock reading: an instant, shown in some zone (never a wall time inside a DST gap).
aware_nows = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2099, 12, 30)),
    st.timezones(),
)


@given(now=aware_nows, zone=st.timezones(), minutes=st.integers(1, 10_000))
def test_delay_is_elapsed_time_from_now(now, zone, minutes):
    result = parse_when(f"+{minutes}m", now, zone)
    assert result == now.astimezone(UTC) + timedelta(minutes=minutes)
    assert result.utcoffset() == timedelta(0)


def _clock_shows(zone, day, wall: time) -> bool:
    """Whether the clock in ``zone`` ever shows ``wall`` on ``day`` (not in a gap)."""
    moment = datetime.combine(day, wall, tzinfo=zone)
    return moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == moment.replace(tzinfo=None)


@given(
    now=aware_nows,
    zone=st.sampled_from([NEW_YORK, PARIS, KOLKATA, ZoneInfo("Australia/Lord_Howe")]),
    wall=st.times(),
)
def test_clock_time_is_the_next_showing_within_a_day(now, zone, wall):
    wall = wall.replace(second=0, microsecond=0)
    result = parse_when(f"{wall:%H:%M}", now, zone)
    assert now - timedelta(seconds=1) <= result < now + timedelta(hours=25)
    shown = result.astimezone(zone)
    if _clock_shows(zone, shown.date(), wall):
        assert shown.time() == wall
