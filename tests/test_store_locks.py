"""Every lock file of the log folder: each is made where locks.py's docstring says, owner-only; the same
files as the app modules make today; and a held lock keeps a second process out (the child tries once
with timeout=0 and reports: no sleeps)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT

from jobmail.errors import InputError, LogLockedError
from jobmail.store import locks, sentlog
from jobmail.store.sentlog import SentLog

POSIX_ONLY = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX permission bits")


@pytest.fixture
def folder(tmp_path) -> str:
    return str(tmp_path / "log")


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def held(lock) -> str:
    """Take the lock, then release it; the file it made."""
    with lock:
        pass
    return lock.lock_file


# -- where each lock file is made --------------------------------------------------------------------


@POSIX_ONLY
@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda f: locks.log_lock(f), "sent.jsonl.lock"),
        (lambda f: locks.send_guard(f), "send.lock"),
        (lambda f: locks.sender_lock(f, "3f2a1b9c0d4e"), "messages/3f2a1b9c0d4e.lock"),
        (lambda f: locks.outbox_lock(f), "outbox.lock"),
        (lambda f: locks.sent_copy_lock(f), "sent-copy.lock"),
        (lambda f: locks.wake_lock(locks.wake_path(f, 4242, "beef")), "outbox-wake/4242-beef.lock"),
    ],
)
def test_each_lock_file_is_made_where_the_docstring_says_0600(folder, make, where):
    if where == "sent.jsonl.lock":
        SentLog(folder).ensure_dirs()  # the log's lock is taken by SentLog, after it made the folders
    if where.startswith("outbox-wake/"):
        assert locks.wake_dir(folder) == os.path.join(folder, "outbox-wake")
    path = held(make(folder))
    assert path == os.path.join(folder, *where.split("/"))
    assert os.path.isfile(path) and mode(path) == 0o600
    assert f"`{where.replace('3f2a1b9c0d4e', '<id>').replace('4242-beef', '<port>-<token>')}`" in locks.__doc__


def test_the_docstring_lists_every_lock_in_the_order_they_are_taken():
    doc = locks.__doc__
    order = doc[doc.index("Order.") :]
    tree = [line.split()[0] for line in order.split("\n\n")[1].splitlines()]
    assert tree == [
        "outbox-wake/<port>-<token>.lock",
        "send.lock",
        "messages/<id>.lock",
        "sent-copy.lock",
        "sent.jsonl.lock",
    ]
    assert "send.lock  or  outbox.lock" in order


def test_the_file_names_are_the_constants(folder):
    assert locks.LOG_LOCK == "sent.jsonl.lock" and locks.SEND_LOCK == "send.lock"
    assert locks.OUTBOX_LOCK == "outbox.lock" and locks.WAKE_DIR == "outbox-wake"
    assert locks.wake_port(locks.wake_path(folder, 4242, "beef")) == 4242
    assert locks.wake_port("x-beef.lock") is None and locks.wake_port("70000-beef.lock") is None


@POSIX_ONLY
def test_send_guard_and_sender_lock_make_the_log_folders_owner_only(folder):
    held(locks.send_guard(folder))
    assert mode(folder) == 0o700 and mode(os.path.join(folder, "messages")) == 0o700
    os.chmod(folder, 0o755)  # e.g. log/ as git made it: ours, and no one else can write to it
    held(locks.sender_lock(folder, "3f2a1b9c0d4e"))
    assert mode(folder) == 0o755  # used as it is: a folder is chmodded only when we made it


@POSIX_ONLY
@pytest.mark.parametrize("folder_mode", [0o777, 0o1777, 0o722])
def test_a_log_folder_others_can_write_is_refused_and_left_as_it_is(folder, folder_mode):
    os.makedirs(folder)
    os.chmod(folder, folder_mode)
    for take in (locks.send_guard, locks.outbox_lock, lambda f: locks.sender_lock(f, "3f2a1b9c0d4e")):
        with pytest.raises(InputError, match="others can write to the log folder .*chmod go-w"):
            take(folder)
    assert mode(folder) == folder_mode and os.listdir(folder) == []


@POSIX_ONLY
def test_outbox_and_wake_folders_are_made_0700(folder):
    held(locks.outbox_lock(folder))
    assert mode(folder) == 0o700
    assert mode(locks.wake_dir(folder)) == 0o700


def test_a_log_folder_that_cannot_be_made_is_an_input_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="cannot create the log folder .*: check LOG_DIR"):
        locks.send_guard(str(tmp_path / "file" / "log"))


def test_the_lock_files_keep_the_names_earlier_versions_made(folder):
    """A log folder written by an earlier version (or a process of one still running) uses these names."""
    log = SentLog(folder)
    assert held(locks.send_guard(folder)) == os.path.join(folder, "send.lock")
    assert held(locks.sender_lock(folder, "3f2a1b9c0d4e")) == os.path.join(folder, "messages", "3f2a1b9c0d4e.lock")
    with log.locked():
        assert os.path.samefile(locks.log_lock(folder).lock_file, os.path.join(folder, "sent.jsonl.lock"))
        assert locks.log_lock(folder) is log._lock  # one object per file in the process: re-entrant
    assert (locks.OUTBOX_LOCK, locks.WAKE_DIR) == ("outbox.lock", "outbox-wake")
    wake = Path(locks.wake_path(folder, 4242, "beef"))
    assert wake == Path(folder, "outbox-wake", "4242-beef.lock") and locks.wake_port(wake) == 4242


# -- a held lock keeps another process out ------------------------------------------------------------

TRY = """
import sys
from filelock import Timeout
from jobmail.store import locks, sentlog
folder, which = sys.argv[1], sys.argv[2]
lock = {
    "log": lambda: locks.log_lock(folder),
    "send": lambda: locks.send_guard(folder),
    "sender": lambda: locks.sender_lock(folder, "3f2a1b9c0d4e"),
    "outbox": lambda: locks.outbox_lock(folder),
    "wake": lambda: locks.wake_lock(locks.wake_path(folder, 4242, "beef")),
}[which]()
try:
    lock.acquire(timeout=0)
except Timeout:
    print("held")
else:
    lock.release()
    print("free")
"""


def other_process(*args: str, code: str = TRY) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_send_guard_excludes_a_second_process(folder):
    guard = locks.send_guard(folder)
    assert other_process(folder, "send") == "free"
    with guard:
        assert other_process(folder, "send") == "held"
        assert other_process(folder, "outbox") == "free"  # a different lock
    assert other_process(folder, "send") == "free"


@pytest.mark.parametrize("which", ["sender", "outbox", "wake"])
def test_each_other_lock_excludes_a_second_process(folder, which):
    locks.wake_dir(folder)
    make = {
        "sender": lambda: locks.sender_lock(folder, "3f2a1b9c0d4e"),
        "outbox": lambda: locks.outbox_lock(folder),
        "wake": lambda: locks.wake_lock(locks.wake_path(folder, 4242, "beef")),
    }[which]
    with make():
        assert other_process(folder, which) == "held"
    assert other_process(folder, which) == "free"


TIMED_OUT = """
import sys
from jobmail.errors import LogLockedError
from jobmail.store import locks, sentlog
lock = locks.log_lock(sys.argv[1])
lock.timeout = 0
try:
    locks.hold_log_lock(lock, "the-log")
except LogLockedError as exc:
    print(exc)
"""


def test_the_logs_lock_held_by_one_process_is_a_log_locked_error_in_another(folder):
    log = SentLog(folder)
    with log.locked():
        assert other_process(folder, "log") == "held"
        assert other_process(folder, code=TIMED_OUT) == (
            f"the sent log the-log stayed locked by another process for {locks.LOCK_TIMEOUT:g}s: "
            "wait for the other send.py to finish, then try again"
        )
    assert other_process(folder, "log") == "free"
    assert sentlog.LogLockedError is LogLockedError  # moved to jobmail.errors, still importable from here


READ_ONLY = """
import sys
from jobmail.store.sentlog import SentLog
log = SentLog(sys.argv[1])
print(len(list(log.latest())), "filelock" in sys.modules, "jobmail.store.locks" in sys.modules)
with log.locked():
    pass
print("filelock" in sys.modules)
"""


def test_reading_the_log_imports_no_locks_taking_one_does(folder):
    SentLog(folder).append({"id": "3f2a1b9c0d4e", "status": "sent", "to": ["a@acme.example"]})
    assert other_process(folder, code=READ_ONLY).split() == ["1", "False", "False", "True"]
