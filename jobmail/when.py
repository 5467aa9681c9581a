"""Turn the user's ``--at WHEN`` and ``--tz ZONE`` into an aware UTC datetime.

The clock is always passed in as ``now``; nothing here reads the real time except
the local-zone fallback in :func:`resolve_zone` and the default of :func:`describe`.

Wall times (``09:00``, ``tomorrow 09:00``, ``2026-12-01 09:30`` ...) are read in the
chosen zone, following PEP 495:

* a wall time that does not exist (spring-forward gap) is read with the offset in
  force before the change (``fold=0``), so it moves forward by the gap: 02:30 on
  2026-03-08 in New York becomes 03:30 EDT;
* a wall time that happens twice (fall-back) is the first occurrence (``fold=0``),
  unless that one is already past and the second is not: then it is the second,
  the next time the clock shows it.

Delays (``+1d``, ``+2h``) are elapsed time, so ``+1d`` is exactly 24 hours later
even across a daylight-saving change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jobmail.errors import InputError

ACCEPTED_FORMS = (
    "now, +45m, +2h, +1h30m, +90s, +1d, HH:MM, today HH:MM, tomorrow HH:MM, "
    "a weekday with a time (mon 09:00), next-business-morning, "
    "or an ISO date-time (2026-12-01 09:30, 2026-12-01T09:30+01:00, 2026-12-01T08:30Z)"
)
PAST_TOLERANCE = timedelta(seconds=1)
LOCALTIME_PATH = "/etc/localtime"

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})"
_CLOCK_RE = re.compile(rf"(?:(?P<day>[a-z]+)\s+)?{_CLOCK}")
_DELAY_RE = re.compile(
    r"\+\s*(?:(?P<days>\d{1,9})d)?\s*(?:(?P<hours>\d{1,9})h)?\s*"
    r"(?:(?P<minutes>\d{1,9})m)?\s*(?:(?P<seconds>\d{1,9})s)?"
)
_ISO_RE = re.compile(
    rf"(?P<date>\d{{4}}-\d{{2}}-\d{{2}})[t ]\s*{_CLOCK}"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"\s*(?P<offset>z|[+-]\d{2}(?::?\d{2})?)?"
)
_NEXT_BUSINESS_MORNING_RE = re.compile(r"next[- ]business[- ]morning")
_BUSINESS_HOURS_RE = re.compile(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*")


class WhenError(InputError, ValueError):
    """A time, zone or business-hours setting the user gave cannot be used."""


@dataclass(frozen=True)
class BusinessHours:
    """The working day next-business-morning aims for, in the chosen zone, Mon-Fri."""

    start: time = time(9, 0)
    end: time = time(17, 0)

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise WhenError(
                f"business hours {self.start:%H:%M}-{self.end:%H:%M} do not end after "
                "they start: give START-END within one day, e.g. 09:00-17:00"
            )

    @classmethod
    def parse(cls, text: str) -> BusinessHours:
        """Read ``"09:00-17:00"``."""
        match = _BUSINESS_HOURS_RE.fullmatch(text)
        if match is None:
            raise WhenError(f'cannot read business hours "{text}": use START-END, e.g. 09:00-17:00')
        return cls(_clock_time(match[1]), _clock_time(match[2]))


def resolve_zone(name: str | None) -> tzinfo:
    """The zone called ``name`` (an IANA name, any case); the local zone if empty."""
    name = (name or "").strip()
    if not name:
        return _local_zone()
    zone = _zone_named(name) or _zone_named_ignoring_case(name)
    if zone is None:
        raise WhenError(f"unknown time zone '{name}': use an IANA name such as Europe/Paris or America/New_York")
    return zone


def parse_when(text: str, now: datetime, zone: tzinfo, hours: BusinessHours = BusinessHours()) -> datetime:
    """The instant, in UTC, that ``text`` means when read at ``now`` in ``zone``."""
    _require_aware(now, "now")
    now = now.astimezone(UTC)  # one unambiguous instant, even for a wall time in a DST gap
    text = text.strip()
    words = " ".join(text.lower().split())
    if words == "now":
        return now.astimezone(UTC)
    if _NEXT_BUSINESS_MORNING_RE.fullmatch(words):
        return _next_business_morning(now, zone, hours)
    try:
        instant = _parse_instant(words, text, now, zone)
    except OverflowError:
        raise WhenError(f'"{text}" is too far away: give a time within a few years') from None
    if _is_past(instant, now):
        raise WhenError(f'"{text}" is in the past (understood as {_format(instant, zone)}): give a future time')
    return instant


def describe(instant: datetime, zone: tzinfo, local: tzinfo | None = None) -> str:
    """One line for the CLI summary: ``instant`` in ``zone``, and in local time if
    that shows a different offset."""
    _require_aware(instant, "instant")
    local = resolve_zone(None) if local is None else local
    text = _format(instant, zone)
    key = getattr(zone, "key", None)
    if key:
        text += f" ({key})"
    if instant.astimezone(zone).utcoffset() != instant.astimezone(local).utcoffset():
        text += f"; {_format(instant, local)} local"
    return text


def _parse_instant(words: str, text: str, now: datetime, zone: tzinfo) -> datetime:
    if match := _DELAY_RE.fullmatch(words):
        return now.astimezone(UTC) + _delay(match, text)
    if match := _ISO_RE.fullmatch(words):
        return _iso_instant(match, text, now, zone)
    if match := _CLOCK_RE.fullmatch(words):
        return _clock_instant(match, text, now, zone)
    raise _unparseable(text)


def _unparseable(text: str) -> WhenError:
    return WhenError(f'cannot understand the time "{text}": use {ACCEPTED_FORMS}')


def _delay(match: re.Match[str], text: str) -> timedelta:
    parts = {unit: int(amount) for unit, amount in match.groupdict().items() if amount}
    if not parts:
        raise _unparseable(text)
    return timedelta(**parts)


def _iso_instant(match: re.Match[str], text: str, now: datetime, zone: tzinfo) -> datetime:
    try:
        day = date.fromisoformat(match["date"])
        wall = time(
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            int((match["fraction"] or "0").ljust(6, "0")),
        )
    except ValueError as error:
        raise WhenError(f'"{text}" is not a valid date-time ({error}): use {ACCEPTED_FORMS}') from None
    if match["offset"] is None:
        return _next_occurrence(day, wall, zone, now)
    return datetime.combine(day, wall, tzinfo=_utc_offset(match["offset"], text)).astimezone(UTC)


def _utc_offset(offset: str, text: str) -> tzinfo:
    """``z``, ``+01``, ``+0100`` or ``-05:30`` as a fixed zone."""
    if offset == "z":
        return UTC
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise WhenError(f'"{text}" has an impossible UTC offset: use Z or one from -23:59 to +23:59')
    sign = -1 if offset.startswith("-") else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _clock_instant(match: re.Match[str], text: str, now: datetime, zone: tzinfo) -> datetime:
    wall = _clock_time(f"{match['hour']}:{match['minute']}")
    today = now.astimezone(zone).date()
    day_word = match["day"]
    if day_word is None:
        return _next_occurrence(today, wall, zone, now, step=timedelta(days=1))
    if day_word == "today":
        return _next_occurrence(today, wall, zone, now)
    if day_word == "tomorrow":
        return _next_occurrence(today + timedelta(days=1), wall, zone, now)
    weekday = _weekday_number(day_word)
    if weekday is None:
        raise _unparseable(text)
    day = today + timedelta(days=(weekday - today.weekday()) % 7)
    return _next_occurrence(day, wall, zone, now, step=timedelta(days=7))


def _next_business_morning(now: datetime, zone: tzinfo, hours: BusinessHours) -> datetime:
    wall_now = now.astimezone(zone)
    if _is_weekday(wall_now.date()) and hours.start <= wall_now.time() < hours.end:
        return now.astimezone(UTC)
    day = wall_now.date()
    if not _is_weekday(day) or wall_now.time() >= hours.end:
        day = _next_weekday_after(day)
    return _next_occurrence(day, hours.start, zone, now)


def _next_occurrence(day: date, wall: time, zone: tzinfo, now: datetime, step: timedelta | None = None) -> datetime:
    """The first not past of: ``wall`` on ``day`` (first showing, then second), and on
    ``day + step``. If all are past, the first, for the caller to report."""
    candidates = [_wall_to_utc(day, wall, zone, fold) for fold in (0, 1)]
    if step is not None:
        candidates.append(_wall_to_utc(day + step, wall, zone))
    return next((c for c in candidates if not _is_past(c, now)), candidates[0])


def _wall_to_utc(day: date, wall: time, zone: tzinfo, fold: int = 0) -> datetime:
    """When the clock in ``zone`` shows ``wall`` on ``day`` (see module docstring)."""
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=fold).astimezone(UTC)


def _clock_time(text: str) -> time:
    hour, minute = (int(part) for part in text.split(":"))
    if hour > 23 or minute > 59:
        raise WhenError(f'"{text}" is not a time of day: use HH:MM from 00:00 to 23:59')
    return time(hour, minute)


def _weekday_number(word: str) -> int | None:
    for number, name in enumerate(_WEEKDAYS):
        if word in (name, name[:3]):
            return number
    return None


def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


def _next_weekday_after(day: date) -> date:
    day += timedelta(days=1)
    while not _is_weekday(day):
        day += timedelta(days=1)
    return day


def _is_past(instant: datetime, now: datetime) -> bool:
    return instant < now - PAST_TOLERANCE


def _format(instant: datetime, zone: tzinfo) -> str:
    wall = instant.astimezone(zone)
    weekday = _WEEKDAYS[wall.weekday()][:3].title()
    return f"{weekday} {wall:%Y-%m-%d %H:%M} {wall.tzname()}"


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")


def _zone_named(key: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed, a directory
        return None


def _zone_named_ignoring_case(name: str) -> ZoneInfo | None:
    matches = [key for key in available_timezones() if key.lower() == name.lower()]
    return _zone_named(matches[0]) if len(matches) == 1 else None


def _local_zone(environ: Mapping[str, str] = os.environ, localtime_path: str = LOCALTIME_PATH) -> tzinfo:
    """The machine's zone: a ZoneInfo when TZ or /etc/localtime gives one, else the
    current fixed offset (Windows, or a POSIX rule string in TZ such as ``JST-9``)."""
    if "TZ" in environ:
        zone = _zone_named(_zone_key(environ["TZ"]))
    else:
        zone = _zone_named(_zone_key(os.path.realpath(localtime_path)))
        zone = zone or _zone_from_file(localtime_path)
    return zone or datetime.now().astimezone().tzinfo or UTC


def _zone_key(value: str) -> str:
    """``Europe/Paris`` from ``:Europe/Paris`` or ``.../zoneinfo/Europe/Paris``."""
    value = value.removeprefix(":")
    return value.rpartition("/zoneinfo/")[2] if "/zoneinfo/" in value else value


def _zone_from_file(path: str) -> ZoneInfo | None:
    """An unnamed zone from a copied (not linked) /etc/localtime."""
    try:
        with open(path, "rb") as file:
            return ZoneInfo.from_file(file)
    except (OSError, ValueError):
        return None
