"""`track`: find the recruiters' answers in the mailbox and log each one as `replied`; retry Sent copies.

Rules, enforced here:
- A reply is a message in INBOX (or the provider's All Mail) whose In-Reply-To or References holds the
  Message-ID of a message we sent (`sent` or already `replied`), and whose From is not our own address
  (FROM_ADDRESS, SMTP_USERNAME, IMAP_USERNAME): our own follow-up quoting the thread is not an answer.
- One `replied` record per reply, keyed by the reply's Message-ID: running `track` twice adds nothing.
  The check and the appends happen under the log's lock, so two `track`s at once add it once too.
- Read-only on the mailbox: EXAMINE and BODY.PEEK (jobmail.imap.client); nothing is flagged or moved.
- The window: messages whose latest record is from the last WINDOW_DAYS days, and replies dated since
  then (IMAP SEARCH SINCE); `everything` drops both limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from jobmail import interrupts, status
from jobmail.app import sentcopy
from jobmail.app.sending import password_provider
from jobmail.imap import client as imap
from jobmail.settings import Settings
from jobmail.status import Status
from jobmail.store.records import MESSAGE_FIELDS
from jobmail.store.sentlog import Query, SentLog

WINDOW_DAYS = 60


@dataclass
class Tracked:
    """What one `track` did."""

    searched: int  # how many of our messages were looked for
    since: date | None  # replies dated from this day on (None: any time)
    folders: list[str] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)  # the `replied` records written
    copies: list[dict] = field(default_factory=list)  # the Sent copy records written


def track(
    settings: Settings,
    now: datetime,
    *,
    everything: bool = False,
    log: SentLog | None = None,
    secret: Callable[[], str] | None = None,
) -> Tracked:
    """Log in over IMAP, retry pending Sent copies, and record the new replies to our messages."""
    log = log if log is not None else SentLog(settings.log_folder)
    secret = secret or password_provider(settings)
    since = None if everything else now - timedelta(days=WINDOW_DAYS)
    ours = list(log.latest(Query(statuses=status.DELIVERED, since=since)))
    by_message_id = {str(record["message_id"]): record for record in ours if record.get("message_id")}
    day = since.date() if since is not None else None
    with imap.connect(settings, secret) as box:
        copies = sentcopy.retry_pending(settings, log, box, secret)
        folders = [folder.shown for folder in box.search_folders()]
        own = (settings.from_address, settings.smtp_username, settings.imap_username)
        found = box.replies(by_message_id, day, own) if by_message_id else []
    written = _record_replies(log, found, by_message_id)
    return Tracked(len(by_message_id), day, folders, written, copies)


def latest_from(settings: Settings, address: str, secret: Callable[[], str] | None = None) -> bytes:
    """`send --reply-to-latest ADDR`: the raw bytes of that person's latest message in INBOX."""
    from jobmail.errors import ConfigError, InputError

    if not settings.uses_imap:
        raise ConfigError(
            "--reply-to-latest reads your INBOX over IMAP: set IMAP_HOST (README: \"Sent folder and replies\"), "
            "or save their email and use --reply-to-message FILE"
        )
    with imap.connect(settings, secret or password_provider(settings)) as box:
        raw = box.latest_from(address)
    if raw is None:
        raise InputError(
            f"--reply-to-latest: no message from {address} in INBOX: check the address (as their emails show it), "
            "or save the email and use --reply-to-message FILE"
        )
    return raw


def _record_replies(log: SentLog, found: list[imap.Reply], ours: dict[str, dict]) -> list[dict]:
    written: list[dict] = []
    if not found:
        return written
    with interrupts.deferred(), log.locked():
        for reply in sorted(found, key=lambda r: r.date):
            message = ours[reply.answers]
            history = log.history(message["id"])
            known = {record.get("reply_message_id") for record in history if record.get("status") == Status.REPLIED}
            key = reply.message_id or f"{reply.sender} {reply.date} {reply.subject}"
            if key in known:
                continue
            current = history[-1] if history else message
            fields = {k: current[k] for k in (*MESSAGE_FIELDS, "message_id") if k in current}
            record = {
                "id": message["id"],
                "status": Status.REPLIED,
                **fields,
                "reply_from": f"{reply.sender_name} <{reply.sender}>" if reply.sender_name else reply.sender,
                "reply_date": reply.date,
                "reply_subject": reply.subject,
                "reply_message_id": key,
                "reply_excerpt": reply.excerpt,
            }
            if "sent_copy" in current:  # the copy's state rides on the current record (see sentcopy)
                record["sent_copy"] = current["sent_copy"]
            written.append(log.append(record))
    return written
