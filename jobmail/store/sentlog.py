"""The sent log: an append-only JSON Lines file of every state change of every message.

- `sent.jsonl`: one JSON object per line; a message's current state is its last line.
- `messages/<id>.eml`: the exact bytes of each message as sent (a queued message sent early or late is
  re-dated just before it goes out, and its copy replaced whole).
- `sent.jsonl.lock`: a cross-platform lock (filelock) held for every append and every
  read-then-append, so concurrent processes never interleave or lose records.

Each record is written with one write call, then fsynced, before append() returns. A crash mid-write
leaves at most one torn last line: readers skip it with a warning, and the next append starts on a
fresh line. Files are created readable by the owner only (0600), folders 0700.

Layout. append() writes compact JSON (no spaces, UTF-8) that always starts
`{"id":"<id>","time":"<UTC, ISO 8601, ms>","status":"<status>",...`, and every record of a message
repeats the message's own fields (`from`, `to`, `cc`, `subject`; append() copies them from the
message's previous record into a record that has no `to`). Readers rely on both: the id, time and status of a
line are read from its first bytes without parsing the JSON, and a `--to` filter tests the raw bytes of a
line before parsing it, so the newest line of a message holding the address is its current state.

Reading is lazy and newest-first where it can be: the file is read backwards in blocks, so the latest
few messages cost the same at any size.

This module must stay cheap to import (no jinja2, keyring, smtplib or email): `send.py log` uses it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from jobmail.errors import InputError, JobmailError

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at every start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

LOG_NAME = "sent.jsonl"
MESSAGES_DIR = "messages"
STATUSES = ("scheduled", "sending", "retrying", "sent", "failed", "unknown", "cancelled", "overdue")
FINAL = ("sent", "failed", "unknown", "cancelled")
PENDING = ("scheduled", "overdue")  # waiting for its time, or for the user (overdue)
MAY_HAVE_GONE = ("sending", "sent", "unknown")  # the server may have it: never sent again on its own
# The message's own fields: every record of a message carries them (see the module docstring).
MESSAGE_FIELDS = ("from", "to", "cc", "subject")
LOCK_TIMEOUT = 30.0  # seconds to wait for another process's append before giving up with an error
LOCK_POLL = 0.002  # filelock polls; a record is written in milliseconds, so poll often
_FIRST_BLOCK = 1 << 16  # the newest records: enough for the default view of 20 messages
_BLOCK = 1 << 20
_ID_OPEN = b'{"id":"'
_TIME_KEY = b'","time":"'
_STATUS_KEY = b'","status":"'
_TO_KEY = b'"to":['
_STAMP_LEN = len("2026-01-01T00:00:00.000+00:00")


class LogLockedError(JobmailError):
    """Another process held the sent log's lock for too long."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    """12 hex digits: short to type, and unique enough for one person's mail."""
    import secrets

    return secrets.token_hex(6)


def encode_record(record: dict, moment: datetime | None = None) -> tuple[dict, bytes]:
    """The record as append() writes it (id, time and status first, then the rest) and its line."""
    _check(record)
    full = {"id": record["id"], "time": timestamp(moment), "status": record["status"]}
    full.update({k: v for k, v in record.items() if k not in full})
    line = (json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    return full, line


def _check(record: dict) -> None:
    if record.get("status") not in STATUSES:
        raise ValueError(f"unknown status {record.get('status')!r}")
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError(f"a record needs an id, got {record.get('id')!r}")


class Query:
    """Which messages `SentLog.latest` yields, judged by their current (latest) record.

    statuses: the current status is one of these (empty: any). to: a substring of one of the To
    addresses, any case. since / until: the current record's time is within [since, until] (aware
    datetimes). where: any further test on the parsed record (e.g. a body search), applied last.
    (A plain class, not a dataclass: dataclasses imports inspect, too slow for `send.py log`.)
    """

    __slots__ = ("statuses", "to", "since", "until", "where")

    def __init__(
        self,
        statuses: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        to: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[dict], bool] | None = None,
    ):
        self.statuses = frozenset(statuses)
        self.to = to
        self.since = since
        self.until = until
        self.where = where

    def _key(self) -> tuple:
        return self.statuses, self.to, self.since, self.until, self.where

    def __eq__(self, other) -> bool:
        return isinstance(other, Query) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __bool__(self) -> bool:
        """True when it filters anything."""
        return self != Query()

    def __repr__(self) -> str:
        return "Query(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"


class _Held:
    """The log's lock, held for a `with` block (re-entrant: the FileLock counts)."""

    def __init__(self, log: SentLog):
        self.log = log

    def __enter__(self) -> SentLog:
        self.log._acquire()
        return self.log

    def __exit__(self, *exc) -> None:
        self.log._lock.release()


class SentLog:
    def __init__(self, directory: str | os.PathLike, on_warning: Callable[[str], None] | None = None):
        """on_warning: called with a one-line text for each line skipped while reading (default: the
        module logger's warning).

        `folder` and `file` are strings: reading the log (`send.py log`) never imports pathlib, which
        costs ~3 ms of start-up; `directory`, `path` and `messages_dir` are the same as Path objects.
        """
        self.folder = os.fspath(directory)
        self.file = os.path.join(self.folder, LOG_NAME)
        self.on_warning = on_warning
        self._lock = None
        self._tail = None  # the unterminated last line seen by the latest read, if any
        self._warned: set[bytes] = set()

    @property
    def directory(self) -> Path:
        from pathlib import Path

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
        for folder in (self.directory, self.messages_dir):
            if not folder.is_dir():
                try:
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise InputError(f"cannot create the log folder {folder}: {exc.strerror}: check LOG_DIR") from None
                _chmod(folder, 0o700)
                _sync_dir(folder.parent)
            elif os.name == "posix" and os.stat(folder).st_mode & 0o077:
                _chmod(folder, 0o700)  # e.g. log/ as git made it (0755): the records are personal

    def locked(self) -> _Held:
        """Hold the log's lock: use it around a read-then-append that must not race another process.

        Re-entrant within one process and thread: append() inside a `with log.locked():` block is fine.
        """
        return _Held(self)

    def _acquire(self) -> None:
        self._ensure_dirs()
        if self._lock is None:
            from filelock import FileLock

            # One lock object per file in this process (is_singleton): two SentLog objects for the same
            # folder share it, so nesting them cannot deadlock the process against itself.
            self._lock = FileLock(
                self.file + ".lock", timeout=LOCK_TIMEOUT, mode=0o600, is_singleton=True, poll_interval=LOCK_POLL
            )
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            raise LogLockedError(
                f"the sent log {self.path} stayed locked by another process for {LOCK_TIMEOUT:g}s: "
                "wait for the other send.py to finish, then try again"
            ) from None

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
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            created = not self.path.exists()
            fd = os.open(self.path, flags, 0o600)
            try:
                stat = os.fstat(fd)
                size = stat.st_size
                if os.name != "nt" and stat.st_mode & 0o077:  # made by hand, or by an older version
                    _chmod(self.path, 0o600)
                if size and _ends_without_newline(fd, size):
                    line = b"\n" + line  # a torn last line from a crash: start on a fresh one
                _write_all(fd, line)
                _fsync(fd)
            finally:
                os.close(fd)
            if created:
                _chmod(self.path, 0o600)
                _sync_dir(self.directory)
        return full

    def store_message(self, message_id: str, data: bytes) -> Path:
        """Keep the exact bytes of a message: written to a temporary file, fsynced, renamed over any
        earlier copy (so a reader sees the old copy or the new one, whole)."""
        self._ensure_dirs()
        target = self.message_path(message_id)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            try:
                _write_all(fd, data)
                _fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _sync_dir(self.messages_dir)
        return target

    def message_path(self, message_id: str) -> Path:
        return self.messages_dir / f"{message_id}.eml"

    def read_message(self, message_id: str) -> bytes | None:
        try:
            return self.message_path(message_id).read_bytes()
        except FileNotFoundError:
            return None

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
                head = tuple(str(record.get(k, "")).encode("utf-8") for k in ("id", "time", "status"))
            key, stamp, status = head
            if key in seen:
                continue
            seen.add(key)
            if statuses is not None and status not in statuses:
                continue
            if (since is not None or until is not None) and not _within(stamp, since, until):
                continue
            if needle and record is None and not _to_may_hold(line, needle):
                continue
            if record is None:
                record = self._parse(line)
                if record is None:  # looked whole but is not JSON: let an older line of it count
                    seen.discard(key)
                    continue
            if wanted_to and not any(wanted_to in str(a).lower() for a in _as_list(record.get("to"))):
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
        found = []
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
            raise InputError("give a message id (or a unique start of one): see `python send.py log`")
        matches: dict[str, dict] = {}  # id -> its newest record, newest first
        if '"' not in prefix and "\\" not in prefix:
            for key in (b'"id":"', b'"id": "'):  # append()'s layout, and json.dumps' default one
                for line in self._lines_backward(key + prefix.encode("utf-8")):
                    record = self._parse(line)
                    if record is not None and str(record["id"]).startswith(prefix):
                        matches.setdefault(record["id"], record)
        if not matches:
            raise InputError(f"no message with an id starting {prefix!r}: see `python send.py log --all`")
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
            handle = open(self.file, "rb")
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
                    for line in reversed(lines):
                        if line:
                            yield line
                else:
                    yield from _matching_lines(block, low, needle, fold)
                end = start + low - 1 if low else 0

    def _lines_forward(self) -> Iterator[bytes]:
        try:
            handle = open(self.file, "rb")
        except FileNotFoundError:
            return
        with handle:
            self._tail = _unterminated_tail(handle)
            handle.seek(0)
            carry = b""
            while True:
                chunk = handle.read(_BLOCK)
                if not chunk:
                    break
                lines = (carry + chunk).split(b"\n")
                carry = lines.pop()
                for line in lines:
                    if line:
                        yield line
            if carry:
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
        if self.on_warning is not None:
            self.on_warning(text)
        else:
            import logging

            logging.getLogger(__name__).warning("%s", text)

    def _still_torn(self, tail: bytes) -> bool:
        """True when the file still ends with this unterminated line once no one is appending."""
        try:
            with self.locked(), open(self.file, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size < len(tail):
                    return False
                handle.seek(size - len(tail))
                return handle.read() == tail
        except (OSError, JobmailError):
            return True


def _unterminated_tail(handle) -> bytes | None:
    """The file's last line when no newline ends it (a torn write, or one in progress), else None."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return None
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return None
    step = 1 << 12
    while True:
        start = max(0, end - step)
        handle.seek(start)
        block = handle.read(end - start)
        cut = block.rfind(b"\n")
        if cut >= 0 or start == 0:
            return block[cut + 1 :]
        step *= 4


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


def _head(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(id, time, status) read from the first bytes of a line in append()'s layout, or None."""
    if not line.startswith(_ID_OPEN):
        return None
    id_end = line.find(b'"', 7)
    if id_end <= 7 or line[id_end - 1] == 92 or not line.startswith(_TIME_KEY, id_end):  # 92: a backslash
        return None
    time_end = line.find(b'"', id_end + 10)
    if time_end < 0 or not line.startswith(_STATUS_KEY, time_end):
        return None
    status_end = line.find(b'"', time_end + 12)
    if status_end < 0:
        return None
    return line[7:id_end], line[id_end + 10 : time_end], line[time_end + 12 : status_end]


def _to_may_hold(line: bytes, needle: bytes) -> bool:
    """False only when the line's To list surely lacks `needle` (so the line need not be parsed)."""
    at = line.find(_TO_KEY)
    if at < 0:
        return True
    end = line.find(b'],"', at)  # a list's end: inside a JSON string a quote is always escaped
    return needle in line[at + 6 : end if end >= 0 else len(line)].lower()


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
    return b'"' + message_id.encode("utf-8") + b'"'


def _stamp_bytes(moment: datetime | None) -> bytes | None:
    return None if moment is None else timestamp(moment).encode("ascii")


def _within(stamp: bytes, since: bytes | None, until: bytes | None) -> bool:
    """Whether a record's time is within [since, until]: bytes order for append()'s own format."""
    if len(stamp) != _STAMP_LEN or not stamp.endswith(b"+00:00"):
        try:
            stamp = timestamp(datetime.fromisoformat(stamp.decode("ascii"))).encode("ascii")
        except (ValueError, UnicodeDecodeError):
            return False
    return (since is None or stamp >= since) and (until is None or stamp <= until)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _candidate(record: dict) -> str:
    to = ", ".join(str(a) for a in _as_list(record.get("to"))) or "?"
    return f"{record['id']} ({record.get('status')} {str(record.get('time', ''))[:16]} to {to})"


def _ends_without_newline(fd: int, size: int) -> bool:
    """True when the file's last byte is not a newline (lseek + read: os.pread is POSIX-only)."""
    position = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, size - 1, os.SEEK_SET)
    last = os.read(fd, 1)
    os.lseek(fd, position, os.SEEK_SET)
    return last != b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:  # not ours to change (a shared folder): the files inside are still 0600
        pass


def _fsync(fd: int) -> None:
    """Flush to the disk itself: on macOS plain fsync stops at the drive's cache (F_FULLFSYNC does not)."""
    try:
        import fcntl

        if hasattr(fcntl, "F_FULLFSYNC"):
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
    except (ImportError, OSError):  # Windows has no fcntl; some file systems refuse F_FULLFSYNC
        pass
    os.fsync(fd)


def _sync_dir(folder: Path) -> None:
    """Make a new name in `folder` durable (POSIX; Windows cannot open a folder and needs no such step)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        _fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
