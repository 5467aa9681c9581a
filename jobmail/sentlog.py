"""The sent log: an append-only JSON Lines file of every state change of every message.

- `sent.jsonl`: one JSON object per line; a message's current state is its last line.
- `messages/<id>.eml`: the exact bytes of each message, written once.
- `sent.jsonl.lock`: a cross-platform lock (filelock) held for every append and every
  read-then-append, so concurrent processes never interleave or lose records.

Each record is flushed and fsynced before append() returns. A crash mid-write leaves at most one
torn last line: readers skip it with a warning, and the next append starts on a fresh line.
Files and the folder are created readable by the owner only.

This module must stay cheap to import (no jinja2, keyring or smtplib): `send.py log` uses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import InputError

logger = logging.getLogger(__name__)

LOG_NAME = "sent.jsonl"
MESSAGES_DIR = "messages"
STATUSES = ("scheduled", "sending", "retrying", "sent", "failed", "unknown", "cancelled", "overdue")
FINAL = ("sent", "failed", "unknown", "cancelled")
_CHUNK = 1 << 16


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    """12 hex digits: short to type, and unique enough for one person's mail."""
    return secrets.token_hex(6)


class SentLog:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self.messages_dir = self.directory / MESSAGES_DIR
        self._lock = None

    # -- writing -------------------------------------------------------------------------------

    def _ensure_dirs(self) -> None:
        for folder in (self.directory, self.messages_dir):
            if not folder.is_dir():
                try:
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise InputError(f"cannot create the log folder {folder}: {exc.strerror}: check LOG_DIR") from None
                _chmod(folder, 0o700)

    @contextlib.contextmanager
    def locked(self):
        """Hold the log's lock: use it around a read-then-append that must not race another process."""
        self._ensure_dirs()
        if self._lock is None:
            from filelock import FileLock

            self._lock = FileLock(str(self.path) + ".lock", mode=0o600)
        with self._lock:
            yield self

    def append(self, record: dict, moment: datetime | None = None) -> dict:
        """Append one record (adding its time), durably. Returns the record as written."""
        if record.get("status") not in STATUSES:
            raise ValueError(f"unknown status {record.get('status')!r}")
        full = {"id": record["id"], "time": timestamp(moment), "status": record["status"]}
        full.update({k: v for k, v in record.items() if k not in full})
        line = (json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self.locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and _ends_without_newline(fd, size):
                    line = b"\n" + line  # a torn last line from a crash: start on a fresh one
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return full

    def store_message(self, message_id: str, data: bytes) -> Path:
        """Keep the exact bytes of a message, once: written to a temporary file, fsynced, renamed."""
        self._ensure_dirs()
        target = self.message_path(message_id)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
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
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            end = handle.seek(0, os.SEEK_END)
            tail = b""
            first = True
            while end > 0:
                start = max(0, end - _CHUNK)
                handle.seek(start)
                block = handle.read(end - start) + tail
                end = start
                lines = block.split(b"\n")
                tail = lines.pop(0) if start > 0 else b""
                for raw in reversed(lines):
                    record = _parse(raw, torn=first)
                    first = False if raw.strip() else first
                    if record is not None:
                        yield record
            if tail:
                record = _parse(tail, torn=False)
                if record is not None:
                    yield record

    def records(self) -> Iterator[dict]:
        """Every record, oldest first."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            lines = handle.read().split(b"\n")
        for index, raw in enumerate(lines):
            record = _parse(raw, torn=index >= len(lines) - 2)
            if record is not None:
                yield record

    def latest_states(self) -> Iterator[dict]:
        """The current record of each message, most recently changed first (lazy)."""
        seen: set[str] = set()
        for record in self.records_newest_first():
            if record["id"] not in seen:
                seen.add(record["id"])
                yield record

    def current(self, message_id: str) -> dict | None:
        for record in self.records_newest_first():
            if record["id"] == message_id:
                return record
        return None

    def history(self, message_id: str) -> list[dict]:
        return [r for r in self.records() if r["id"] == message_id]

    def resolve(self, prefix: str) -> str:
        """The full id of the one message whose id starts with `prefix`."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise InputError("give a message id (or a unique start of one): see `python send.py log`")
        matches = sorted({r["id"] for r in self.records() if r["id"].startswith(prefix)})
        if not matches:
            raise InputError(f"no message with an id starting {prefix!r}: see `python send.py log --all`")
        if len(matches) > 1:
            raise InputError(f"the id {prefix!r} is ambiguous; it matches {', '.join(matches)}: give more of it")
        return matches[0]


def _parse(raw: bytes, torn: bool) -> dict | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or "id" not in record or "status" not in record:
        what = "a torn last line (an interrupted write)" if torn else "an unreadable line"
        logger.warning("sent log: skipped %s: %.60r", what, raw)
        return None
    return record


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
        logger.debug("could not chmod %s", path)
