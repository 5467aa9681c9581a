"""The copy in the Sent folder: after the server's 250, and again later for a copy that could not be made.

Rules, enforced here:
- The copy never decides whether a message was sent. `sent` is written first, carrying
  `sent_copy: "pending"`; the copy's outcome is a later record of the message with the same status and
  `sent_copy` = `saved` (we appended it), `found` (a message with its Message-ID was already there: the
  provider filed it, or an earlier try did) or `pending` again with `sent_copy_error` (retried later).
- No duplicates: the folder is searched for the Message-ID before each APPEND, under `sent-copy.lock`,
  so neither a retry nor two processes at once append a second copy. (An APPEND the server carried out
  but whose answer was lost leaves `pending`; the retry then finds the copy and records `found`.)
- A message's current record carries its copy state (`track` copies it into each `replied` record), so
  the pending copies are the delivered messages whose current record says `pending`.

This module imports imaplib (through jobmail.imap.client): only the paths that use IMAP import it.
"""

from __future__ import annotations

from collections.abc import Callable

from filelock import Timeout

from jobmail import interrupts, status
from jobmail.errors import JobmailError
from jobmail.imap import client as imap
from jobmail.settings import Settings
from jobmail.store.locks import sent_copy_lock
from jobmail.store.records import MESSAGE_FIELDS
from jobmail.store.sentlog import Query, SentLog

PENDING = "pending"
SAVED = "saved"
FOUND = "found"


def save_after_send(settings: Settings, log: SentLog, record: dict, data: bytes, secret: Callable[[], str]) -> dict:
    """Copy one message just sent (its `sent` record says `pending`); returns the outcome record."""
    try:
        with sent_copy_lock(log.folder), imap.connect(settings, secret) as box:
            return _save(box, log, record, data)
    except (JobmailError, OSError, Timeout) as exc:
        return _record(log, record, PENDING, error=_why(exc))
    except Exception as exc:  # a fault of ours: the message is sent all the same, and says so (exit 0)
        why = f"an unexpected {type(exc).__name__} while making it (a fault in jobmail: please report it)"
        return _record(log, record, PENDING, error=why)


def pending(log: SentLog) -> list[dict]:
    """The delivered messages whose Sent copy is still to be made, oldest first."""
    found = [r for r in log.latest(Query(statuses=status.DELIVERED)) if r.get("sent_copy") == PENDING]
    found.reverse()
    return found


def retry_pending(settings: Settings, log: SentLog, box: imap.Mailbox | None, secret: Callable[[], str]) -> list[dict]:
    """Make the copies still pending (on `box` when one is open). Returns the outcome records written."""
    waiting = pending(log) if settings.copies_to_sent else []
    if not waiting:
        return []
    written: list[dict] = []
    try:
        with sent_copy_lock(log.folder):
            if box is not None:
                return _retry(box, log, waiting)
            with imap.connect(settings, secret) as opened:
                return _retry(opened, log, waiting)
    except (JobmailError, OSError, Timeout) as exc:
        error = _why(exc)
        written += [_record(log, record, PENDING, error=error) for record in waiting]
    return written


def _retry(box: imap.Mailbox, log: SentLog, waiting: list[dict]) -> list[dict]:
    written = []
    for record in waiting:
        current = log.current(record["id"])
        if current is None or current.get("sent_copy") != PENDING:
            continue  # made meanwhile
        data = log.read_message(record["id"])
        if data is None:
            written.append(_record(log, current, "missing", error=f"no stored copy: {log.message_path(record['id'])}"))
            continue
        written.append(_save(box, log, current, data))
    return written


def _save(box: imap.Mailbox, log: SentLog, record: dict, data: bytes) -> dict:
    try:
        folder = box.sent_folder()
        outcome = box.save_copy(folder, data, str(record.get("message_id", "")))
    except JobmailError as exc:
        return _record(log, record, PENDING, error=_why(exc))
    return _record(log, record, outcome, folder=folder.shown)


def _record(log: SentLog, record: dict, outcome: str, *, folder: str = "", error: str = "") -> dict:
    """Append the copy's outcome as a record of the message, in its current status."""
    with interrupts.deferred(), log.locked():
        current = log.current(record["id"]) or record
        if outcome == PENDING and current.get("sent_copy") == PENDING and current.get("sent_copy_error") == error:
            return current  # the same failure as last time (cron's `outbox run --once`): nothing new to say
        fields = {key: current[key] for key in (*MESSAGE_FIELDS, "message_id") if key in current}
        entry: dict = {"id": record["id"], "status": current["status"], **fields, "sent_copy": outcome}
        if isinstance(current.get("reply"), dict):  # the delivery's 250, as `log` shows it: `sent 250`
            entry["reply"] = current["reply"]
        if folder:
            entry["sent_copy_folder"] = folder
        if error:
            entry["sent_copy_error"] = error
        return log.append(entry)


def _why(exc: BaseException) -> str:
    if isinstance(exc, Timeout):
        return "another send.py held the Sent copy lock too long: tried again later"
    return str(exc) or type(exc).__name__
