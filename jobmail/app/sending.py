"""How a message is sent now: prepare it, admit it to the log, deliver it while recording every state.

- `prepare` renders the template, builds the message and checks it against the guide (no network, no
  disk).
- `send_now` is the whole "send it now" transaction: under the send guard (see jobmail.store.locks) it
  settles messages whose sending process died, refuses a duplicate (unless forced) and stores the exact
  bytes, then delivers them, on the connection the command opened ahead while this was done
  (jobmail.app.ahead) when there is one.
- `deliver` sends stored bytes over SMTP and writes `sending` (just before DATA), `retrying`, then
  `sent` | `failed` | `unknown` under one record id. The outbox (jobmail.app.outbox) delivers scheduled
  messages with it too, and admits them with the same `admit`.

Exactly once: a `sending`, `sent` or `unknown` message is never sent again on its own; one left
`sending` by a process that died becomes `unknown` (it may have reached the server), one left
`retrying` by an immediate send becomes `failed` (nothing was accepted).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from jobmail import interrupts, status
from jobmail.addresses import likely_typo
from jobmail.app.recovery import recover_interrupted
from jobmail.app.requests import SendRequest, envelope, template_variables
from jobmail.auth.credentials import get_password
from jobmail.clock import local_time
from jobmail.errors import Command, DuplicateError, OutcomeUnknown, SendError
from jobmail.message.compose import (
    Draft,
    Envelope,
    build_message,
    message_bytes,
    read_signature,
    render,
    template_variables_used,
    with_signature,
)
from jobmail.message.etiquette import Report, check, check_signature, check_timing, suggest_highlight
from jobmail.message.model import FLAG_VARIABLES
from jobmail.settings import Settings
from jobmail.smtp import client as smtp
from jobmail.smtp.ahead import Ahead
from jobmail.status import Status
from jobmail.store.locks import send_guard, sender_lock
from jobmail.store.sentlog import Query, SentLog, new_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.message.original import Original

OnEvent = Callable[[str, dict], None]
SHIPPED_TEMPLATES = ("withdraw", "decline-offer")  # their thanks are general: --highlight is suggested
JOB_FIELDS = ("company", "position")  # variables kept in the record, when given (`log --csv` shows them)


def _ignore(status: str, record: dict) -> None:
    return None


@dataclass(frozen=True)
class Prepared:
    """A message ready to send: its bytes, the checks' report, and the fields every record carries."""

    id: str
    draft: Draft
    envelope: Envelope
    data: bytes
    report: Report
    record: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the user should know that is not a guide finding (an unused --var)


def prepare(settings: Settings, request: SendRequest, now: datetime) -> Prepared:
    """Render, build and check the message `request` asks for, dated `now` (its send time)."""
    variables = template_variables(request, settings)
    original = _original(request)
    addressed = envelope(request, settings, original)
    draft = render(settings.templates_dir, request.template, variables)
    if original is not None:  # their subject, so that every mail program threads it
        draft = replace(draft, subject=original.reply_subject)
    if draft.cc:  # the template's Cc: header adds to --cc
        addressed = replace(addressed, cc=tuple(dict.fromkeys((*addressed.cc, *draft.cc))))
    if draft.reply_to and not addressed.reply_to:
        addressed = replace(addressed, reply_to=draft.reply_to)
    signature = read_signature(settings.signature_file) if settings.signature_file else ""
    msg = build_message(with_signature(draft, signature), addressed, now, settings.max_message_bytes)
    data = message_bytes(msg)
    report = check(draft.subject, draft.body, addressed.from_name, draft.language)  # the letter, not the signature
    if signature:
        report = check_signature(report, signature)
    if request.template in SHIPPED_TEMPLATES and not variables.get("highlight"):
        report = suggest_highlight(report)
    if request.interview_on is not None or request.deadline is not None:
        report = check_timing(report, now, interview_on=request.interview_on, deadline=request.deadline)
    record = {
        "from": addressed.from_address,
        "to": list(addressed.to),
        "cc": list(addressed.cc),
        "subject": draft.subject,
        "message_id": msg["Message-ID"],
        "template": request.template,
        "recipients": addressed.recipients,
        "body_sha256": body_digest(draft.body),
        **job_fields(variables),
    }
    notes = unused_variables(settings, request) + misspelt_domains(addressed)
    return Prepared(new_id(), draft, addressed, data, report, record, notes)


def _original(request: SendRequest) -> Original | None:
    """The email this one answers (--reply-to-latest, --reply-to-message FILE), or None."""
    if not request.original and not request.reply_to_message.strip():
        return None
    from jobmail.message.original import parse_original, read_original  # only a reply reads an email

    if request.original:
        return parse_original(request.original, "the latest message (--reply-to-latest)")
    return read_original(request.reply_to_message)


def job_fields(variables: dict[str, object]) -> dict[str, str]:
    """The company and position the message is about, from its variables (for `log --csv`): those given."""
    return {key: value.strip() for key in JOB_FIELDS if isinstance(value := variables.get(key), str) and value.strip()}


def misspelt_domains(addressed: Envelope) -> tuple[str, ...]:
    """A recipient at a likely misspelling of a big provider's domain (jordan@gmial.com): said, not refused."""
    notes = []
    for address in (*addressed.to, *addressed.cc):
        near = likely_typo(address)
        if near:
            notes.append(f"{address}: did you mean @{near}? (sent as typed; check the address)")
    return tuple(notes)


def unused_variables(settings: Settings, request: SendRequest) -> tuple[str, ...]:
    """A `--var KEY=...` the template never uses (a typo, most often), named with the nearest one it does."""
    given = [pair.partition("=")[0].strip() for pair in request.pairs]
    if not given:
        return ()
    import difflib  # only when a --var was given

    used = template_variables_used(settings.templates_dir, request.template)
    notes = []
    for key in given:
        if key in used:
            continue
        near = difflib.get_close_matches(key, sorted(used), n=1)
        spelled = (f"--{near[0]}" if near[0] in FLAG_VARIABLES else f"--var {near[0]}=...") if near else ""
        hint = f": did you mean {spelled}?" if near else ""
        notes.append(f"--var {key}=... is not used by the template '{request.template}'{hint}")
    return tuple(notes)


def body_digest(body: str) -> str:
    return hashlib.sha256(body.strip().encode("utf-8")).hexdigest()


# -- the transaction ------------------------------------------------------------------------------


def send_now(
    settings: Settings,
    prepared: Prepared,
    *,
    force: bool,
    on_event: OnEvent = _ignore,
    ahead: Ahead | None = None,
) -> smtp.Delivered:
    """Send a prepared message now: admit it to the log, then deliver it (on the connection opened
    `ahead`, when one is given). Returns what the server said, or raises (SendError, OutcomeUnknown,
    DuplicateError ...), with the log saying the same.

    The send guard is held from the duplicate check to the end of the send, so two identical sends
    started at once cannot both pass the check.
    """
    log = SentLog(settings.log_folder)
    with send_guard(log.folder):
        admit(log, prepared, force=force)
        return deliver(settings, log, prepared.id, prepared.record, prepared.data, on_event=on_event, ahead=ahead)


def admit(
    log: SentLog, prepared: Prepared, *, force: bool, scheduled: dict | None = None, moment: datetime | None = None
) -> dict | None:
    """The step every new message goes through, under the log's lock (the caller holds the send guard):
    settle what died mid-send, refuse a duplicate unless `force`, store the exact bytes, and append the
    `scheduled` record when one is given (the outbox; dated `moment`). Returns that record as written."""
    with log.locked():
        if not force:
            recover_interrupted(log, log.latest(Query(statuses=status.IN_FLIGHT)))
            refuse_duplicate(log, prepared.record)
        log.store_message(prepared.id, prepared.data)
        return log.append(scheduled, moment=moment) if scheduled is not None else None


def find_duplicate(log: SentLog, record: dict, statuses: Iterable[str] = status.DUPLICATE_OF) -> dict | None:
    """An earlier message in one of `statuses` (default: waiting in the outbox, sent, or may have been)
    to the same people with the same subject and body."""

    def key(rec: dict) -> tuple:
        return sorted(a.lower() for a in rec.get("to", [])), rec.get("subject")

    wanted = key(record)
    for earlier in log.latest(Query(statuses=frozenset(statuses), to=record["to"][0])):
        if key(earlier) == wanted and _body_digest_of(log, earlier) == record.get("body_sha256"):
            return earlier
    return None


def _body_digest_of(log: SentLog, record: dict) -> str | None:
    """The message's body digest: on each of its records, or (a Sent-copy or `replied` record written
    before it was carried along) on its first records."""
    if record.get("body_sha256"):
        return record["body_sha256"]
    return next((r["body_sha256"] for r in log.history(record["id"]) if r.get("body_sha256")), None)


def refuse_duplicate(log: SentLog, record: dict) -> None:
    """Raise DuplicateError naming the earlier identical message, and what to do instead."""
    earlier = find_duplicate(log, record)
    if earlier is None:
        return
    short = earlier["id"][:8]
    if earlier["status"] in status.WAITING:
        due = local_time(earlier.get("due") or earlier["time"])
        raise DuplicateError(
            f"this message is already in the outbox ({earlier['status']}, due {due}, id {short}): nothing new "
            "sent; send it now with ",
            Command("outbox", "send-now", short),
            ", cancel it with ",
            Command("outbox", "cancel", short),
            ", or add --force to send another copy",
        )
    state = {Status.SENDING: "is being sent", Status.UNKNOWN: "may already have been sent"}.get(
        earlier["status"], f"was already {earlier['status']}"
    )
    raise DuplicateError(
        f"this message {state} to {', '.join(earlier['to'])} on {local_time(earlier['time'])} "
        f"(id {short}): nothing sent; see ",
        Command("log", "show", short),
        ", or add --force to send it again",
    )


def password_provider(settings: Settings) -> Callable[[], str]:
    """Fetch the password from the keyring on first use only, and remember it for retries. With
    SMTP_AUTH=oauth2: the access token, refreshed from the keyring's refresh token when it is about to end."""
    if settings.uses_oauth:
        from jobmail.auth.oauth import TokenSource  # imports oauthlib: a password send never pays for it

        return TokenSource(settings)
    cache: list[str] = []

    def get() -> str:
        if not cache:
            cache.append(get_password(settings.smtp_host, settings.smtp_username, settings.keyring_backend))
        return cache[0]

    return get


# -- delivery -------------------------------------------------------------------------------------


def deliver(
    settings: Settings,
    log: SentLog,
    message_id: str,
    record: dict,
    data: bytes,
    *,
    password: Callable[[], str] | None = None,
    sleep: Callable[[float], None] | None = None,
    on_event: OnEvent = _ignore,
    keep_queued_on_interrupt: bool = False,
    ahead: Ahead | None = None,
) -> smtp.Delivered:
    """Send the stored bytes and record each state. Returns smtp.Delivered or raises SendError.

    Ctrl-C before the message data went out writes `failed`, or nothing at all with
    keep_queued_on_interrupt (the outbox: the message stays queued for the next run).
    """
    known = ahead.password() if password is None and ahead is not None else None
    if known is not None:  # read from the keyring while it connected
        password = lambda: known  # noqa: E731
    delivery = _Delivery(settings, log, message_id, record, on_event, keep_queued_on_interrupt)
    return delivery.run(data, password or password_provider(settings), sleep, ahead)


class _Delivery:
    """One message's delivery, as its steps: fetch the password, take the sender lock, send, record."""

    def __init__(
        self, settings: Settings, log: SentLog, message_id: str, record: dict, on_event: OnEvent, keep_queued: bool
    ):
        self.settings = settings
        self.log = log
        self.message_id = message_id
        self.base = {"id": message_id, **record}
        self.on_event = on_event
        self.keep_queued = keep_queued
        self.data_may_have_gone = False  # `sending` is written: from here an interruption is `unknown`

    def run(
        self,
        data: bytes,
        password: Callable[[], str],
        sleep: Callable[[float], None] | None,
        ahead: Ahead | None = None,
    ) -> smtp.Delivered:
        done = self.send(data, password, sleep, ahead)
        self.record_sent(done)
        if self.settings.copies_to_sent:
            self.copy_to_sent(data, password)
        return done

    def copy_to_sent(self, data: bytes, password: Callable[[], str]) -> None:
        """The Sent folder copy, after `sent` is on disk: its outcome is a record of its own, and a failed
        copy stays `pending` for `outbox run` or `track` (it never makes the send fail)."""
        from jobmail.app import sentcopy  # imports imaplib: only a send that makes a Sent copy pays for it

        written = sentcopy.save_after_send(self.settings, self.log, self.base, data, password)
        self.on_event("sent_copy", written)

    def write(self, state: Status, **extra: object) -> None:
        with interrupts.deferred():  # a stop waits for the record to be whole, then ends the send
            written = self.log.append({**self.base, "status": state, "server": self.settings.server, **extra})
        self.on_event(state, written)

    def before_data(self, attempt: int) -> None:
        self.write(Status.SENDING, attempt=attempt)
        self.data_may_have_gone = True

    def on_retry(self, attempt: int, error: SendError, delay: float) -> None:
        self.write(Status.RETRYING, attempt=attempt, error=str(error), reply=_reply(error), retry_in=round(delay, 1))
        self.data_may_have_gone = False

    def send(
        self,
        data: bytes,
        password: Callable[[], str],
        sleep: Callable[[float], None] | None,
        ahead: Ahead | None,
    ) -> smtp.Delivered:
        """Fetch the password (a missing password or keyring fails here, before the connection is used),
        take the sender lock, send; every way it ends is recorded (Ctrl-C included)."""
        record = self.base
        try:
            if self.settings.needs_password:
                password()
            with sender_lock(self.log.folder, self.message_id):
                return smtp.send(
                    self.settings,
                    password,
                    record["from"],
                    record["recipients"],
                    data,
                    before_data=self.before_data,
                    on_retry=self.on_retry,
                    sleep=sleep or time.sleep,
                    ahead=ahead,
                )
        except OutcomeUnknown as exc:
            self.write(Status.UNKNOWN, attempts=exc.attempts, error=str(exc), reply=_reply(exc))
            raise
        except SendError as exc:
            self.write(Status.FAILED, attempts=exc.attempts, error=str(exc), reply=_reply(exc))
            raise
        except KeyboardInterrupt as exc:
            done = getattr(exc, "done", None)
            if isinstance(done, smtp.Delivered):  # stopped after the server's 250, while saying goodbye
                self.record_sent(done)
            elif self.data_may_have_gone:
                self.write(Status.UNKNOWN, error="interrupted while sending: check your Sent folder")
            elif not self.keep_queued:
                self.write(Status.FAILED, error="interrupted before the message was sent")
            raise
        except Exception as exc:  # e.g. the keyring failed: nothing was sent
            self.write(Status.FAILED, error=str(exc) or type(exc).__name__)
            raise

    def record_sent(self, done: smtp.Delivered) -> None:
        try:
            with interrupts.deferred():
                written = self.log.append(
                    {
                        **self.base,
                        "status": Status.SENT,
                        "server": done.server,
                        "tls": done.tls,
                        "reply": {"code": done.code, "text": done.text},
                        "attempts": done.attempts,
                        **({"sent_copy": "pending"} if self.settings.copies_to_sent else {}),
                    }
                )
        except Exception as exc:  # delivered, but the log could not say so: never report "nothing sent"
            raise OutcomeUnknown(
                f"the server accepted the message ({done.code} {done.text}) but the sent log could not record it "
                f"({exc}): it was delivered; do not send it again"
            ) from None
        self.on_event(Status.SENT, written)


def _reply(error: SendError) -> dict | None:
    return {"code": error.code, "text": error.reply} if error.code is not None else None
