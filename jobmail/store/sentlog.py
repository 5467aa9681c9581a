"""The sent log: an append-only JSON Lines file of every state change of every message.

- `sent.jsonl`: one JSON object per line; a message's current state is its last line.
- `messages/<id>.eml`: the exact bytes of each message as sent (a queued message sent early or late is
  re-dated just before it goes out, and its copy replaced whole).
- `sent.jsonl.lock`: held for every append and every read-then-append, so concurrent processes never
  interleave or lose records (locks.py lists every lock of the folder, and their order).

Each record is written with one write call, then fsynced, before append() returns. A crash mid-write
leaves at most one torn last line: readers skip it with a warning, and the next append starts on a
fresh line. Files are created readable by the owner only (0600), folders 0700 (files.py).

The line layout, and why readers may rely on it, is in records.py: the id, time and status of a line
are read from its first bytes without parsing the JSON, and a `--to` filter tests the raw bytes of a
line (its To and Cc lists) before parsing it, so the newest line of a message holding the address is its
current state.

Reading is lazy and newest-first where it can be: the file is read backwards in blocks, so the latest
few messages cost the same at any size.

This module must stay cheap to import (no jinja2, keyring, smtplib or email; no pathlib, filelock,
logging or secrets): `send.py log` uses it.
"""

from __future__ import annotations

import json
import os

from jobmail import status
from jobmail.clock import timestamp, utc_now
from jobmail.errors import Command, InputError, JobmailError, LogLockedError
from jobmail.status import Status
from jobmail.store import files
from jobmail.store.files import LOG_NAME, MESSAGES_DIR
from jobmail.store.records import (
    MAX_LINE,
    MESSAGE_FIELDS,
    _check,
    _head,
    _id_needle,
    _literal,
    _matching_lines,
    _previous_newline,
    _recipients_may_hold,
    _stamp_bytes,
    _unterminated_tail,
    _within,
    encode_record,
    is_record_id,
    new_id,
)

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at every start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import datetime
    from pathlib import Path
    from typing import NamedTuple as Record

    from filelock import FileLock
else:
    from jobmail.frozen import Record

__all__ = [
    "FINAL",
    "LOG_NAME",
    "MAY_HAVE_GONE",
    "MESSAGES_DIR",
    "MESSAGE_FIELDS",
    "PENDING",
    "STATUSES",
    "LogLockedError",
    "Query",
    "SentLog",
    "encode_record",
    "is_record_id",
    "new_id",
    "timestamp",
    "utc_now",
]

# The states as plain strings, in Status order, for the modules that still import them from here
# (jobmail.status holds them, and their groups, as the Status enum).
STATUSES = tuple(str(s) for s in Status)
FINAL = tuple(str(s) for s in Status if s in status.FINAL)
PENDING = tuple(str(s) for s in Status if s in status.WAITING)  # waiting for its time, or for the user
MAY_HAVE_GONE = tuple(str(s) for s in Status if s in status.MAY_HAVE_GONE)  # never sent again on its own
_FIRST_BLOCK = 1 << 16  # the newest records: enough for the default view of 20 messages
_BLOCK = 1 << 20
_RESOLVE_KEYS = (b'"id":"', b'"id": "')  # append()'s layout, and json.dumps' default one


class _QueryFields(Record):
    statuses: frozenset[str] = frozenset()
    to: str = ""
    since: datetime | None = None
    until: datetime | None = None
    where: Callable[[dict], bool] | None = None


class Query(_QueryFields):
    """Which messages `SentLog.latest` yields, judged by their current (latest) record.

    statuses: the current status is one of these (empty: any; any iterable, kept as a frozenset). to: a
    substring of one of the To or Cc addresses, any case. since / until: the current record's time is within
    [since, until] (aware datetimes). where: any further test on the parsed record (e.g. a body search),
    applied last. An immutable named tuple (frozen.Record: no dataclasses, too slow for `send.py log`).
    """

    __slots__ = ()

    def __new__(
        cls,
        statuses: Iterable[str] = frozenset(),
        to: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[dict], bool] | None = None,
    ) -> Query:
        return super().__new__(cls, frozenset(statuses), to, since, until, where)

    def __bool__(self) -> bool:
        """True when it filters anything."""
        return self != _NO_QUERY


_NO_QUERY = Query()


class _Held:
    """The log's lock, held for a `with` block (re-entrant: the FileLock counts)."""

    def __init__(self, log: SentLog):
        self.log = log

    def __enter__(self) -> SentLog:
        self.log._acquire()
        return self.log

    def __exit__(self, *exc: object) -> None:
        assert self.log._lock is not None
        self.log._lock.release()


class SentLog:
    def __init__(self, directory: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None):
        """on_warning: called with a one-line text for each line skipped while reading (default: the
        module logger's warning).

        `folder` and `file` are strings: reading the log (`send.py log`) never imports pathlib, which
        costs ~3 ms of start-up; `directory`, `path` and `messages_dir` are the same as Path objects.
        """
        self.folder = os.fspath(directory)
        self.file = os.path.join(self.folder, LOG_NAME)
        self.on_warning = on_warning
        self._lock: FileLock | None = None
        self._tail: bytes | None = None  # the unterminated last line seen by the latest read, if any
        self._warned: set[bytes] = set()
        self._warned_long: set[int] = set()  # the sizes of the too-long lines already warned of

    @property
    def directory(self) -> Path:
        from pathlib import Path  # here, not at the top: reading the log never needs it

        return Path(self.folder)

    @property
    def path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def messages_dir(self) -> Path:
        return self.directory / MESSAGES_DIR

    # -- writing -------------------------------------------------------------------------------

    def ensure_dirs(self) -> None:
        """Create the log folder and messages/ (owner-only) if they do not exist."""
        self._ensure_dirs()

    def _ensure_dirs(self) -> None:
        files.ensure_private_dirs(self.directory, self.messages_dir)

    def locked(self) -> _Held:
        """Hold the log's lock: use it around a read-then-append that must not race another process.

        Re-entrant within one process and thread: append() inside a `with log.locked():` block is fine.
        """
        return _Held(self)

    def _acquire(self) -> None:
        # Imported here, not at the top: locks imports filelock (~35 ms), and `send.py log` only reads.
        # The one reader that takes the lock is _still_torn (a torn last line, checked once no one appends).
        from jobmail.store import locks

        self._ensure_dirs()
        if self._lock is None:
            self._lock = locks.log_lock(self.folder)
        locks.hold_log_lock(self._lock, self.path)

    def append(self, record: dict, moment: datetime | None = None) -> dict:
        """Append one record (adding its time), durably. Returns the record as written.

        A record without `to` gets the message's own fields (MESSAGE_FIELDS) from the message's
        previous record, so every line of a message can be filtered on its own.
        """
        _check(record)  # before taking the lock
        with self.locked():
            missing = [key for key in MESSAGE_FIELDS if key not in record]
            if "to" in missing:  # the field filters rely on; the others come along
                previous = self.current(record["id"])
                if previous is not None:
                    carried = {key: previous[key] for key in missing if key in previous}
                    record = {**carried, **record}
            full, line = encode_record(record, moment)
            files.append_line(self.file, line)
        return full

    def store_message(self, message_id: str, data: bytes) -> Path:
        """Keep the exact bytes of a message: written to a temporary file, fsynced, renamed over any
        earlier copy (so a reader sees the old copy or the new one, whole)."""
        self._ensure_dirs()
        target = self.message_path(message_id)
        files.write_atomically(target, data)
        return target

    def message_path(self, message_id: str) -> Path:
        """`messages/<id>.eml`; InputError for an id that is not one of ours (never a path of its own)."""
        if not is_record_id(message_id):
            raise InputError(f"{message_id!r} is not a message id of jobmail (12 hex digits): see ", Command("log"))
        return self.messages_dir / f"{message_id}.eml"

    def read_message(self, message_id: str) -> bytes | None:
        """The stored copy, or None if there is none; InputError for a bad id, a link or another's file."""
        try:
            fd = files.open_private(self.message_path(message_id), os.O_RDONLY, "message copy")
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    # -- reading -------------------------------------------------------------------------------

    def records_newest_first(self) -> Iterator[dict]:
        """Every record, last written first, reading the file backwards in blocks.

        Stops reading as soon as the caller stops iterating, so the newest few are cheap at any size.
        """
        for line in self._lines_backward():
            record = self._parse(line)
            if record is not None:
                yield record

    def records(self) -> Iterator[dict]:
        """Every record, oldest first."""
        for line in self._lines_forward():
            record = self._parse(line)
            if record is not None:
                yield record

    def latest_states(self) -> Iterator[dict]:
        """The current record of each message, most recently changed first (lazy)."""
        return self.latest()

    def latest(self, query: Query | None = None) -> Iterator[dict]:
        """The current record of each message that `query` selects, most recently changed first (lazy).

        Only the newest line of each message is parsed; with `query.to` only the lines holding that text
        are looked at (a bytes search over each block), so a filter over 100,000 records stays fast.
        """
        query = query or Query()
        wanted_to = query.to.strip().lower()
        needle = _literal(query.to.strip())
        statuses = {s.encode() for s in query.statuses} if query.statuses else None
        since = _stamp_bytes(query.since)
        until = _stamp_bytes(query.until)
        seen: set[bytes] = set()
        for line in self._lines_backward(needle, fold=True):
            head = _head(line)
            record = None
            if head is None or not line.endswith(b"}"):  # not in our layout (or torn): parse it all
                record = self._parse(line)
                if record is None:
                    continue
                key, stamp, state = (str(record.get(k, "")).encode("utf-8") for k in ("id", "time", "status"))
            else:
                key, stamp, state = head
            if key in seen:
                continue
            seen.add(key)
            if statuses is not None and state not in statuses:
                continue
            if (since is not None or until is not None) and not _within(stamp, since, until):
                continue
            if needle and record is None and not _recipients_may_hold(line, needle):
                continue
            if record is None:
                record = self._parse(line)
                if record is None:  # looked whole but is not JSON: let an older line of it count
                    seen.discard(key)
                    continue
            if wanted_to and not any(wanted_to in str(a).lower() for a in _recipients(record)):
                continue
            if query.where is not None and not query.where(record):
                continue
            yield record

    def current(self, message_id: str) -> dict | None:
        for line in self._lines_backward(_id_needle(message_id)):
            record = self._parse(line)
            if record is not None and record["id"] == message_id:
                return record
        return None

    def history(self, message_id: str) -> list[dict]:
        """Every record of one message, oldest first."""
        found: list[dict] = []
        for line in self._lines_backward(_id_needle(message_id)):
            record = self._parse(line)
            if record is not None and record["id"] == message_id:
                found.append(record)
        found.reverse()
        return found

    def resolve(self, prefix: str) -> str:
        """The full id of the one message whose id starts with `prefix`."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise InputError("give a message id (or a unique start of one): see ", Command("log"))
        matches: dict[str, dict] = {}  # id -> its newest record, newest first
        if '"' not in prefix and "\\" not in prefix:
            for key in _RESOLVE_KEYS:
                for line in self._lines_backward(key + prefix.encode("utf-8")):
                    record = self._parse(line)
                    if record is not None and str(record["id"]).startswith(prefix):
                        matches.setdefault(record["id"], record)
        if not matches:
            raise InputError(f"no message with an id starting {prefix!r}: see ", Command("log", "--all"))
        if len(matches) > 1:
            shown = [_candidate(record) for record in list(matches.values())[:6]]
            more = f" and {len(matches) - 6} more" if len(matches) > 6 else ""
            raise InputError(
                f"the id {prefix!r} is ambiguous: it matches {len(matches)} messages: "
                f"{'; '.join(shown)}{more}: give more of the id"
            )
        return next(iter(matches))

    # -- raw lines -----------------------------------------------------------------------------

    def _lines_backward(self, needle: bytes | None = None, fold: bool = False) -> Iterator[bytes]:
        """Each non-empty line, last first; with `needle`, only lines holding it (lowercased if `fold`).

        Reads backwards in blocks that grow from 64 KiB to 1 MiB, so stopping early reads little. Each
        block ends at a line's end; the partial line at its start is read again with the next block
        (no copying of blocks).
        """
        try:
            handle = os.fdopen(files.open_private(self.file, os.O_RDONLY, "sent log"), "rb")
        except FileNotFoundError:
            return
        with handle:
            end = handle.seek(0, os.SEEK_END)
            step = _FIRST_BLOCK
            first = True
            self._tail = None
            while end > 0:
                start = max(0, end - step)
                handle.seek(start)
                block = handle.read(end - start)
                low = 0
                if start > 0:
                    cut = block.find(b"\n")
                    if cut < 0 and end - start > MAX_LINE:  # a line too long to be a record: skip it unread
                        before = _previous_newline(handle, start)
                        self._skip_long(end - before - 1)
                        end = max(0, before)
                        step = _FIRST_BLOCK
                        first = False
                        continue
                    if cut < 0:  # one line longer than the block: read more of it
                        step *= 2
                        continue
                    low = cut + 1
                step = min(step * 4, max(step, _BLOCK))
                if first:
                    first = False
                    self._tail = block[block.rfind(b"\n") + 1 :] or None
                if needle is None:
                    lines = block.split(b"\n")
                    if low:
                        del lines[0]
                    found: Iterable[bytes] = reversed(lines)
                else:
                    found = _matching_lines(block, low, needle, fold)
                for line in found:
                    if len(line) > MAX_LINE:
                        self._skip_long(len(line))
                    elif line:
                        yield line
                end = start + low - 1 if low else 0

    def _lines_forward(self) -> Iterator[bytes]:
        try:
            handle = os.fdopen(files.open_private(self.file, os.O_RDONLY, "sent log"), "rb")
        except FileNotFoundError:
            return
        with handle:
            self._tail = _unterminated_tail(handle)
            handle.seek(0)
            carry = b""
            skipped = 0  # > 0 while passing over a line too long to be a record: its length so far
            while True:
                chunk = handle.read(_BLOCK)
                if not chunk:
                    break
                if skipped:
                    cut = chunk.find(b"\n")
                    if cut < 0:
                        skipped += len(chunk)
                        continue
                    self._skip_long(skipped + cut)
                    skipped, chunk = 0, chunk[cut + 1 :]
                lines = (carry + chunk).split(b"\n")
                carry = lines.pop()
                if len(carry) > MAX_LINE:
                    skipped, carry = len(carry), b""
                for line in lines:
                    if len(line) > MAX_LINE:
                        self._skip_long(len(line))
                    elif line:
                        yield line
            if skipped:
                self._skip_long(skipped)
            elif carry:
                yield carry

    def _parse(self, line: bytes) -> dict | None:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("id"), str) and isinstance(record.get("status"), str):
            return record
        self._skip(line)
        return None

    def _skip(self, line: bytes) -> None:
        if line in self._warned:
            return
        if line == self._tail:
            if not self._still_torn(line):
                return  # another process was writing it as we read: it is whole now, not torn
            text = (
                f"sent log {self.file}: skipped a torn last line (a write was interrupted, e.g. by a crash); "
                "the next record will start on a fresh line"
            )
        elif not line.strip():
            return
        else:
            text = f"sent log {self.file}: skipped an unreadable line: {line[:60]!r}"
        self._warned.add(line)
        self._warn(text)

    def _warn(self, text: str) -> None:
        if self.on_warning is not None:
            self.on_warning(text)
        else:
            import logging  # only to warn: `send.py log` does not import logging unless a line is bad

            logging.getLogger(__name__).warning("%s", text)

    def _skip_long(self, size: int) -> None:
        """Warn of a line too long to be a record, skipped without parsing it (once per log and size)."""
        if size in self._warned_long:
            return
        self._warned_long.add(size)
        self._warn(
            f"sent log {self.file}: skipped a line of {size:,} bytes (a record is under {MAX_LINE // (1 << 20)} "
            "MiB: this line was not written by jobmail)"
        )

    def _still_torn(self, tail: bytes) -> bool:
        """True when the file still ends with this unterminated line once no one is appending.

        The one read that takes the log's lock (locked() imports locks, so filelock, only then).
        """
        try:
            with self.locked(), open(self.file, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size < len(tail):
                    return False
                handle.seek(size - len(tail))
                return handle.read() == tail
        except (OSError, JobmailError):
            return True


def _recipients(record: dict) -> list:
    """The To and Cc addresses of a record."""
    return _as_list(record.get("to")) + _as_list(record.get("cc"))


def _as_list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _candidate(record: dict) -> str:
    to = ", ".join(str(a) for a in _as_list(record.get("to"))) or "?"
    return f"{record['id']} ({record.get('status')} {str(record.get('time', ''))[:16]} to {to})"
