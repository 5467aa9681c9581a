"""The sent log's record layout, and the byte-level helpers that read a line without parsing it.

Layout. `encode_record` (so `SentLog.append`) writes each record as one line of compact JSON (no
spaces, UTF-8, not ASCII-escaped) that always starts

    {"id":"<id>","time":"<UTC, ISO 8601, ms>","status":"<status>",...

e.g. `{"id":"3f2a1b9c0d4e","time":"2026-03-02T12:00:00.000+00:00","status":"sent",...`, and every
record of a message repeats the message's own fields (MESSAGE_FIELDS: `from`, `to`, `cc`, `subject`;
append() copies them from the message's previous record into a record that has no `to`), with `to` a
JSON list: `"to":["a@example.com",...],"...`.

Why readers may rely on it. Only append() writes the log, always through `encode_record`, so a line
that starts with `{"id":"` is in this layout: `_head` reads its id, time and status at the fixed offsets
below without parsing the JSON (and gives None for any other line, which the reader then parses whole);
the time has one fixed length and offset (STAMP_LEN, always `+00:00`), so times compare as bytes
(`_within`); and because every line of a message carries its To and Cc lists, a `--to` filter may test a
line's raw bytes (`_matching_lines`, `_recipients_may_hold`) and the newest line holding the address is
the message's current state. Inside a JSON string a quote is always escaped, so the first unescaped quote after an
opening one ends the value. A line by another writer (spaces, other key order, escaped non-ASCII) is
still read correctly, only more slowly: every helper here falls back to "parse it" rather than guess.

This module must stay cheap to import (`send.py log` uses it): json, os and datetime only.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from jobmail import status
from jobmail.clock import timestamp  # a record's time stamp (UTC, ISO 8601, ms): STAMP_LEN long

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at every start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

# The message's own fields: every record of a message carries them (see the module docstring); a
# record written before `template`, `company`, `position` and `body_sha256` were among them may lack those.
MESSAGE_FIELDS = ("from", "to", "cc", "subject", "template", "company", "position", "body_sha256")

# -- the first bytes of a line, and the offsets read from them ------------------------------------
_ID_OPEN = b'{"id":"'  # a line starts so; the id follows
_TIME_KEY = b'","time":"'  # from the id's closing quote to the time
_STATUS_KEY = b'","status":"'  # from the time's closing quote to the status
_QUOTE = b'"'
_BACKSLASH = ord("\\")  # before a quote, it escapes it: the id did not end there
ID_START = len(_ID_OPEN)  # the id's first byte, from the line's start
TIME_START = len(_TIME_KEY)  # the time's first byte, from the id's closing quote
STATUS_START = len(_STATUS_KEY)  # the status's first byte, from the time's closing quote

# -- the To and Cc lists ----------------------------------------------------------------------------
_TO_KEY = b'"to":['
_CC_KEY = b'"cc":['
_LIST_END = b'],"'  # a list's end, followed by the next key
TO_START = len(_TO_KEY)  # the list's first byte, from where `"to":[` starts
CC_START = len(_CC_KEY)  # the same for `"cc":[`

# -- a line's size -----------------------------------------------------------------------------------
# No record append() writes comes near it (a subject, a few addresses, a server reply cut at 300
# characters): a longer line is not ours, and readers skip it with a warning, holding at most this
# much of it in memory, never parsing it.
MAX_LINE = 1 << 20  # 1 MiB, the newline excluded
_SCAN = 1 << 20  # how much of a skipped line is read at a time while looking for its start or end

# -- the time --------------------------------------------------------------------------------------
STAMP_LEN = len("2026-01-01T00:00:00.000+00:00")  # `timestamp()`'s length, the same for every time
_UTC_SUFFIX = b"+00:00"


def is_record_id(text: object) -> bool:
    """Whether `text` is an id new_id() makes: 12 lowercase hex digits (so it can name a file)."""
    return isinstance(text, str) and len(text) == 12 and all(ch in "0123456789abcdef" for ch in text)


def new_id() -> str:
    """12 hex digits: short to type, and unique enough for one person's mail."""
    import secrets  # only a send makes an id: `send.py log` does not pay for importing secrets

    return secrets.token_hex(6)


def encode_record(record: dict, moment: datetime | None = None) -> tuple[dict, bytes]:
    """The record as append() writes it (id, time and status first, then the rest) and its line."""
    _check(record)
    full = {"id": record["id"], "time": timestamp(moment), "status": record["status"]}
    full.update({k: v for k, v in record.items() if k not in full})
    line = (json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    return full, line


def _check(record: dict) -> None:
    if record.get("status") not in status.ALL:
        raise ValueError(f"unknown status {record.get('status')!r}")
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError(f"a record needs an id, got {record.get('id')!r}")


# -- reading lines without parsing them -----------------------------------------------------------


def _head(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(id, time, status) read from the first bytes of a line in append()'s layout, or None."""
    if not line.startswith(_ID_OPEN):
        return None
    id_end = line.find(_QUOTE, ID_START)
    if id_end <= ID_START or line[id_end - 1] == _BACKSLASH or not line.startswith(_TIME_KEY, id_end):
        return None
    time_end = line.find(_QUOTE, id_end + TIME_START)
    if time_end < 0 or not line.startswith(_STATUS_KEY, time_end):
        return None
    status_end = line.find(_QUOTE, time_end + STATUS_START)
    if status_end < 0:
        return None
    return line[ID_START:id_end], line[id_end + TIME_START : time_end], line[time_end + STATUS_START : status_end]


def _matching_lines(block: bytes, low: int, needle: bytes, fold: bool) -> Iterator[bytes]:
    """The lines of block[low:] that hold `needle`, last first (a C-speed search, not a loop over lines)."""
    haystack = block.lower() if fold else block
    high = len(haystack)
    while True:
        at = haystack.rfind(needle, low, high)
        if at < 0:
            return
        start = block.rfind(b"\n", 0, at) + 1
        end = block.find(b"\n", at)
        yield block[start : end if end >= 0 else len(block)]
        high = start


def _recipients_may_hold(line: bytes, needle: bytes) -> bool:
    """False only when the line's To and Cc lists surely lack `needle` (so the line need not be parsed)."""
    return _list_may_hold(line, _TO_KEY, TO_START, needle) or _list_may_hold(line, _CC_KEY, CC_START, needle)


def _list_may_hold(line: bytes, key: bytes, start: int, needle: bytes) -> bool:
    at = line.find(key)
    if at < 0:
        return True
    end = line.find(_LIST_END, at)  # a list's end: inside a JSON string a quote is always escaped
    return needle in line[at + start : end if end >= 0 else len(line)].lower()


def _literal(text: str) -> bytes | None:
    """The longest stretch of `text` that appears byte for byte in a lowercased log line, for a
    prefilter: ASCII, and no character JSON would escape."""
    best = ""
    for piece in "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "\0" for ch in text).split("\0"):
        if len(piece) > len(best):
            best = piece
    return best.lower().encode("ascii") if best else None


def _id_needle(message_id: str) -> bytes | None:
    """The id as a JSON string: in every line of the message, whatever the layout."""
    if '"' in message_id or "\\" in message_id or not message_id.isprintable():
        return None
    return _QUOTE + message_id.encode("utf-8") + _QUOTE


def _stamp_bytes(moment: datetime | None) -> bytes | None:
    return None if moment is None else timestamp(moment).encode("ascii")


def _within(stamp: bytes, since: bytes | None, until: bytes | None) -> bool:
    """Whether a record's time is within [since, until]: bytes order for append()'s own format."""
    if len(stamp) != STAMP_LEN or not stamp.endswith(_UTC_SUFFIX):
        try:
            stamp = timestamp(datetime.fromisoformat(stamp.decode("ascii"))).encode("ascii")
        except (ValueError, UnicodeDecodeError):
            return False
    return (since is None or stamp >= since) and (until is None or stamp <= until)


def _unterminated_tail(handle: BinaryIO) -> bytes | None:
    """The file's last line when no newline ends it (a torn write, or one in progress), else None."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return None
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return None
    step = 1 << 12
    while True:
        if step > 4 * MAX_LINE:  # too long to be a record: readers skip it by its length
            return None
        start = max(0, end - step)
        handle.seek(start)
        block = handle.read(end - start)
        cut = block.rfind(b"\n")
        if cut >= 0 or start == 0:
            return block[cut + 1 :]
        step *= 4


def _previous_newline(handle: BinaryIO, end: int) -> int:
    """The offset of the last newline before `end`, or -1 when none is: read backwards in _SCAN pieces,
    so a skipped line of any length costs memory of one piece."""
    while end > 0:
        start = max(0, end - _SCAN)
        handle.seek(start)
        at = handle.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at
        end = start
    return -1
