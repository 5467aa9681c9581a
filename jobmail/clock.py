"""Time stamps: as the sent log writes them (UTC, ISO 8601, milliseconds) and as a person reads them.

Cheap to import (datetime only): `send.py log` shows every row through `local_time`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """`2026-12-03T18:30:00.123+00:00`: the log's own form, which sorts as text in time order."""
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec="milliseconds")


def local_time(stamp: str, seconds: bool = False) -> str:
    """A record's time stamp on this computer's clock (`2026-12-03 19:30`); anything unreadable as it is."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
