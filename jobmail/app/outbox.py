"""The outbox: messages scheduled for later, kept on disk so nothing is lost if the process dies, and sent
exactly once.

Storage. A scheduled message is its exact bytes (``messages/<id>.eml``) plus a ``scheduled`` record in the
sent log: the fields of an immediate send, ``due`` (UTC, ISO 8601) and ``zone`` (the IANA zone the time was
given in; empty for the local zone). Both are written, fsynced, before anything waits.

States. ``scheduled -> sending -> sent | failed | unknown`` (delivery.deliver writes the last three steps,
``sending`` just before DATA), ``scheduled -> cancelled``, ``scheduled -> overdue -> sending | cancelled``.
A ``retrying`` record (a transient failure before DATA, then a pause) belongs to the sending step.

Exactly once. Every claim and delivery of an outbox message happens while holding ``outbox.lock`` in the log
folder: the holder re-reads the message's state and delivers it only if it is still ``scheduled`` (or
``overdue``, for send-now). ``cancel`` takes the same lock, so it either writes ``cancelled`` before any
delivery starts (nothing is sent) or finds the message already sent, failed or unknown (it lost, and says
so). A process killed while waiting, or before DATA, leaves ``scheduled`` (or ``retrying``): the next run
sends it. Killed after ``sending``: jobmail.app.recovery turns it into ``unknown`` once its sender
lock is free; it is never resent on its own.

Waiting. Each waiting process has its own ``schedule.Scheduler`` (never the module default) holding one
one-shot job per scheduled message, its ``next_run`` set to the due time. Between runs the process blocks
in ``select`` on a UDP socket on 127.0.0.1 until the next due time, computed in UTC: schedule's clock is
naive local time, which repeats an hour when daylight saving ends, so a job that schedule runs early is
planned again, and one it would run late is run by the UTC check. The wait is capped at RECHECK_SECONDS, after
which the log is read again (a lost wake-up, or a machine that slept: ``select`` does not count suspended
time). There is no polling tick.

Wake-ups: jobmail.app.wake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import schedule

from jobmail import status
from jobmail.app.recovery import recover_interrupted
from jobmail.app.sending import Prepared, admit, deliver, password_provider
from jobmail.app.wake import RECHECK_SECONDS, WakeSocket, wake_waiters
from jobmail.clock import local_time, timestamp, utc_now
from jobmail.errors import Command, InputError, OutcomeUnknown, SendError, render
from jobmail.message.compose import redate
from jobmail.settings import Settings
from jobmail.smtp.explain import ATTEMPT_TIMEOUTS
from jobmail.status import Status
from jobmail.store.locks import hold_outbox_lock, send_guard, sender_lock
from jobmail.store.sentlog import SentLog, is_record_id

logger = logging.getLogger(__name__)

OVERDUE_GRACE = timedelta(minutes=1)  # never hold a message for being less late than this
_META = ("id", "time", "status")

Callback = Callable[..., None]


def _ignore(*args) -> None:
    return None


def parse_due(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _due_of(record: dict) -> datetime | None:
    try:
        return parse_due(record["due"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Entry:
    """A message in the outbox, as its latest record shows it."""

    record: dict

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def due(self) -> datetime:
        return parse_due(self.record["due"])

    @property
    def zone(self) -> str:
        return self.record.get("zone") or ""


@dataclass(frozen=True)
class Outcome:
    """What one attempt to process a message did.

    action: ``sent``, ``failed``, ``unknown`` (a delivery happened), ``overdue`` (just held), ``held``
    (already held: left alone), ``waiting`` (not due yet) or ``gone`` (no longer in the outbox: cancelled,
    or handled by another process; ``record`` is its current state).
    """

    id: str
    action: str
    record: dict | None
    problem: tuple[str | Command, ...] = ()  # what went wrong, or why it is held, with its next steps

    @property
    def error(self) -> str:
        return render(self.problem)


class Outbox:
    """The outbox stored in one sent log. ``clock`` gives the current time (aware, UTC)."""

    def __init__(
        self,
        settings: Settings,
        log: SentLog | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        password: Callable[[], str] | None = None,
    ):
        self.settings = settings
        self.log = log if log is not None else SentLog(settings.log_folder)
        self.clock = clock
        self.password = password or password_provider(settings)
        self.overdue_after = max(timedelta(hours=settings.overdue_after_hours), OVERDUE_GRACE)

    # -- reading -------------------------------------------------------------------------------

    def entries(self, statuses: frozenset[str] = status.IN_OUTBOX) -> list[Entry]:
        """Outbox messages whose current state is one of ``statuses``, soonest first. A record whose id is
        not one of ours (it would name a file outside messages/) is skipped with a warning: never sent."""
        found = []
        for record in self.log.latest_states():
            if record.get("status") not in statuses or _due_of(record) is None:
                continue
            if not is_record_id(record.get("id")):
                logger.warning(
                    "skipped a record in %s whose id %r is not one of jobmail's: it was not written by jobmail, "
                    "and is never sent",
                    self.log.file,
                    record.get("id"),
                )
                continue
            found.append(Entry(record))
        return sorted(found, key=lambda entry: entry.due)

    def state(self, entry: Entry, now: datetime | None = None) -> str:
        """``waiting`` (not due), ``due`` (send it), ``overdue`` (too late to send on its own: hold it),
        ``held`` (already held), or the entry's status when it is being sent."""
        if entry.status == Status.OVERDUE:
            return "held"
        if entry.status not in status.TIMED:
            return entry.status
        now = self.clock() if now is None else now
        if now < entry.due:
            return "waiting"
        return "overdue" if now - entry.due > self.overdue_after else "due"

    # -- scheduling and cancelling -------------------------------------------------------------

    def schedule(self, prepared: Prepared, due: datetime, zone: str = "", force: bool = False) -> dict:
        """Admit the message as an immediate send is admitted (jobmail.app.sending.admit: a duplicate is
        refused unless ``force``, the exact bytes are stored) with a ``scheduled`` record, then wake any
        waiting process. Returns the record."""
        record = {
            "id": prepared.id,
            "status": Status.SCHEDULED,
            **prepared.record,
            "due": timestamp(due),
            "zone": zone,
        }
        with send_guard(self.log.folder):
            written = admit(self.log, prepared, force=force, scheduled=record, moment=self.clock())
        wake_waiters(self.log)
        assert written is not None  # admit() returns the scheduled record it was given, as written
        return written

    def cancel(self, message_id: str) -> dict:
        """Write ``cancelled`` if the message has not started going out; otherwise raise InputError saying
        what happened to it. Returns the record written."""
        with self.outbox_lock():
            current = self._current(message_id)
            if not _claimable(current):
                raise InputError(*_not_pending(current, "cancel"))
            fields = self._fields(message_id, current)
            written = self.log.append({"id": message_id, **fields, "status": Status.CANCELLED})
        wake_waiters(self.log)
        return written

    # -- sending -------------------------------------------------------------------------------

    def process(self, message_id: str, on_event: Callback = _ignore) -> Outcome:
        """Send the message if it is due (and not too late), under the outbox lock."""
        return self._claim(message_id, force=False, on_event=on_event)

    def send_now(self, message_id: str, on_event: Callback = _ignore) -> Outcome:
        """Send the message now, whatever its due time; the only way to send an ``overdue`` one."""
        outcome = self._claim(message_id, force=True, on_event=on_event)
        if outcome.action == "gone":
            raise InputError(*_not_pending(outcome.record or {"id": message_id}, "send"))
        wake_waiters(self.log)
        return outcome

    def recover(self) -> list[dict]:
        """Mark ``unknown`` every message whose sending process died after ``sending`` (never resent)."""
        return recover_interrupted(self.log, [r for r in self.log.latest_states() if r.get("status") == Status.SENDING])

    def retry_sent_copies(self) -> list[dict]:
        """The Sent folder copies that failed earlier, made now (one IMAP connection); their records."""
        if not self.settings.copies_to_sent:
            return []
        from jobmail.app import sentcopy  # imports imaplib: only where a copy is wanted

        return sentcopy.retry_pending(self.settings, self.log, None, self.password)

    def run_due(self, on_event: Callback = _ignore, on_outcome: Callback = _ignore) -> list[Outcome]:
        """Send every message that is due now (holding those too late); return what happened to each."""
        outcomes = []
        for entry in self.entries(status.TIMED):
            if self.clock() < entry.due:
                break  # soonest first: the rest are not due either
            outcome = self.process(entry.id, on_event)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes

    def wait_for(self, message_id: str, **callbacks) -> dict | None:
        """Wait until the message is due, send it, and return its final record (also when another process
        sent or cancelled it, or it was held as overdue)."""
        return _Waiter(self, only=message_id, **callbacks).run()

    def run_forever(self, **callbacks) -> None:
        """Send each scheduled message when due, waiting for more, until interrupted."""
        _Waiter(self, only=None, **callbacks).run()

    def settle(self, message_id: str) -> dict | None:
        """The message's current record once no process is delivering it (an interrupted ``sending``
        becomes ``unknown``)."""
        current = self.log.current(message_id)
        if current is not None and current.get("status") == Status.SENDING:
            with sender_lock(self.log.folder, message_id):  # blocks while another process delivers it
                pass
            recover_interrupted(self.log, [current])
            current = self.log.current(message_id)
        return current

    def check_password(self) -> None:
        """Fetch the password now (once per Outbox): a missing one fails before anything is claimed
        (deliver() fetches it first too, under the same rule, but by then the message is claimed)."""
        if self.settings.needs_password:
            self.password()

    # -- internals -----------------------------------------------------------------------------

    def outbox_lock(self):
        """`outbox.lock`, waited for no longer than its holder may keep it: one delivery, whose attempts
        start within SEND_RETRY_WITHIN and each end within ATTEMPT_TIMEOUTS x SMTP_TIMEOUT (a few seconds
        more for the records). A hung sender cannot block a cancel or a run for longer."""
        return hold_outbox_lock(self.log.folder, lock_wait(self.settings))

    def _current(self, message_id: str) -> dict:
        current = self.log.current(message_id)
        if current is None:
            raise InputError(f"no message with the id {message_id}: see ", Command("outbox"))
        return current

    def _fields(self, message_id: str, current: dict | None = None) -> dict:
        """The message's own fields (addresses, subject, due ...), from its `scheduled` record."""
        if current is not None and current.get("status") == Status.SCHEDULED:
            return {key: value for key, value in current.items() if key not in _META}
        history = self.log.history(message_id)
        first = next((r for r in history if r["status"] == Status.SCHEDULED), history[0])
        return {key: value for key, value in first.items() if key not in _META}

    def _claim(self, message_id: str, force: bool, on_event: Callback) -> Outcome:
        with self.outbox_lock():
            current = self._current(message_id)
            if not _claimable(current):
                return Outcome(message_id, "gone", current)
            if not force:
                state = self.state(Entry(current))
                if state in ("waiting", "held"):
                    return Outcome(message_id, state, current)
                if state == "overdue":
                    return self._hold(message_id, current)
            return self._deliver(message_id, current, on_event)

    def _redated(self, message_id: str, data: bytes) -> bytes:
        """Sent early or late: dated with the time it goes out, and stored so, since the copy kept must be
        what was sent. If that copy cannot be replaced (a full disk, a file held open on Windows), the
        message goes out as stored, with its due-time date, rather than not at all."""
        redated = redate(data, self.clock())
        if redated is None:
            return data
        try:
            self.log.store_message(message_id, redated)
        except OSError:
            return data
        return redated

    def _hold(self, message_id: str, current: dict) -> Outcome:
        late = self.clock() - Entry(current).due
        hours = self.settings.overdue_after_hours
        note = (
            f"held: it is {late.total_seconds() / 3600:.1f} h past its time (nothing was running to send it), "
            f"more than OVERDUE_AFTER_HOURS={hours:g}; send it with ",
            Command("outbox", "send-now", message_id[:8]),
            " or cancel it with ",
            Command("outbox", "cancel", message_id[:8]),
        )
        fields = self._fields(message_id, current)
        record = self.log.append({"id": message_id, **fields, "status": Status.OVERDUE, "note": render(note)})
        return Outcome(message_id, "overdue", record, note)

    def _deliver(self, message_id: str, current: dict, on_event: Callback) -> Outcome:
        fields = self._fields(message_id, current)
        data = self.log.read_message(message_id)
        if data is None:
            error = (
                f"the stored copy {self.log.message_path(message_id)} is missing: nothing was sent; "
                "schedule the message again"
            )
            record = self.log.append({"id": message_id, **fields, "status": Status.FAILED, "error": error})
            return Outcome(message_id, "failed", record, (error,))
        self.check_password()  # a missing password raises here, leaving the message scheduled
        data = self._redated(message_id, data)
        last: dict = {}

        def remember(status: str, record: dict) -> None:
            if status != "sent_copy":  # the Sent copy's outcome is reported, not the message's outcome
                last.update(record=record)
            on_event(status, record)

        try:
            deliver(
                self.settings,
                self.log,
                message_id,
                fields,
                data,
                password=self.password,
                on_event=remember,
                keep_queued_on_interrupt=True,
            )
        except OutcomeUnknown as exc:
            return Outcome(message_id, "unknown", last.get("record"), exc.parts)
        except SendError as exc:
            return Outcome(message_id, "failed", last.get("record"), exc.parts)
        return Outcome(message_id, "sent", last.get("record"))


def lock_wait(settings: Settings) -> float:
    """How long to wait for `outbox.lock`: the longest its holder can keep it (see Outbox.outbox_lock)."""
    return 1.5 * settings.send_retry_within + settings.smtp_timeout * (ATTEMPT_TIMEOUTS + 1) + 5  # 1.5: the jitter


def _claimable(current: dict) -> bool:
    return current.get("status") in status.CLAIMABLE and _due_of(current) is not None


def _not_pending(current: dict, verb: str) -> tuple[str | Command, ...]:
    short, state, when = current["id"][:8], current.get("status"), local_time(current.get("time", "?"))
    see = ("; see ", Command("log", "show", short))
    if _due_of(current) is None:
        return (f"cannot {verb} {short}: it was never scheduled (it is {state}, since {when})", *see)
    if state in status.MAY_HAVE_GONE:
        what = "may have been sent (outcome unknown): check your Sent folder" if state == Status.UNKNOWN else state
        doing = "is being sent" if state == Status.SENDING else f"was {what}"
        return (f"too late to {verb} {short}: it {doing}", *see)
    return (f"cannot {verb} {short}: it is already {state} (since {when})", *see)


# -- waiting ------------------------------------------------------------------------------------


class _Waiter:
    """One waiting process: a schedule.Scheduler with a one-shot job per planned message."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        only: str | None,
        on_event: Callback = _ignore,
        on_outcome: Callback = _ignore,
        on_idle: Callback = _ignore,
        tick: float | None = None,
        recheck: float = RECHECK_SECONDS,
    ):
        self.schedule = schedule
        self.outbox = outbox
        self.only = only
        self.on_event = on_event
        self.on_outcome = on_outcome
        self.on_idle = on_idle  # (next Entry or None, seconds until it or None, number planned)
        self.tick = tick
        self.recheck = recheck
        self.scheduler = schedule.Scheduler()
        self.planned: list[Entry] = []
        self.entry_of: dict[schedule.Job, Entry] = {}  # each planned job's message
        self.progressed = False

    def run(self) -> dict | None:
        with WakeSocket(self.outbox.log) as wake:
            read_at = 0.0
            stale = True
            while True:
                if stale:
                    read_at = time.monotonic()
                    self._plan()
                    if self.only is not None and not self.planned:
                        return self.outbox.settle(self.only)
                if self._run_due():
                    stale = True
                    continue
                timeout, seconds = self._timeout(read_at)
                self.on_idle(self.planned[0] if self.planned else None, seconds, len(self.planned))
                woken = wake.wait(timeout)
                stale = woken or self._lost_a_job() or time.monotonic() - read_at >= self.recheck

    def _plan(self) -> None:
        """Read the log; one job per message to send, at its due time."""
        entries = self.outbox.entries(status.TIMED)
        if self.only is not None:
            entries = [entry for entry in entries if entry.id == self.only]
        self.scheduler.clear()
        self.entry_of.clear()
        for entry in entries:
            job = self.scheduler.every().seconds.do(self._job, entry)
            job.next_run = entry.due.astimezone().replace(tzinfo=None)  # schedule keeps naive local time
            self.entry_of[job] = entry
        self.planned = entries
        if entries:
            self.outbox.check_password()  # fail now, not at the due time

    def _run_due(self) -> bool:
        """Run the jobs that are due, by schedule's clock or by UTC. True if any message changed state."""
        self.progressed = False
        self.scheduler.run_pending()
        now = self.outbox.clock()
        for job in self.scheduler.get_jobs():
            entry = self.entry_of[job]
            if entry.due <= now:  # schedule's naive clock lags an hour after a fall-back change
                self.scheduler.cancel_job(job)
                self._job(entry)
        return self.progressed

    def _lost_a_job(self) -> bool:
        """A job schedule ran before its UTC time was dropped (see _job): plan again."""
        return len(self.scheduler.get_jobs()) < len(self.planned)

    def _job(self, entry: Entry):
        if self.outbox.clock() >= entry.due:  # schedule's naive clock may run an hour ahead: UTC decides
            outcome = self.outbox.process(entry.id, self.on_event)
            if outcome.action != "waiting":
                self.progressed = True
                self.on_outcome(outcome)
        return self.schedule.CancelJob  # one-shot; the next _plan sets it again if it is still planned

    def _timeout(self, read_at: float) -> tuple[float, float | None]:
        """How long to sleep: until the next due time, the next re-read, or the next tick."""
        timeout = self.recheck - (time.monotonic() - read_at)
        seconds = None
        if self.planned:
            seconds = max(0.0, (self.planned[0].due - self.outbox.clock()).total_seconds())
            timeout = min(timeout, seconds)
        if self.tick:
            timeout = min(timeout, self.tick)
        return max(0.0, timeout), seconds
