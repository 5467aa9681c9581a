"""From template to sent log: prepare a message, then deliver it while recording every state.

`prepare` renders, checks and builds (no network); `deliver` sends over SMTP and writes
`sending` (before DATA), `retrying`, then `sent` | `failed` | `unknown` to the sent log, all under
one record id. The outbox reuses `deliver` for scheduled messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from jobmail.errors import DuplicateError, OutcomeUnknown, SendError
from jobmail.message.compose import Draft, Envelope, build_message, message_bytes, render
from jobmail.settings import Settings
from jobmail.store.sentlog import MAY_HAVE_GONE, PENDING, SentLog, new_id


@dataclass(frozen=True)
class Prepared:
    """A message ready to send: its bytes, the checks' report, and the fields every record carries."""

    id: str
    draft: Draft
    envelope: Envelope
    data: bytes
    report: object  # etiquette.Report
    record: dict = field(default_factory=dict)


def prepare(settings: Settings, template: str, envelope: Envelope, variables: dict, now: datetime) -> Prepared:
    from jobmail.message.etiquette import check

    draft = render(settings.templates_dir, template, variables)
    if draft.cc:  # the template's Cc: header adds to --cc
        envelope = replace(envelope, cc=tuple(dict.fromkeys((*envelope.cc, *draft.cc))))
    if draft.reply_to and not envelope.reply_to:
        envelope = replace(envelope, reply_to=draft.reply_to)
    msg = build_message(draft, envelope, now, settings.max_message_bytes)
    data = message_bytes(msg)
    report = check(draft.subject, draft.body, envelope.from_name, draft.language)
    record = {
        "from": envelope.from_address,
        "to": list(envelope.to),
        "cc": list(envelope.cc),
        "subject": draft.subject,
        "message_id": msg["Message-ID"],
        "template": template,
        "recipients": envelope.recipients,
        "body_sha256": body_digest(draft.body),
    }
    return Prepared(new_id(), draft, envelope, data, report, record)


def body_digest(body: str) -> str:
    return hashlib.sha256(body.strip().encode("utf-8")).hexdigest()


def find_duplicate(log: SentLog, record: dict, statuses: tuple[str, ...] = PENDING + MAY_HAVE_GONE) -> dict | None:
    """An earlier message in one of `statuses` (default: waiting in the outbox, sent, or may have been)
    to the same people with the same subject and body."""
    from jobmail.store.sentlog import Query

    def key(rec: dict) -> tuple:
        return sorted(a.lower() for a in rec.get("to", [])), rec.get("subject"), rec.get("body_sha256")

    wanted = key(record)
    for earlier in log.latest(Query(statuses=frozenset(statuses), to=record["to"][0])):
        if key(earlier) == wanted:
            return earlier
    return None


def refuse_duplicate(log: SentLog, record: dict, statuses: tuple[str, ...] = PENDING + MAY_HAVE_GONE) -> None:
    """Raise DuplicateError naming the earlier identical message, and what to do instead."""
    earlier = find_duplicate(log, record, statuses)
    if earlier is None:
        return
    from jobmail.cli.views import local_time

    short = earlier["id"][:8]
    if earlier["status"] in PENDING:
        due = local_time(earlier.get("due") or earlier["time"])
        raise DuplicateError(
            f"this message is already in the outbox ({earlier['status']}, due {due}, id {short}): nothing new "
            f"sent; send it now with `python send.py outbox send-now {short}`, cancel it with "
            f"`python send.py outbox cancel {short}`, or add --force to send another copy"
        )
    status = {"sending": "is being sent", "unknown": "may already have been sent"}.get(
        earlier["status"], f"was already {earlier['status']}"
    )
    raise DuplicateError(
        f"this message {status} to {', '.join(earlier['to'])} on {local_time(earlier['time'])} "
        f"(id {short}): nothing sent; see `python send.py log show {short}`, "
        "or add --force to send it again"
    )


def password_provider(settings: Settings) -> Callable[[], str]:
    """Fetch the password from the keyring on first use only, and remember it for retries."""
    cache: list[str] = []

    def get() -> str:
        if not cache:
            from jobmail.auth.credentials import get_password

            cache.append(get_password(settings.smtp_host, settings.smtp_username, settings.keyring_backend))
        return cache[0]

    return get


def deliver(
    settings: Settings,
    log: SentLog,
    message_id: str,
    record: dict,
    data: bytes,
    password: Callable[[], str] | None = None,
    sleep: Callable[[float], None] | None = None,
    on_event: Callable[[str, dict], None] = lambda status, rec: None,
    keep_queued_on_interrupt: bool = False,
):
    """Send the stored bytes and record each state. Returns smtp.Delivered or raises SendError.

    Ctrl-C before the message data went out writes `failed`, or nothing at all with
    keep_queued_on_interrupt (the outbox: the message stays queued for the next run).
    """

    base = {"id": message_id, **record}
    state = {"sending": False, "keep_queued": keep_queued_on_interrupt}

    def write(status: str, **extra) -> None:
        rec = log.append({**base, "status": status, **extra})
        on_event(status, rec)

    def before_data(attempt: int) -> None:
        write("sending", server=settings.server, attempt=attempt)
        state["sending"] = True

    def on_retry(attempt: int, error: SendError, delay: float) -> None:
        write(
            "retrying",
            server=settings.server,
            attempt=attempt,
            error=str(error),
            reply=_reply(error),
            retry_in=round(delay, 1),
        )
        state["sending"] = False

    kwargs = {"sleep": sleep} if sleep is not None else {}
    password = password or password_provider(settings)
    if settings.needs_password:
        try:
            password()  # a missing password or keyring fails here, before any connection
        except Exception as exc:
            write("failed", server=settings.server, error=str(exc) or type(exc).__name__)
            raise
    with sender_lock(log, message_id):
        return _deliver_locked(settings, write, before_data, on_retry, password, record, data, state, kwargs)


def duplicate_guard(log: SentLog):
    """A lock held from the duplicate check until the send is over (immediate sends and the outbox)."""
    from filelock import FileLock

    log.ensure_dirs()
    return FileLock(str(log.directory / "send.lock"), mode=0o600)


def sender_lock(log: SentLog, message_id: str):
    """Held by the process delivering a message; a `sending` message whose lock is free was interrupted."""
    from filelock import FileLock

    log.ensure_dirs()
    return FileLock(str(log.messages_dir / f"{message_id}.lock"), mode=0o600)


def recover_interrupted(log: SentLog, records) -> list[dict]:
    """Settle the messages whose sending process died (their sender lock is free):

    - left `sending`: it may have reached the server: `unknown`, never retried on its own;
    - left `retrying` by an immediate send (no `due`): nothing was accepted: `failed`.
      (A queued message left `retrying` stays for the outbox, which sends it again.)

    Returns the records written.
    """
    from filelock import Timeout

    written = []
    for record in records:
        if not _needs_settling(record):
            continue
        try:
            with sender_lock(log, record["id"]).acquire(timeout=0):
                with log.locked():
                    current = log.current(record["id"])
                    if current is None or current.get("status") != record.get("status"):
                        continue
                    fields = {k: v for k, v in current.items() if k not in ("time", "status", "attempt", "retry_in")}
                    written.append(log.append({**fields, **_settled(current["status"])}))
        except Timeout:
            continue  # another process is delivering it right now
    return written


def _needs_settling(record: dict) -> bool:
    status = record.get("status")
    return status == "sending" or (status == "retrying" and not record.get("due"))


def _settled(status: str) -> dict:
    if status == "sending":
        return {
            "status": "unknown",
            "error": "the sending process stopped after the message data may have gone out: "
            "check your Sent folder before sending it again",
        }
    return {
        "status": "failed",
        "error": "the sending process stopped between two attempts: nothing was accepted; send it again",
    }


def _deliver_locked(settings, write, before_data, on_retry, password, record, data, state, kwargs):
    from jobmail.smtp import client as smtp

    try:
        done = smtp.send(
            settings,
            password,
            record["from"],
            record["recipients"],
            data,
            before_data=before_data,
            on_retry=on_retry,
            **kwargs,
        )
    except OutcomeUnknown as exc:
        write("unknown", server=settings.server, attempts=exc.attempts, error=str(exc), reply=_reply(exc))
        raise
    except SendError as exc:
        write("failed", server=settings.server, attempts=exc.attempts, error=str(exc), reply=_reply(exc))
        raise
    except KeyboardInterrupt:
        if state["sending"]:
            write("unknown", server=settings.server, error="interrupted while sending: check your Sent folder")
        elif not state["keep_queued"]:
            write("failed", server=settings.server, error="interrupted before the message was sent")
        raise
    except Exception as exc:  # e.g. the keyring failed: nothing was sent
        write("failed", server=settings.server, error=str(exc) or type(exc).__name__)
        raise
    try:
        write(
            "sent",
            server=done.server,
            tls=done.tls,
            reply={"code": done.code, "text": done.text},
            attempts=done.attempts,
        )
    except Exception as exc:  # delivered, but the log could not say so: never report "nothing sent"
        raise OutcomeUnknown(
            f"the server accepted the message ({done.code} {done.text}) but the sent log could not record it "
            f"({exc}): it was delivered; do not send it again"
        ) from None
    return done


def _reply(error: SendError) -> dict | None:
    return {"code": error.code, "text": error.reply} if error.code is not None else None
