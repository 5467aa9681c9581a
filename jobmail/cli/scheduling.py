"""Scheduling as the user watches it: `send --at` (the message queued, and the wait for it: a countdown on a
terminal, a line per change in a service's log) and `outbox run` (what became of each message).

Heavy: it loads the outbox and the sending use cases. A command imports it at the start of its `run`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, tzinfo

from jobmail import interrupts, status
from jobmail.app.outbox import Entry, Outbox, Outcome
from jobmail.app.sending import Prepared
from jobmail.cli import views
from jobmail.cli.output import Console, lifted, on_terminal
from jobmail.cli.prompts import can_ask, choose
from jobmail.cli.reporting import retry_reporter
from jobmail.errors import (
    EXIT_OK,
    EXIT_SEND_FAILED,
    EXIT_UNKNOWN,
    Command,
    CredentialError,
    JobmailError,
    OutcomeUnknown,
    SendError,
)
from jobmail.settings import Settings
from jobmail.status import Status
from jobmail.when import BusinessHours, parse_when, resolve_zone

# How scheduled messages go out when nothing waits for them.
RUN_HINT = (
    Command("outbox", "run"),
    " (leave it running) or ",
    Command("outbox", "run", "--once"),
    " (from cron or a timer)",
)


# -- send --at -----------------------------------------------------------------------------------


def resolve_due(at: str, tz: str | None, settings: Settings, now: datetime) -> tuple[datetime, tzinfo]:
    """(due time in UTC, zone) for `send --at WHEN [--tz ZONE]`; raises InputError (exit 2) when WHEN is bad."""
    zone = resolve_zone(tz)
    return parse_when(at, now, zone, BusinessHours.parse(settings.business_hours)), zone


def scheduled_parts(
    message_id: str, log_path: object, due: datetime, zone: tzinfo | None, no_wait: bool
) -> list[tuple[str | Command, ...]]:
    """The lines that say a message is queued: when, where, how to cancel it (and, with --no-wait, what
    sends it)."""
    short = message_id[: views.SHORT_ID]
    lines: list[tuple[str | Command, ...]] = [
        (f"Send at:   {views.describe_due(due, zone)}",),
        (f"Queued as {short} in {log_path}; cancel it with ", Command("outbox", "cancel", short)),
    ]
    if no_wait:
        lines.append(("Not waiting (--no-wait): it goes out at or after that time through ", *RUN_HINT, "."))
    return lines


def schedule_and_report(
    console: Console,
    settings: Settings,
    prepared: Prepared,
    due: datetime,
    zone: tzinfo | None,
    *,
    force: bool,
    no_wait: bool,
) -> int:
    """Store the message as scheduled (Outbox.schedule), then wait and send it (or not: --no-wait)."""
    outbox = Outbox(settings)
    outbox.schedule(prepared, due, views.zone_key(zone), force=force)
    for parts in scheduled_parts(prepared.id, outbox.log.path, due, zone, no_wait):
        console.out(*parts)
    if no_wait:
        return EXIT_OK
    return wait_and_report(console, outbox, prepared.id)


def wait_and_report(console: Console, outbox: Outbox, message_id: str) -> int:
    """Wait in this terminal until the message is due, send it, and say what became of it."""
    short = message_id[: views.SHORT_ID]
    tty = on_terminal()
    line = StatusLine()
    try:  # from the line that says Ctrl-C stops waiting, a stop is answered as such
        console.out("Waiting to send it. Ctrl-C stops waiting; the message stays queued unless you cancel it.")
        copies: list[tuple] = []
        final = outbox.wait_for(
            message_id,
            on_event=line.wrap(retry_reporter(console, copies)),
            on_outcome=line.wrap(lambda outcome: None),
            on_idle=line.countdown if tty else lambda *a: None,
            tick=1.0 if tty else None,
        )
    except KeyboardInterrupt as exc:
        line.end()
        current = outbox.log.current(message_id)
        if current is not None and current.get("status") in status.TIMED:
            stopped_waiting(console, outbox, Entry(current), ask=interrupts.said(exc) == "Ctrl-C" and can_ask())
            return interrupts.exit_code(exc)
        raise
    except CredentialError as exc:
        line.clear()
        raise CredentialError(
            *exc.parts, f"; {short} stays scheduled: fix this, then run ", Command("outbox", "run")
        ) from None
    line.clear()
    if final is not None and final.get("status") == Status.SENT and not final.get("server"):
        final = _delivery_of(outbox, message_id) or final  # the latest record is its Sent copy's outcome
    return report_final(console, final, message_id, copies)


def _delivery_of(outbox: Outbox, message_id: str) -> dict | None:
    """The record that says how the message was delivered (server, TLS, reply), newest first."""
    return next((r for r in reversed(outbox.log.history(message_id)) if r.get("server") and r.get("reply")), None)


def stopped_waiting(console: Console, outbox: Outbox, entry: Entry, ask: bool) -> None:
    """The wait was stopped while the message is still queued. At a terminal (Ctrl-C, not a service's
    SIGTERM), ask whether to cancel it; otherwise say it stays queued and what will send it."""
    short = entry.id[: views.SHORT_ID]
    if ask and choose(f"Stopped waiting. {short} is still queued: keep it, or cancel it?", KEEP_OR_CANCEL, "k") == "c":
        try:
            outbox.cancel(entry.id)
        except JobmailError as exc:  # too late: another process has started sending it
            console.err(*exc.parts)
            return
        console.out(f"Cancelled: {short} was not sent (", Command("outbox"), " lists what is still queued).")
        return
    due = views.zone_time(entry.due, entry.zone)
    console.err(
        f"Stopped waiting: {short} stays scheduled for {due}, and nothing in this terminal will send it now: ",
        *RUN_HINT,
        ' sends it (README: "Sending queued messages with nothing left open"); ',
        Command("outbox", "cancel", short),
        " cancels it.",
    )


KEEP_OR_CANCEL = {"k": "keep", "c": "cancel"}


def report_final(console: Console, record: dict | None, message_id: str, copies: list[tuple] | None = None) -> int:
    """What became of the message we waited for, as a line and an exit code (and, for a message sent, the
    Sent copy lines kept back from its sending, as `send` says them: after `Sent via`)."""
    short = message_id[: views.SHORT_ID]
    state = record.get("status") if record else None
    if record is not None and state == Status.SENT:
        reply = record.get("reply") or {}
        via = f"{record.get('server')} ({record.get('tls') or 'no TLS'})"
        console.out(f"Sent via {via}: {reply.get('code')} {reply.get('text')}")
        for parts in copies or ():
            console.out(*parts)
        console.out(*views.logged_parts(message_id))
        return EXIT_OK
    if state == Status.CANCELLED:
        console.out(f"Cancelled (`outbox cancel`): {short} was not sent.")
        return EXIT_OK
    if record is not None and state == Status.OVERDUE:
        console.err(f"Held {short}: ", *lifted((record.get("note", "it is overdue"),)))
        return EXIT_OK
    error = record.get("error") if record else None
    if state == Status.UNKNOWN:
        raise OutcomeUnknown(
            *lifted((error,)) if error else (f"the outcome of {short} is unknown: check your Sent folder",)
        )
    if state == Status.FAILED:
        raise SendError(*lifted((error,)) if error else (f"{short} was not sent; see ", Command("log", "show", short)))
    console.out(f"{short} is {state}; see ", Command("log", "show", short))
    return EXIT_OK


# -- what the outbox did -------------------------------------------------------------------------


def report_outcome(console: Console, outcome: Outcome) -> None:
    record = outcome.record or {}
    short = outcome.id[: views.SHORT_ID]
    to = ", ".join(record.get("to", []))
    problem = lifted(outcome.problem)
    if outcome.action == "sent":
        reply = record.get("reply") or {}
        console.out(f"Sent {short} to {to}: {reply.get('code')} {reply.get('text')}")
    elif outcome.action == "failed":
        console.err(f"Failed {short} to {to}: ", *problem)
    elif outcome.action == "unknown":
        console.err(f"Outcome unknown for {short} to {to}: ", *problem)
    elif outcome.action == "overdue":
        console.err(f"Held {short} to {to}: ", *problem)


def outcome_reporter(console: Console, copies: list[tuple] | None = None) -> Callable[[Outcome], None]:
    """Each outcome as a line, then the Sent copy lines `retry_reporter(console, copies)` kept back (the
    copy is made after the server's 250, and is said after it)."""

    def report(outcome: Outcome) -> None:
        report_outcome(console, outcome)
        while copies:
            console.out(*copies.pop(0))

    return report


def exit_code(outcomes: list[Outcome]) -> int:
    actions = {outcome.action for outcome in outcomes}
    if "unknown" in actions:
        return EXIT_UNKNOWN
    if "failed" in actions:
        return EXIT_SEND_FAILED
    return EXIT_OK


def run_until_stopped(console: Console, outbox: Outbox, recovered: list[dict]) -> int:
    """`outbox run`: send each message when due, until Ctrl-C."""
    outcomes: list[Outcome] = []
    tty = on_terminal()
    line = StatusLine()
    copies: list[tuple] = []
    reported = outcome_reporter(console, copies)

    def on_outcome(outcome: Outcome) -> None:
        outcomes.append(outcome)
        reported(outcome)

    if not tty and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a service's log shows each line as it happens
    idle = line.countdown if tty else Announcer(console)
    try:  # from the line that says Ctrl-C stops, a stop is answered as such
        console.out("Sending scheduled messages when due. Ctrl-C stops (nothing is lost: they stay queued).")
        outbox.run_forever(
            on_event=line.wrap(retry_reporter(console, copies)),
            on_outcome=line.wrap(on_outcome),
            on_idle=idle,
            tick=1.0 if tty else None,
        )
    except KeyboardInterrupt as exc:
        line.end()
        left = len(outbox.entries(status.TIMED))
        if left:
            console.err(
                f"Stopped: {left} message(s) stay scheduled; run ", Command("outbox", "run"), " again to send them."
            )
        else:
            console.err("Stopped: nothing is scheduled.")
        return interrupts.exit_code(exc)
    return max(exit_code(outcomes), EXIT_UNKNOWN if recovered else EXIT_OK)  # not reached: runs until stopped


# -- waiting -------------------------------------------------------------------------------------


class StatusLine:
    """A countdown on one terminal line, rewritten in place; cleared before any other output."""

    def __init__(self) -> None:
        self.width = 0

    def countdown(self, entry: Entry | None, seconds: float | None, count: int) -> None:
        text = views.countdown_text(entry, seconds, count)
        sys.stdout.write("\r" + text.ljust(self.width))
        sys.stdout.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            sys.stdout.write("\r" + " " * self.width + "\r")
            sys.stdout.flush()
            self.width = 0

    def end(self) -> None:
        """Leave the last countdown on screen (a ^C may follow it) and go to the next line."""
        if self.width:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.width = 0

    def wrap(self, callback: Callable[..., None]) -> Callable[..., None]:
        def wrapped(*args: object) -> None:
            self.clear()
            callback(*args)

        return wrapped


class Announcer:
    """Without a terminal (a service's log), one line whenever the next message or the count changes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last: tuple[str | None, int] | None = None

    def __call__(self, entry: Entry | None, seconds: float | None, count: int) -> None:
        key = (entry.id if entry else None, count)
        if key == self.last:
            return
        self.last = key
        if entry is None:
            self.console.out("Waiting: nothing scheduled.")
        else:
            local = views.wall_time(entry.due, views.zone_named(""))
            self.console.out(f"Waiting: {count} scheduled; next {entry.id[: views.SHORT_ID]} at {local}.")
