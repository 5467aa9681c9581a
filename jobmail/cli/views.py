"""What the commands show, as lines: the sent log (filter values, the table, CSV rows, the stored message),
the outbox's table and due times, a message's summary and preview, the guide's checklist, and the steps
of the account check.

No printing here (the CLI prints). Cheap to import: the email package is loaded only to decode a message
(`log show`, `--grep`, a preview), jobmail.when only to describe a due time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from jobmail import status
from jobmail.clock import local_time
from jobmail.errors import Command, InputError, JobmailError
from jobmail.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import tzinfo

    from jobmail.app.outbox import Entry
    from jobmail.app.sending import Prepared
    from jobmail.message.etiquette import Report
    from jobmail.smtp.diagnose import Step
    from jobmail.store.sentlog import SentLog

STATUSES = tuple(str(s) for s in status.ALL)

WHEN_FORMS = "a date (2026-11-01), a date and time (2026-11-01 14:30), today, yesterday, or 30m, 12h, 7d, 2w ago"
_AGO = re.compile(r"(\d{1,6})\s*(m|min|h|d|w)", re.IGNORECASE)
_AGO_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HEADER = ("TIME", "STATUS", "TO", "SUBJECT", "ID")
HEADER_WITH_CC = ("TIME", "STATUS", "TO", "CC", "SUBJECT", "ID")  # when a message shown has a Cc
SHORT_ID = 8
CSV_COLUMNS = (
    "id",
    "date",  # the record's time on this computer's clock: the date, and the time of day, in columns of
    "local_time",  # their own, as spreadsheets read dates (2026-12-04, 19:30:05)
    "time",  # the same instant in UTC, ISO 8601 (as the log stores it)
    "status",
    "to",
    "cc",
    "company",
    "position",
    "subject",
    "template",
    "from",
    "message_id",
    "due",
    "server",
    "tls",
    "reply_code",
    "reply_text",
    "attempts",
    "error",
)
# Fields of the message itself, shown once at the top of `log show`, not with each state.
MESSAGE_KEYS = (
    *("from", "to", "cc", "subject", "message_id", "template", "company", "position"),
    *("recipients", "body_sha256", "zone"),
)
_STATE_KEYS = ("due", "server", "tls", "reply", "attempt", "attempts", "retry_in", "error", "note")
# Shown by their own words (the Sent copy, an answer), or in `log show`'s Replies section (the excerpt).
_COPY_KEYS = ("sent_copy", "sent_copy_folder", "sent_copy_error")
_REPLY_KEYS = ("reply_from", "reply_date", "reply_subject", "reply_message_id", "reply_excerpt")
COPY_WORDS = {
    "pending": "Sent folder copy pending",
    "saved": "copy saved in Sent folder",
    "found": "already in Sent folder (no second copy)",
    "missing": "no Sent folder copy: the stored message is missing",
}


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


def row(record: dict, with_cc: bool = False) -> tuple[str, ...]:
    """TIME (local; for a scheduled message, when it is due), STATUS, TO, (CC,) SUBJECT, ID (short)."""
    pending = record.get("status") in status.WAITING and record.get("due")
    when = local_time(record["due"] if pending else record.get("time", ""))
    cc = (addresses(record.get("cc")),) if with_cc else ()
    return (
        when,
        status_cell(record),
        addresses(record.get("to")),
        *cc,
        str(record.get("subject", "")),
        record["id"][:SHORT_ID],
    )


def table(records: list[dict], width: int | None) -> list[str]:
    """Aligned columns, with CC when a message has one; the addresses and SUBJECT share what the terminal
    leaves and are cut with '…' (width None: no cut)."""
    with_cc = any(record.get("cc") for record in records)
    header = HEADER_WITH_CC if with_cc else HEADER
    rows = [header, *(row(r, with_cc) for r in records)]
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(header))]
    if width is not None:
        subject = len(header) - 2  # the columns between STATUS and SUBJECT hold addresses
        fixed = widths[0] + widths[1] + widths[-1] + 2 * (len(header) - 1)
        room = max(24 + 12 * with_cc, width - 1 - fixed)
        want_addresses, want_subject = sum(widths[2:subject]), widths[subject]
        if want_addresses + want_subject > room:
            share = min(want_addresses, max(room * 2 // 5, room - want_subject))
            if with_cc:  # To first: Cc gets what To leaves, and at least a third
                widths[3] = min(widths[3], max(share // 3, share - widths[2]))
                widths[2] = share - widths[3]
            else:
                widths[2] = share
            widths[subject] = room - share
    return aligned(rows, widths)


def aligned(rows: Iterable[Iterable[str]], widths: list[int]) -> list[str]:
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
    reply = record.get("reply")
    if not isinstance(reply, dict):
        reply = {}
    values = {
        **{key: record.get(key, "") for key in CSV_COLUMNS},
        "to": addresses(record.get("to")),
        "cc": addresses(record.get("cc")),
        **local_date_and_time(record.get("time")),
        "reply_code": reply.get("code", ""),
        "reply_text": reply.get("text", ""),
        "attempts": record.get("attempts", record.get("attempt", "")),
    }
    return [as_text_cell("" if values[key] is None else str(values[key])) for key in CSV_COLUMNS]


def local_date_and_time(stamp: object) -> dict[str, str]:
    """`date` and `local_time` of a record's time stamp, on this computer's clock (empty if unreadable)."""
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return {"date": "", "local_time": ""}
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone()
    return {"date": f"{local:%Y-%m-%d}", "local_time": f"{local:%H:%M:%S}"}


# A spreadsheet reads a cell that begins with one of these as a formula (`=HYPERLINK(...)` in a server's
# reply would become a live link): such a cell is written with a leading `'`, which shows it as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_cell(value: str) -> str:
    """The value as a spreadsheet shows it: as text, never as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


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
        ("Company", str(record.get("company", ""))),
        ("Position", str(record.get("position", ""))),
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
            if record.get("status") in status.WAITING or record.get("status") == Status.CANCELLED:
                details.append(f"due {local_time(str(value))} local{_in_zone(str(value), record.get('zone'))}")
        elif key == "reply" and "sent_copy" in record and not record.get("server"):
            continue  # a Sent copy's outcome, carrying the delivery's reply for `log`: said once, with it
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
    if record.get("reply_from"):
        details.append(f"answer from {record['reply_from']}: {record.get('reply_subject', '')}".rstrip(": "))
    if record.get("sent_copy"):
        copy = COPY_WORDS.get(str(record["sent_copy"]), f"Sent folder copy {record['sent_copy']}")
        folder = record.get("sent_copy_folder")
        error = record.get("sent_copy_error")
        details.append(copy + (f" {folder!r}" if folder else "") + (f" ({error})" if error else ""))
    known = {"id", "time", "status", *MESSAGE_KEYS, *_STATE_KEYS, *_COPY_KEYS, *_REPLY_KEYS}
    details += [f"{key}: {value}" for key, value in record.items() if key not in known]
    head = f"  {local_time(str(record.get('time', '')), seconds=True)}  {str(record.get('status')):<9}"
    return f"{head}  {'; '.join(details)}".rstrip()


def reply_line(record: dict) -> str:
    """An answer, in one line: the message's short id, when the answer was written, who, its subject."""
    when = local_time(str(record.get("reply_date") or record.get("time", "")))
    sender, subject = record.get("reply_from", ""), record.get("reply_subject", "")
    return f"  {record['id'][:SHORT_ID]}  {when}  {sender}  {subject}".rstrip()


def reply_lines(history: list[dict]) -> list[str]:
    """`log show`'s Replies section: each answer's sender, time, subject, Message-ID and first lines."""
    lines: list[str] = []
    for record in history:
        if record.get("status") != Status.REPLIED or not record.get("reply_from"):
            continue
        when = local_time(str(record.get("reply_date") or record.get("time", "")))
        lines.append(f"  {when}  from {record.get('reply_from')}: {record.get('reply_subject', '')}")
        if record.get("reply_message_id"):
            lines.append(f"    Message-ID: {record['reply_message_id']}")
        lines += [f"    | {line}" for line in str(record.get("reply_excerpt") or "").splitlines()]
    return lines


# -- the outbox ----------------------------------------------------------------------------------

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
OUTBOX_HEADER = ["ID", "STATUS", "DUE (LOCAL)", "DUE (THEIR ZONE)", "TO", "SUBJECT"]
# Outbox.state's words, as the table shows them.
STATE_LABELS = {"waiting": "scheduled", "due": "due now", "held": "overdue", "overdue": "overdue"}


def outbox_row(entry: Entry, state: str, local: tzinfo) -> list[str]:
    return [
        entry.id[:SHORT_ID],
        STATE_LABELS.get(state, state),
        wall_time(entry.due, local),
        zone_time(entry.due, entry.zone),
        ", ".join(entry.record.get("to", [])),
        entry.record.get("subject", ""),
    ]


def outbox_table(rows: list[list[str]], width: int | None) -> list[str]:
    """Aligned columns, the header first; the last one (the subject) is cut to fit the terminal (width
    None: no cut)."""
    rows = [OUTBOX_HEADER, *rows]
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    if width is not None:
        used = sum(widths[:-1]) + 2 * (len(widths) - 1)
        widths[-1] = max(10, min(widths[-1], width - 1 - used))
    return aligned(rows, widths)


def describe_due(due: datetime, zone: tzinfo | None) -> str:
    """`Mon 2026-11-30 09:00 EST (America/New_York)` and how far off it is (no zone: this computer's)."""
    from jobmail.when import describe, resolve_zone

    return describe(due, zone if zone is not None else resolve_zone(None))


def zone_key(zone: tzinfo | None) -> str:
    """The IANA name to store with the message; empty for an unnamed local zone (a fixed offset)."""
    return getattr(zone, "key", None) or ""


def zone_named(name: str) -> tzinfo:
    """The zone of that name, else this computer's."""
    from jobmail.when import resolve_zone

    try:
        return resolve_zone(name)
    except JobmailError:
        return resolve_zone(None)


def wall_time(instant: datetime, zone: tzinfo) -> str:
    wall = instant.astimezone(zone)
    return f"{WEEKDAYS[wall.weekday()]} {wall:%Y-%m-%d %H:%M} {wall.tzname()}"


def zone_time(instant: datetime, name: str) -> str:
    return f"{wall_time(instant, zone_named(name))} {name or '(local)'}"


def duration(seconds: float) -> str:
    whole = int(seconds + 0.999)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def countdown_text(entry: Entry | None, seconds: float | None, count: int) -> str:
    """The waiting line: which message goes next, and in how long."""
    if entry is None or seconds is None:
        return "Waiting: nothing scheduled (Ctrl-C stops)"
    more = f" (+{count - 1} more)" if count > 1 else ""
    return f"Sending {entry.id[:SHORT_ID]} in {duration(seconds)}{more}; Ctrl-C stops waiting"


# -- a message before it goes --------------------------------------------------------------------


def summary_lines(prepared: Prepared) -> list[str]:
    """Template, From, To ..., then the guide's checklist."""
    record = prepared.record
    lines = [f"Template:  {record['template']}", f"From:      {prepared.envelope.from_name} <{record['from']}>"]
    lines.append(f"To:        {', '.join(record['to'])}")
    if record["cc"]:
        lines.append(f"Cc:        {', '.join(record['cc'])}")
    if prepared.envelope.bcc_self:
        lines.append(f"Copy to:   {record['from']} (yourself, no Bcc header)")
    lines.append(f"Subject:   {record['subject']}")
    lines.append("Guide checklist:")
    return [*lines, *checklist_lines(prepared.report)]


def checklist_lines(report: Report) -> list[str]:
    """The etiquette checklist: one line per step of the guide, then each finding."""
    lines = []
    for step, title, passed, findings in report.checklist():
        mark = "ok  " if passed else ("FAIL" if any(f.severity == "error" for f in findings) else "warn")
        lines.append(f"  [{mark}] {step}. {title}")
        for finding in findings:
            where = f"line {finding.line}: " if finding.line and f"line {finding.line}" not in finding.message else ""
            lines.append(f"         {finding.severity}: {where}{finding.message}")
    if getattr(report, "note", None):
        lines.append(f"  note: {report.note}")
    return lines


def preview_lines(data: bytes) -> list[str]:
    """The header block as sent, then the plain-text body decoded (quoted-printable is hard to read)."""
    import email
    import email.policy

    head = data.partition(b"\r\n\r\n")[0].decode("ascii", "replace").split("\r\n")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content().replace("\r\n", "\n").rstrip("\n").split("\n") if body is not None else []
    extra = ["", "(and the same text as HTML, the alternative part)"] if msg.is_multipart() else []
    return [*head, "", *text, *extra]


def logged_parts(message_id: str, log_file: object = None) -> tuple[str | Command, ...]:
    """`Logged as 3f2a1b9c [in FILE]; see `python send.py log show 3f2a1b9c``."""
    short = message_id[:SHORT_ID]
    where = f" in {log_file}" if log_file is not None else ""
    return (f"Logged as {short}{where}; see ", Command("log", "show", short))


# -- the account check ---------------------------------------------------------------------------


def step_line(step: Step) -> str:
    """One step of the check and its result: `TLS ... ok (TLSv1.3)`, `login ... FAILED (535 ...)`."""
    if step.name == "keyring":
        return f"keyring: {step.detail}" if step.ok else "keyring: FAILED"
    return f"{step_start(step.title)} {step_result(step)}"


def step_start(title: str) -> str:
    """A step as it starts, before its result is known: `connect smtp.example.com:587 ...`."""
    return f"{title} ..."


def step_result(step: Step) -> str:
    """What follows step_start once the step has ended: `ok (TLSv1.3, ...)`, `FAILED (535 ...)`."""
    if step.ok:
        return step.mark + (f" ({step.detail})" if step.detail else "")
    return "FAILED" + (f" ({step.reply})" if step.reply else "")


def failure_lines(step: Step) -> list[str]:
    """The failed step's problem and hint as one `error:` line, then any longer guidance."""
    return [f"error: {step.problem}" + (f": {step.hint}" if step.hint else ""), *step.guidance]
