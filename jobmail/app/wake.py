"""Wake-ups: how a process that changed the outbox pokes the processes waiting on it.

Wake-ups. A waiting process registers itself as ``outbox-wake/<port>-<token>.lock`` in the log folder and
holds a file lock on that file while it lives. Scheduling, cancelling and send-now send one datagram to
each live waiter (a file whose lock can be taken belongs to a dead process and is removed). A datagram only
prompts a re-read of the log, so a lost or stray one does no harm.
"""

from __future__ import annotations

import logging
import secrets
import select
import socket
import time
from pathlib import Path

from filelock import BaseFileLock, Timeout

from jobmail.store.locks import WAKE_DIR, WAKE_SUFFIX, wake_dir, wake_lock, wake_path, wake_port
from jobmail.store.sentlog import SentLog

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
WAKE_MESSAGE = b"jobmail outbox changed"
RECHECK_SECONDS = 60.0
STALE_AFTER_SECONDS = 10.0  # a wake file this old whose lock is free belongs to a dead process


def wake_waiters(log: SentLog) -> int:
    """Poke every live waiting process of this log folder so it re-reads the log. Returns how many."""
    folder = log.directory / WAKE_DIR
    try:
        paths = sorted(folder.glob("*" + WAKE_SUFFIX))
    except OSError:
        return 0
    woken = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for path in paths:
            port = wake_port(path)
            if port is None:
                continue
            lock = wake_lock(path)
            try:
                lock.acquire(timeout=0)
            except Timeout:  # held: the waiter is alive
                try:
                    sock.sendto(WAKE_MESSAGE, (LOOPBACK, port))
                    woken += 1
                except OSError as exc:
                    logger.debug("could not wake the waiter on port %d: %s", port, exc)
                continue
            except OSError:
                continue
            lock.release()
            _remove_if_stale(path)
    return woken


def _remove_if_stale(path: Path) -> None:
    """Remove the wake file of a dead waiter (free lock), unless it is new: a waiter may be taking it."""
    try:
        if time.time() - path.stat().st_mtime > STALE_AFTER_SECONDS:
            path.unlink()
    except OSError:
        pass


class WakeSocket:
    """The UDP socket on 127.0.0.1 a waiting process sleeps on; other processes poke it (wake_waiters).

    If no socket can be made, waiting falls back to sleeping until the next due time or re-check.
    """

    def __init__(self, log: SentLog):
        self.log = log
        self.sock: socket.socket | None = None
        self.path: Path | None = None
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> WakeSocket:
        try:
            wake_dir(self.log.folder)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((LOOPBACK, 0))
                sock.setblocking(False)
                path = Path(wake_path(self.log.folder, sock.getsockname()[1], secrets.token_hex(4)))
                lock = wake_lock(path)
                lock.acquire()
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            logger.warning("no wake-up socket (%s): a cancel may take up to %gs to be noticed", exc, RECHECK_SECONDS)
            return self
        self.sock, self.path, self._lock = sock, path, lock
        return self

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if poked."""
        timeout = max(0.0, timeout)
        if self.sock is None:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        while True:  # drain every datagram: one re-read answers them all
            try:
                self.sock.recv(512)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:  # e.g. Windows reports an earlier unreachable port here
                return True

    def __exit__(self, *exc) -> None:
        if self._lock is not None and self.path is not None:
            self._lock.release()
            try:
                self.path.unlink()
            except OSError:
                pass
        if self.sock is not None:
            self.sock.close()
