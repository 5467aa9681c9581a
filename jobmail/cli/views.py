"""Reading the sent log as a person or a script: filter values, the table, CSV rows, and the stored message.

No printing here (the CLI prints). Cheap to import: the email package is loaded only to decode a stored
message (`log show`, `--grep`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from jobmail.clock import local_time
from jobmail.errors import InputError
from jobmail.store.sentlog import PENDING, STATUSES, SentLog

WHEN_FORMS = "a date (2026-11-01), a date and time (2026-11-01 14:30), today, yesterday, or 30m, 12h, 7d, 2w ago"
_AGO = re.compile(r"(\d{1,6})\s*(m|min|h|d|w)", re.IGNORECASE)
_AGO_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HEADER = ("TIME", "STATUS", "TO", "SUBJECT", "ID")
SHORT_ID = 8
CSV_COLUMNS = (
    "id",
    "time",
    "status",
    "to",
    "cc",
    "subject",
    "from",
    "message_id",
    "template",
    "due",
    "server",
    "tls",
    "reply_code",
    "reply_text",
    "attempts",
    "error",
)
# Fields of the message itself, shown once at the top of `log show`, not with each state.
MESSAGE_KEYS = ("from", "to", "cc", "subject", "message_id", "template", "recipients", "body_sha256", "zone")
_STATE_KEYS = ("due", "server", "tls", "reply", "attempt", "attempts", "retry_in", "error", "note")


# -- filter values -------------------------------------------------------------------------------


def parse_statuses(values: Iterable[str]) -> frozenset[str]:
    """`--status sent --status failed` or `--status sent,failed` -> {"sent", "failed"}."""
    chosen = {part.strip().lower() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(chosen - set(STATUSES))
    if unknown:
        raise InputError(f"--status {', '.join(unknown)}: not a status; use one or more of {', '.join(STATUSES)}")
    return frozenset(chosen)


def parse_when(text: str, option: str, now: datetime, end_of_day: bool = False) -> datetime:
    """An aware instant from `2026-11-01`, `2026-11-01 14:30`, `today`, `7d` (7 days before now) ...

    Dates and times without an offset are local time. With `end_of_day`, a bare date (or today,
    yesterday) means the last millisecond of that day, so `--until 2026-11-01` includes the whole day.
    """
    value = text.strip().lower()
    ago = _AGO.fullmatch(value)
    if ago:
        return now - timedelta(**{_AGO_UNITS[ago.group(2)]: int(ago.group(1))})
    day = None
    if value in ("today", "yesterday"):
        day = now.astimezone().date() - timedelta(days=value == "yesterday")
    elif _DATE.fullmatch(value):
        try:
            day = datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            raise InputError(f"{option} {text!r} is not a real date: {WHEN_FORMS}") from None
    if day is not None:
        if end_of_day:
            day += timedelta(days=1)
        start = datetime(day.year, day.month, day.day).astimezone()  # local midnight, with that day's offset
        return start - timedelta(milliseconds=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(value.upper().replace(" ", "T", 1))
    except ValueError:
        raise InputError(f"{option} {text!r} is not a time: {WHEN_FORMS}") from None
    return moment.astimezone() if moment.tzinfo is None else moment


def grep_filter(log: SentLog, text: str) -> Callable[[dict], bool]:
    """A test for `--grep TEXT`: the subject or the stored message's decoded body holds TEXT (any case)."""
    wanted = text.casefold()

    def matches(record: dict) -> bool:
        if wanted in str(record.get("subject", "")).casefold():
            return True
        data = log.read_message(record["id"])
        return data is not None and wanted in message_text(data).casefold()

    return matches


# -- the stored message --------------------------------------------------------------------------


def parse_message(data: bytes):
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(data)


def message_text(data: bytes) -> str:
    """The readable body: the text/plain part, decoded (else the HTML one; else nothing)."""
    try:
        part = parse_message(data).get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())
    except (LookupError, ValueError, TypeError):  # an unknown charset or a broken part: search the bytes
        return data.decode("utf-8", "replace")


def raw_text(data: bytes) -> str:
    """The stored bytes as text for a terminal (line endings as the platform's)."""
    return data.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")


def needs_decoding(data: bytes) -> bool:
    """Whether the raw message is hard to read: encoded headers, base64 / quoted-printable, or parts."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0].lower()
    encoded = re.search(rb"content-transfer-encoding:\s*(base64|quoted-printable)", data, re.IGNORECASE)
    return b"=?" in head or b"multipart/" in head or encoded is not None


def decoded_lines(data: bytes) -> list[str]:
    """The message's main headers, decoded, a blank line, then its text body."""
    msg = parse_message(data)
    lines = [f"{name}: {msg[name]}" for name in ("Date", "From", "To", "Cc", "Reply-To", "Subject") if msg[name]]
    return [*lines, "", *message_text(data).replace("\r\n", "\n").rstrip("\n").split("\n")]


# -- the table -----------------------------------------------------------------------------------


def _in_zone(stamp: str, zone: str | None) -> str:
    """ ", 09:00 in America/New_York": the due time as the recipient's clock shows it ("" without a zone)."""
    if not zone:
        return ""
    try:
        from zoneinfo import ZoneInfo

        moment = datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone))
    except (ValueError, TypeError, KeyError, OSError):
        return f" ({zone})"
    return f", {moment:%Y-%m-%d %H:%M} in {zone}"


def status_cell(record: dict) -> str:
    """`sent 250`, `failed 535`, `scheduled`: the state, and the server's reply code when there is one."""
    reply = record.get("reply")
    code = reply.get("code") if isinstance(reply, dict) else None
    return f"{record.get('status')} {code}" if code else str(record.get("status"))


def addresses(value) -> str:
    if value is None:
        return ""
    return ", ".join(str(a) for a in value) if isinstance(value, list | tuple) else str(value)


def row(record: dict) -> tuple[str, str, str, str, str]:
    """TIME (local; for a scheduled message, when it is due), STATUS, TO, SUBJECT, ID (short)."""
    pending = record.get("status") in PENDING and record.get("due")
    when = local_time(record["due"] if pending else record.get("time", ""))
    return (
        when,
        status_cell(record),
        addresses(record.get("to")),
        str(record.get("subject", "")),
        record["id"][:SHORT_ID],
    )


def table(records: list[dict], width: int | None) -> list[str]:
    """Aligned columns; TO and SUBJECT share what the terminal leaves and are cut with '…' (width None: no cut)."""
    rows = [HEADER, *(row(r) for r in records)]
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(HEADER))]
    if width is not None:
        room = max(24, width - 1 - (widths[0] + widths[1] + widths[4] + 2 * 4))
        want_to, want_subject = widths[2], widths[3]
        if want_to + want_subject > room:
            widths[2] = min(want_to, max(room * 2 // 5, room - want_subject))
            widths[3] = room - widths[2]
    return aligned(rows, widths)


def aligned(rows: list[list[str]], widths: list[int]) -> list[str]:
    """Each row's cells padded or cut ('…') to the column widths, two spaces apart."""
    return ["  ".join(fit(cell, w) for cell, w in zip(cells, widths, strict=True)).rstrip() for cells in rows]


def summary(records: list[dict], more: bool, filtered: bool) -> str:
    """`5 messages: 3 sent, 1 scheduled, 1 failed`, saying when more exist beyond the limit."""
    counts: dict[str, int] = {}
    for record in records:
        counts[str(record.get("status"))] = counts.get(str(record.get("status")), 0) + 1
    order = {status: index for index, status in enumerate(STATUSES)}
    parts = sorted(counts.items(), key=lambda item: (-item[1], order.get(item[0], len(order))))
    text = ", ".join(f"{count} {status}" for status, count in parts)
    noun = "message" if len(records) == 1 else "messages"
    what = f"{len(records)} {noun}{' matching' if filtered else ''}"
    if more:
        return f"the latest {what}: {text}; more exist: add --all, or --limit N, to see them"
    return f"{what}: {text}"


def display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """Pad to `width` columns, or cut to it with a final '…'."""
    if display_width(text) > width:
        cut = []
        used = 0
        for ch in text:
            w = display_width(ch)
            if used + w > width - 1:
                break
            cut.append(ch)
            used += w
        text = "".join(cut) + "…"
    return text + " " * (width - display_width(text))


# -- scripts: CSV --------------------------------------------------------------------------------


def csv_row(record: dict) -> list[str]:
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    values = {
        **{key: record.get(key, "") for key in CSV_COLUMNS},
        "to": addresses(record.get("to")),
        "cc": addresses(record.get("cc")),
        "reply_code": reply.get("code", ""),
        "reply_text": reply.get("text", ""),
        "attempts": record.get("attempts", record.get("attempt", "")),
    }
    return ["" if values[key] is None else str(values[key]) for key in CSV_COLUMNS]


# -- log show ------------------------------------------------------------------------------------


def message_lines(record: dict) -> list[str]:
    """The message's own fields, from its latest record."""
    fields = [
        ("From", addresses(record.get("from"))),
        ("To", addresses(record.get("to"))),
        ("Cc", addresses(record.get("cc"))),
        ("Subject", str(record.get("subject", ""))),
        ("Message-ID", str(record.get("message_id", ""))),
        ("Template", str(record.get("template", ""))),
    ]
    return [f"  {name + ':':<12} {value}" for name, value in fields if value]


def state_line(record: dict) -> str:
    """One state of the history: local time, status, then server, reply, error, attempts ..."""
    details = []
    for key in _STATE_KEYS:
        value = record.get(key)
        if value in (None, "", [], {}):
            continue
        if key == "due":
            if record.get("status") in PENDING or record.get("status") == "cancelled":
                details.append(f"due {local_time(str(value))} local{_in_zone(str(value), record.get('zone'))}")
        elif key == "reply" and isinstance(value, dict):
            text = " ".join(str(value.get("text", "")).split())
            details.append(f"server replied {value.get('code')} {text}".rstrip())
        elif key == "attempt":
            details.append(f"attempt {value}")
        elif key == "attempts":
            details.append(f"{value} attempt{'' if value == 1 else 's'}")
        elif key == "retry_in":
            details.append(f"retry in {value}s")
        elif key == "server":
            details.append(f"server {value}")
        elif key == "error":
            details.append(f"error: {value}")
        else:
            details.append(str(value))
    known = {"id", "time", "status", *MESSAGE_KEYS, *_STATE_KEYS}
    details += [f"{key}: {value}" for key, value in record.items() if key not in known]
    head = f"  {local_time(str(record.get('time', '')), seconds=True)}  {str(record.get('status')):<9}"
    return f"{head}  {'; '.join(details)}".rstrip()
