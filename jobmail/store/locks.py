"""Every lock file of the log folder, made here: what each one guards, and the order they are taken in.

All are `filelock.FileLock`s (an OS lock on an open file: freed by the OS when its process dies, so a
lock that can be taken belongs to no live process), their files created 0600 in the log folder.

1. `sent.jsonl.lock` (`log_lock`): the sent log's own lock, held for every append and every
   read-then-append (`SentLog.locked()`), so no two processes interleave lines or decide on the same old
   state. Re-entrant, and one lock object per file in a process (is_singleton), so nesting two SentLogs
   of one folder cannot deadlock the process against itself. Waits LOCK_TIMEOUT, then LogLockedError.
2. `send.lock` (`send_guard`): held from the duplicate check until an immediate send, or the storing of a
   scheduled message, is over: two identical sends started at once cannot both pass the check.
3. `messages/<id>.lock` (`sender_lock`): held by the process delivering that message, from before
   `sending` is written until its outcome is; a `sending` (or `retrying`) message whose lock is free was
   interrupted, and recovery settles it (`unknown`, never resent on its own; or `failed`).
4. `outbox.lock` (`outbox_lock`, taken with `hold_outbox_lock`): every claim, delivery and cancel of an
   outbox message: the holder re-reads the message's state and acts only if it is still claimable, so a
   message is delivered once, and a cancel either comes before any delivery or sees that it lost. Its
   holder writes who it is to `outbox.lock.owner`; a process that waits longer than the holder's own
   deadline (one delivery's) gets a LogLockedError naming that process.
5. `outbox-wake/<port>-<token>.lock` (`wake_lock`, its path from `wake_path`): held by each waiting
   process while it lives; the others find the live waiters by trying these locks (`timeout=0`) and send
   one datagram to each port. A free one belongs to a dead waiter and is removed.
6. `sent-copy.lock` (`sent_copy_lock`): held while Sent folder copies are made over IMAP (after a send's
   250, or retrying pending ones in `outbox run` and `track`): its holder searches the folder, appends,
   and records the outcome, so two processes never both find "not there yet" and append twice.

Order. A process takes them only in this order (outermost first), so no two processes wait for each other:

    outbox-wake/<port>-<token>.lock      a waiting process (outbox wait / run), for its whole life
      send.lock  or  outbox.lock         never both (an immediate send or a schedule; an outbox claim)
        messages/<id>.lock               delivering the message (app.sending.deliver)
        sent-copy.lock                   the Sent copies (after messages/<id>.lock is released; or alone)
          sent.jsonl.lock                each append and read-then-append (innermost, re-entrant)

- immediate send: send.lock -> sent.jsonl.lock (recovery, duplicate check, the stored copy), released;
  then, still under send.lock, messages/<id>.lock -> sent.jsonl.lock for each record of the delivery.
- the Sent copy (app.sentcopy), after a delivery's messages/<id>.lock is released, under the send.lock or
  outbox.lock still held; or alone (`track`, `outbox run` retrying): sent-copy.lock -> sent.jsonl.lock.
- schedule: send.lock -> sent.jsonl.lock (duplicate check, the stored copy, the `scheduled` record).
- outbox claim (due, send-now): outbox.lock -> [sent.jsonl.lock: `overdue` or a missing copy's `failed`]
  -> messages/<id>.lock -> sent.jsonl.lock.  cancel: outbox.lock -> sent.jsonl.lock.
- a waiting process: outbox-wake/... for its life, and inside it the outbox claim above.
- recovery (app.recovery.recover_interrupted): messages/<id>.lock, only tried -> sent.jsonl.lock.
- a reader checking a torn last line (SentLog._still_torn): sent.jsonl.lock alone.

A lock is taken against this order only with `timeout=0`, never waited for, so it cannot deadlock:
recovery inside an immediate send tries messages/<id>.lock while holding sent.jsonl.lock (a held one
means its sender is alive: the message is left alone), and waking the waiters (after scheduling,
cancelling or send-now, with no other lock held) tries each outbox-wake lock. Waiting for a sender to
finish (Outbox.settle) takes messages/<id>.lock with no other lock held.

"Exactly once" rests on this: outbox.lock makes each claim a read-then-write no other claim or cancel
can interleave with; send.lock does the same for the duplicate check; messages/<id>.lock tells a live
delivery from an interrupted one; sent.jsonl.lock makes each decision and the record it writes one step.

filelock costs ~35 ms to import: only the commands that write import this module (`send.py log` reads
without it; SentLog imports it when it first takes its lock).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from jobmail.errors import LogLockedError
from jobmail.store.files import LOG_NAME, MESSAGES_DIR, ensure_private_dirs

LOG_LOCK = LOG_NAME + ".lock"  # sent.jsonl.lock
SEND_LOCK = "send.lock"
SENDER_LOCK_SUFFIX = ".lock"  # messages/<id>.lock
OUTBOX_LOCK = "outbox.lock"
OUTBOX_OWNER = OUTBOX_LOCK + ".owner"  # "<pid> <unix time> <command words>" of the outbox lock's holder
SENT_COPY_LOCK = "sent-copy.lock"
WAKE_DIR = "outbox-wake"
WAKE_SUFFIX = ".lock"  # outbox-wake/<port>-<token>.lock
LOCK_MODE = 0o600
LOCK_TIMEOUT = 30.0  # seconds to wait for another process's append before giving up with an error
LOCK_POLL = 0.002  # filelock polls; a record is written in milliseconds, so poll often


def log_lock(folder: str) -> FileLock:
    """`sent.jsonl.lock`: the sent log's own lock (re-entrant; the same object for the same file in this
    process). Take it with `hold_log_lock`, which turns a timeout into LogLockedError. The caller has made
    the folder (SentLog.ensure_dirs)."""
    # One lock object per file in this process (is_singleton): two SentLog objects for the same folder
    # share it, so nesting them cannot deadlock the process against itself.
    return FileLock(
        os.path.join(folder, LOG_LOCK), timeout=LOCK_TIMEOUT, mode=LOCK_MODE, is_singleton=True, poll_interval=LOCK_POLL
    )


def hold_log_lock(lock: FileLock, shown: object) -> None:
    """Acquire the log's lock, or raise LogLockedError naming the log (`shown`: its path) after LOCK_TIMEOUT."""
    try:
        lock.acquire()
    except Timeout:
        raise LogLockedError(
            f"the sent log {shown} stayed locked by another process for {LOCK_TIMEOUT:g}s: "
            "wait for the other send.py to finish, then try again"
        ) from None


def send_guard(folder: str) -> FileLock:
    """`send.lock`: held from the duplicate check until the send (or the schedule) is over. Makes the log
    folders (owner-only; InputError if it cannot)."""
    _ensure_log_dirs(folder)
    return FileLock(os.path.join(folder, SEND_LOCK), mode=LOCK_MODE)


def sender_lock(folder: str, message_id: str) -> FileLock:
    """`messages/<id>.lock`: held by the process delivering the message. Makes the log folders."""
    _ensure_log_dirs(folder)
    return FileLock(os.path.join(folder, MESSAGES_DIR, message_id + SENDER_LOCK_SUFFIX), mode=LOCK_MODE)


def outbox_lock(folder: str) -> FileLock:
    """`outbox.lock`: every claim, delivery and cancel of an outbox message. Makes the log folder (0700 when
    new; InputError if it cannot, or if it is not ours alone)."""
    ensure_private_dirs(folder)
    return FileLock(os.path.join(folder, OUTBOX_LOCK), mode=LOCK_MODE)


@contextmanager
def hold_outbox_lock(folder: str, timeout: float) -> Iterator[None]:
    """Hold `outbox.lock`, waiting at most `timeout` seconds; then LogLockedError, naming the process
    that holds it (from `outbox.lock.owner`) and what to do."""
    lock = outbox_lock(folder)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LogLockedError(_held_by(folder, timeout)) from None
    try:
        _write_owner(os.path.join(folder, OUTBOX_OWNER))
        yield
    finally:
        lock.release()


def _write_owner(path: str) -> None:
    words = " ".join(word for word in sys.argv[1:4] if not word.startswith("-"))  # "outbox run", never a value
    text = f"{os.getpid()} {time.time():.0f} {words}\n".encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, LOCK_MODE)
    except OSError:
        return  # the lock works without it; only the message when it is busy says less
    try:
        os.write(fd, text)
    finally:
        os.close(fd)


def _held_by(folder: str, timeout: float) -> str:
    """The one line that says the outbox is busy: who holds its lock, and what to do."""
    path = os.path.join(folder, OUTBOX_LOCK)
    try:
        fd = os.open(os.path.join(folder, OUTBOX_OWNER), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            pid, since, *words = os.read(fd, 512).decode("utf-8", "replace").split()
        finally:
            os.close(fd)
        pid_number, started = int(pid), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(since)))
    except (OSError, ValueError):
        return (
            f"another process has held {path} for more than {timeout:g}s: wait for the other send.py to finish, "
            "or stop it if it hangs, then try again"
        )
    command = f"send.py {' '.join(words)}".strip()
    return (
        f"process {pid_number} ({command}, since {started}) has held {path} for more than {timeout:g}s: wait for "
        f"it to finish, or stop it if it hangs (kill {pid_number}), then try again"
    )


def sent_copy_lock(folder: str) -> FileLock:
    """`sent-copy.lock`: held while Sent folder copies are searched for, appended and recorded. Waits
    LOCK_TIMEOUT (then filelock's Timeout: the copy stays pending). Makes the log folders."""
    ensure_private_dirs(folder)
    return FileLock(os.path.join(folder, SENT_COPY_LOCK), timeout=LOCK_TIMEOUT, mode=LOCK_MODE)


def wake_dir(folder: str) -> str:
    """`outbox-wake/` in the log folder, made (0700 when new; an OSError if it cannot); its path."""
    path = os.path.join(folder, WAKE_DIR)
    ensure_private_dirs(folder, path)
    return path


def wake_path(folder: str, port: int, token: str) -> str:
    """The wake file of the waiter listening on `port`: `outbox-wake/<port>-<token>.lock`."""
    return os.path.join(folder, WAKE_DIR, f"{port}-{token}{WAKE_SUFFIX}")


def wake_port(path: str | os.PathLike[str]) -> int | None:
    """The port a wake file names, or None if its name is not `<port>-<token>.lock`-like."""
    try:
        port = int(os.path.basename(path).split("-", 1)[0])
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def wake_lock(path: str | os.PathLike[str]) -> FileLock:
    """The lock on a wake file: held by its waiter while it lives (`acquire(timeout=0)` tells a live one)."""
    return FileLock(os.fspath(path), mode=LOCK_MODE)


def _ensure_log_dirs(folder: str) -> None:
    ensure_private_dirs(folder, os.path.join(folder, MESSAGES_DIR))
