"""Durable writes of the log folder's files, owner-only.

- `append_line`: one line added to the end of a file with one write call, then fsynced; a torn last line
  left by a crash is first ended, so the new line starts on a fresh one.
- `write_atomically`: a file's whole new content, written to a temporary file, fsynced and renamed over
  the old one (a reader sees the old content or the new, whole), then the folder fsynced.
- `ensure_private_dirs`: folders made 0700 (their parent fsynced); files are made 0600.

A chmod that fails (a shared folder that is not ours to change) is ignored.

This module must stay cheap to import (`send.py log` imports it, and writes nothing): os only.
"""

from __future__ import annotations

import os

from jobmail.errors import InputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# The log folder's own files (the lock files are in locks.py).
LOG_NAME = "sent.jsonl"
MESSAGES_DIR = "messages"
DIR_MODE = 0o700
FILE_MODE = 0o600
_TMP_SUFFIX = ".tmp"


def ensure_private_dirs(*folders: str | os.PathLike[str]) -> None:
    """Create each folder (and its parents) owner-only if it does not exist, or make it owner-only if
    others may read it (e.g. log/ as git made it, 0755: the records are personal).

    Raises InputError naming the folder if it cannot be created.
    """
    for folder in folders:
        if not os.path.isdir(folder):
            try:
                os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the log folder {folder}: {exc.strerror}: check LOG_DIR") from None
            _chmod(folder, DIR_MODE)
            _sync_dir(_parent(folder))
        elif os.name == "posix" and os.stat(folder).st_mode & 0o077:
            _chmod(folder, DIR_MODE)


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append `line` (ending with a newline) to the file, creating it 0600, durably before returning.

    The caller holds the file's lock (one writer at a time).
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    created = not os.path.exists(path)
    fd = os.open(path, flags, FILE_MODE)
    try:
        stat = os.fstat(fd)
        size = stat.st_size
        if os.name != "nt" and stat.st_mode & 0o077:  # made by hand, or by an older version
            _chmod(path, FILE_MODE)
        if size and _ends_without_newline(fd, size):
            line = b"\n" + line  # a torn last line from a crash: start on a fresh one
        _write_all(fd, line)
        _fsync(fd)
    finally:
        os.close(fd)
    if created:
        _chmod(path, FILE_MODE)
        _sync_dir(_parent(path))


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file's content with `data` whole: written (0600) to `<name>.tmp` beside it, fsynced,
    renamed over the file (the temporary file removed if anything fails), then the folder fsynced."""
    tmp = os.path.splitext(os.fspath(path))[0] + _TMP_SUFFIX
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), FILE_MODE)
    try:
        try:
            _write_all(fd, data)
            _fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_dir(_parent(path))


def _parent(path: str | os.PathLike[str]) -> str:
    """The folder holding `path`, as Path.parent gives it ("." for a bare name)."""
    text = os.fspath(path)
    stripped = text.rstrip(os.sep + (os.altsep or "")) or text
    return os.path.dirname(stripped) or os.curdir


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


def _chmod(path: str | os.PathLike[str], mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:  # not ours to change (a shared folder): the files inside are still 0600
        pass


def _fsync(fd: int) -> None:
    """Flush to the disk itself: on macOS plain fsync stops at the drive's cache (F_FULLFSYNC does not)."""
    if fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:  # some file systems refuse F_FULLFSYNC
            pass
    os.fsync(fd)


def _sync_dir(folder: str | os.PathLike[str]) -> None:
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
