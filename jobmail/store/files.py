"""Durable writes of the log folder's files, owner-only.

- `append_line`: one line added to the end of a file with one write call, then fsynced; a torn last line
  left by a crash is first ended, so the new line starts on a fresh one.
- `write_atomically`: a file's whole new content, written to a temporary file, fsynced and renamed over
  the old one (a reader sees the old content or the new, whole), then the folder fsynced.
- `ensure_private_dirs`: folders made 0700 (their parent fsynced); an existing one is used only when it is
  the user's own and no one else can write to it (else InputError), and is never chmodded; files are 0600.

No file of the log folder is opened through a symbolic link (O_NOFOLLOW where the OS has it): a link
there is refused with an InputError, never followed.

This module must stay cheap to import (`send.py log` imports it, and writes nothing): os only.
"""

from __future__ import annotations

import os
import stat

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
    """Create each folder (and its parents) owner-only if it does not exist. An existing folder must be
    ours, and no one else may write to it (they could add a message for us to send, or replace our
    records); it is never chmodded, since it may not be ours to change.

    Raises InputError naming the folder (and how to fix it) if it cannot be created or is not ours.
    """
    for folder in folders:
        if not os.path.isdir(folder):
            try:
                os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the log folder {folder}: {exc.strerror}: check LOG_DIR") from None
            _chmod(folder, DIR_MODE)  # ours: we just made it (makedirs' mode is narrowed by the umask only)
            _sync_dir(_parent(folder))
        check_ours(folder)


def check_ours(folder: str | os.PathLike[str]) -> None:
    """Raise InputError unless `folder` belongs to this user and no other user can write to it (POSIX;
    group-writable is fine when the group is the user's own private group)."""
    if os.name != "posix":
        return
    info = os.stat(folder)
    if info.st_uid != os.geteuid():
        raise InputError(
            f"the log folder {folder} belongs to another user (uid {info.st_uid}), who could add messages for "
            "jobmail to send as you: set LOG_DIR to a folder of your own (e.g. mkdir -m 700 ~/jobmail-log)"
        )
    if info.st_mode & 0o002 or (info.st_mode & 0o020 and not _private_group(info.st_gid)):
        raise InputError(
            f"others can write to the log folder {folder} (mode {info.st_mode & 0o7777:04o}), so they could add "
            f"messages for jobmail to send as you: run `chmod go-w {folder}`, or set LOG_DIR to a folder of your own"
        )


def _private_group(gid: int) -> bool:
    """Whether `gid` is this user's own group (named after the user, no other members)."""
    import grp
    import pwd

    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(gid)
    except (KeyError, OSError):
        return False
    return group.gr_name == user and set(group.gr_mem) <= {user} and os.getegid() == gid


def open_private(path: str | os.PathLike[str], flags: int, what: str = "file") -> int:
    """os.open without following a symbolic link (O_NOFOLLOW; elsewhere: a check first). InputError for a
    link or anything but a regular file of ours."""
    if not hasattr(os, "O_NOFOLLOW") and os.path.islink(path):
        raise _linked(path, what)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), FILE_MODE)
    except OSError:
        if os.path.islink(path):
            raise _linked(path, what) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (os.name == "posix" and info.st_uid != os.geteuid()):
        os.close(fd)
        raise InputError(f"the {what} {path} is not a file of yours: move it away (jobmail only uses its own files)")
    return fd


def _linked(path: str | os.PathLike[str], what: str) -> InputError:
    return InputError(
        f"the {what} {path} is a symbolic link, which jobmail does not follow in its log folder: replace it "
        "with the file itself, or set LOG_DIR to the folder the link points into"
    )


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append `line` (ending with a newline) to the file, creating it 0600, durably before returning.

    The caller holds the file's lock (one writer at a time).
    """
    created = not os.path.lexists(path)
    fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "sent log")
    try:
        info = os.fstat(fd)
        size = info.st_size
        if os.name != "nt" and info.st_mode & 0o077:  # made by hand, or by an older version: ours (checked)
            os.fchmod(fd, FILE_MODE)
        if size and _ends_without_newline(fd, size):
            line = b"\n" + line  # a torn last line from a crash: start on a fresh one
        _write_all(fd, line)
        _fsync(fd)
    finally:
        os.close(fd)
    if created:
        _sync_dir(_parent(path))


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file's content with `data` whole: written (0600) to `<name>.tmp` beside it, fsynced,
    renamed over the file (the temporary file removed if anything fails), then the folder fsynced."""
    tmp = os.path.splitext(os.fspath(path))[0] + _TMP_SUFFIX
    try:
        os.unlink(tmp)  # left by a crash (or put there): never written through
    except FileNotFoundError:
        pass
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "message copy")
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
    """chmod a folder we have just made (only those)."""
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise InputError(f"cannot make the new log folder {path} private: {exc.strerror}: check LOG_DIR") from None


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
