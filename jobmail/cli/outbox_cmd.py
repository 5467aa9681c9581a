"""`outbox` and `send --at`: schedule a message, list the outbox, cancel, send now, and run the scheduled sends.

The logic (storage, locks, waiting) is jobmail/outbox.py; this module parses, prints and picks exit codes.
"""

from __future__ import annotations

import argparse
import sys

from jobmail.cli.common import err, out, report_event, settings_from, verbatim
from jobmail.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SEND_FAILED, EXIT_UNKNOWN

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WHEN_HELP = (
    "send later instead of now: +45m, +2h, 09:00, tomorrow 09:00, mon 09:00, 2026-12-01 09:30, "
    "2026-12-01T09:30+01:00, or next-business-morning"
)
RUN_HINT = "`python send.py outbox run` (leave it running) or `python send.py outbox run --once` (from cron or a timer)"


def add_schedule_arguments(p: argparse.ArgumentParser) -> None:
    """--at, --tz and --no-wait for the `send` command."""
    group = p.add_argument_group("scheduling (see `python send.py outbox --help`)")
    group.add_argument("--at", metavar="WHEN", help=WHEN_HELP)
    group.add_argument(
        "--tz", metavar="ZONE", help="the time zone WHEN is read in, e.g. America/New_York (default: this computer's)"
    )
    group.add_argument(
        "--no-wait",
        action="store_true",
        help="with --at: queue the message and exit; `python send.py outbox run` sends it when due",
    )


def register(subparsers, common) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "outbox",
        parents=[common],
        help=SUMMARIES["outbox"],
        description="Messages scheduled with `send ... --at WHEN` wait in the outbox until they are due. "
        "Without an action, list them.",
        epilog="Scheduled messages go out while `send --at` waits in its terminal, or `outbox run` runs. "
        "One more than OVERDUE_AFTER_HOURS late (nothing was running) is held as overdue: only "
        "`outbox send-now ID` sends it.",
    )
    p.set_defaults(run=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    options = action_options()
    listing = actions.add_parser("list", parents=[options], help="list scheduled and overdue messages (the default)")
    listing.set_defaults(run=run_list)
    cancel = actions.add_parser("cancel", parents=[options], help="cancel a scheduled message: nothing is sent")
    cancel.add_argument("id", metavar="ID", help="the message id, or a unique start of it")
    cancel.set_defaults(run=run_cancel)
    now = actions.add_parser(
        "send-now", parents=[options], help="send a scheduled (or overdue) message now, whatever its time"
    )
    now.add_argument("id", metavar="ID", help="the message id, or a unique start of it")
    now.set_defaults(run=run_send_now)
    run_parser = actions.add_parser(
        "run",
        parents=[options],
        help="send every due message, then keep waiting for the rest (Ctrl-C stops)",
        description="Send every due message, then wait and send the others when due, until stopped. "
        "With --once: send what is due and exit (for cron, a systemd timer or Windows Task Scheduler).",
    )
    run_parser.add_argument("--once", action="store_true", help="send what is due now and exit")
    run_parser.set_defaults(run=run_run)


def action_options() -> argparse.ArgumentParser:
    """--env-file and --debug after the action too, without overwriting a value given before it."""
    from jobmail.cli.common import parser_classes

    p = parser_classes()[0](add_help=False)
    p.add_argument("--env-file", metavar="PATH", default=argparse.SUPPRESS, help="settings file (default: .env)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log what happens, step by step")
    return p


# -- send --at ---------------------------------------------------------------------------------


def resolve_due(args, settings, now):
    """(due time in UTC, zone) for `send --at WHEN [--tz ZONE]`; raises InputError (exit 2) when WHEN is bad."""
    from jobmail.when import BusinessHours, parse_when, resolve_zone

    zone = resolve_zone(args.tz)
    return parse_when(args.at, now, zone, BusinessHours.parse(settings.business_hours)), zone


def describe_due(due, zone) -> str:
    from jobmail.when import describe

    return describe(due, zone)


def schedule_prepared(args, settings, prepared, now, due=None, zone=None) -> int:
    """Called by `send` with --at: store the message as scheduled, then wait and send it (or not: --no-wait)."""
    from jobmail.app.outbox import Outbox

    if due is None:
        due, zone = resolve_due(args, settings, now)
    outbox = Outbox(settings)
    outbox.schedule(prepared, due, zone_key(zone), force=args.force)
    short = prepared.id[:8]
    out(f"Send at:   {describe_due(due, zone)}")
    out(f"Queued as {short} in {outbox.log.path}; cancel it with `python send.py outbox cancel {short}`")
    if args.no_wait:
        out(f"Not waiting (--no-wait): it goes out at or after that time through {RUN_HINT}.")
        return EXIT_OK
    return wait_and_report(outbox, prepared.id)


def wait_and_report(outbox, message_id: str) -> int:
    from jobmail.errors import CredentialError

    short = message_id[:8]
    tty = on_terminal()
    out("Waiting to send it. Ctrl-C stops waiting: the message stays queued for `python send.py outbox run`.")
    status = StatusLine()
    try:
        final = outbox.wait_for(
            message_id,
            on_event=status.wrap(report_event),
            on_outcome=status.wrap(lambda outcome: None),
            on_idle=status.countdown if tty else lambda *a: None,
            tick=1.0 if tty else None,
        )
    except KeyboardInterrupt:
        status.end()
        current = outbox.log.current(message_id)
        if current is not None and current.get("status") in ("scheduled", "retrying"):
            err(f"Stopped waiting: {short} stays scheduled; {RUN_HINT} sends it, `outbox cancel {short}` cancels it.")
            return EXIT_INTERRUPTED
        raise
    except CredentialError as exc:
        status.clear()
        raise CredentialError(
            f"{exc}; {short} stays scheduled: fix this, then run `python send.py outbox run`"
        ) from None
    status.clear()
    return report_final(final, message_id)


def report_final(record: dict | None, message_id: str) -> int:
    """What became of the message we waited for, as a line and an exit code."""
    from jobmail.errors import OutcomeUnknown, SendError

    short = message_id[:8]
    status = record.get("status") if record else None
    if status == "sent":
        reply = record.get("reply") or {}
        via = f"{record.get('server')} ({record.get('tls') or 'no TLS'})"
        out(f"Sent via {via}: {reply.get('code')} {reply.get('text')}")
        out(f"Logged as {short}; see `python send.py log show {short}`")
        return EXIT_OK
    if status == "cancelled":
        out(f"Cancelled (`outbox cancel`): {short} was not sent.")
        return EXIT_OK
    if status == "overdue":
        err(f"Held {short}: {record.get('note', 'it is overdue')}")
        return EXIT_OK
    if status == "unknown":
        raise OutcomeUnknown(record.get("error") or f"the outcome of {short} is unknown: check your Sent folder")
    if status == "failed":
        raise SendError(record.get("error") or f"{short} was not sent; see `python send.py log show {short}`")
    out(f"{short} is {status}; see `python send.py log show {short}`")
    return EXIT_OK


# -- outbox (list) -----------------------------------------------------------------------------


def run_list(args) -> int:
    from jobmail.app.outbox import Outbox
    from jobmail.cli.common import terminal_width
    from jobmail.store.sentlog import utc_now
    from jobmail.when import resolve_zone

    settings = settings_from(args, require_account=False)
    outbox = Outbox(settings)
    entries = outbox.entries()
    if not entries:
        out("The outbox is empty: nothing is scheduled. Schedule a message with `python send.py send ... --at WHEN`.")
        return EXIT_OK
    local = resolve_zone(None)
    now = utc_now()
    rows = [["ID", "STATUS", "DUE (LOCAL)", "DUE (THEIR ZONE)", "TO", "SUBJECT"]]
    states = []
    for entry in entries:
        state = outbox.state(entry, now)
        states.append(state)
        rows.append(
            [
                entry.id[:8],
                STATE_LABELS.get(state, state),
                wall_time(entry.due, local),
                zone_time(entry.due, entry.zone),
                ", ".join(entry.record.get("to", [])),
                entry.record.get("subject", ""),
            ]
        )
    for line in table(rows, terminal_width()):
        verbatim(line)
    if any(state in ("held", "overdue") for state in states):
        out("")
        out("Overdue messages are held: send one with `python send.py outbox send-now ID`, or `outbox cancel ID`.")
    if "due" in states:
        out("")
        out(f"Due messages go out at the next {RUN_HINT}.")
    return EXIT_OK


def table(rows: list[list[str]], width: int | None) -> list[str]:
    """Aligned columns; the last one (the subject) is cut to fit the terminal (width None: no cut)."""
    from jobmail.cli.views import aligned, display_width

    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    if width is not None:
        used = sum(widths[:-1]) + 2 * (len(widths) - 1)
        widths[-1] = max(10, min(widths[-1], width - 1 - used))
    return aligned(rows, widths)


STATE_LABELS = {"waiting": "scheduled", "due": "due now", "held": "overdue", "overdue": "overdue"}


# -- outbox cancel / send-now / run -------------------------------------------------------------


def run_cancel(args) -> int:
    from jobmail.app.outbox import Entry, Outbox
    from jobmail.when import describe

    settings = settings_from(args, require_account=False)
    outbox = Outbox(settings)
    message_id = outbox.log.resolve(args.id)
    record = outbox.cancel(message_id)
    entry = Entry(record)
    out(f"Cancelled {message_id[:8]} (was due {describe(entry.due, zone_named(entry.zone))}): nothing will be sent.")
    return EXIT_OK


def run_send_now(args) -> int:
    from jobmail.app.outbox import Outbox

    settings = settings_from(args)
    outbox = Outbox(settings)
    message_id = outbox.log.resolve(args.id)
    outcome = outbox.send_now(message_id, on_event=report_event)
    report_outcome(outcome)
    return exit_code([outcome])


def run_run(args) -> int:
    from jobmail.app.outbox import Outbox

    settings = settings_from(args)
    outbox = Outbox(settings)
    recovered = outbox.recover()
    for record in recovered:
        err(f"Outcome unknown for {record['id'][:8]} to {', '.join(record.get('to', []))}: {record['error']}")
    if args.once:
        outcomes = outbox.run_due(on_event=report_event, on_outcome=report_outcome)
        if not outcomes and not recovered and on_terminal():
            upcoming = outbox.entries(("scheduled",))
            out(f"Nothing is due. {len(upcoming)} message(s) scheduled; see `python send.py outbox`.")
        return max(exit_code(outcomes), EXIT_UNKNOWN if recovered else EXIT_OK)
    return run_until_stopped(outbox, recovered)


def run_until_stopped(outbox, recovered: list[dict]) -> int:
    outcomes = []
    tty = on_terminal()
    status = StatusLine()

    def on_outcome(outcome) -> None:
        outcomes.append(outcome)
        report_outcome(outcome)

    if not tty and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a service's log shows each line as it happens
    idle = status.countdown if tty else Announcer()
    out("Sending scheduled messages when due. Ctrl-C stops (nothing is lost: they stay queued).")
    try:
        outbox.run_forever(
            on_event=status.wrap(report_event),
            on_outcome=status.wrap(on_outcome),
            on_idle=idle,
            tick=1.0 if tty else None,
        )
    except KeyboardInterrupt:
        status.end()
        left = len(outbox.entries(("scheduled", "retrying")))
        if left:
            err(f"Stopped: {left} message(s) stay scheduled; run `python send.py outbox run` again to send them.")
        else:
            err("Stopped: nothing is scheduled.")
        return EXIT_INTERRUPTED
    return max(exit_code(outcomes), EXIT_UNKNOWN if recovered else EXIT_OK)  # not reached: runs until stopped


# -- reporting ---------------------------------------------------------------------------------


def report_outcome(outcome) -> None:
    record = outcome.record or {}
    short = outcome.id[:8]
    to = ", ".join(record.get("to", []))
    if outcome.action == "sent":
        reply = record.get("reply") or {}
        out(f"Sent {short} to {to}: {reply.get('code')} {reply.get('text')}")
    elif outcome.action == "failed":
        err(f"Failed {short} to {to}: {outcome.error}")
    elif outcome.action == "unknown":
        err(f"Outcome unknown for {short} to {to}: {outcome.error}")
    elif outcome.action == "overdue":
        err(f"Held {short} to {to}: {outcome.error}")


def exit_code(outcomes) -> int:
    actions = {outcome.action for outcome in outcomes}
    if "unknown" in actions:
        return EXIT_UNKNOWN
    if "failed" in actions:
        return EXIT_SEND_FAILED
    return EXIT_OK


class StatusLine:
    """A countdown on one terminal line, rewritten in place; cleared before any other output."""

    def __init__(self):
        self.width = 0

    def countdown(self, entry, seconds, count) -> None:
        if entry is None or seconds is None:
            text = "Waiting: nothing scheduled (Ctrl-C stops)"
        else:
            more = f" (+{count - 1} more)" if count > 1 else ""
            text = f"Sending {entry.id[:8]} in {duration(seconds)}{more}; Ctrl-C stops waiting"
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

    def wrap(self, callback):
        def wrapped(*args):
            self.clear()
            callback(*args)

        return wrapped


class Announcer:
    """Without a terminal (a service's log), one line whenever the next message or the count changes."""

    def __init__(self):
        self.last = None

    def __call__(self, entry, seconds, count) -> None:
        key = (entry.id if entry else None, count)
        if key == self.last:
            return
        self.last = key
        if entry is None:
            out("Waiting: nothing scheduled.")
        else:
            local = wall_time(entry.due, zone_named(""))
            out(f"Waiting: {count} scheduled; next {entry.id[:8]} at {local}.")


# -- formatting --------------------------------------------------------------------------------


def on_terminal() -> bool:
    """Is the output a terminal? (No stdout at all under pythonw, e.g. from Windows Task Scheduler.)"""
    return sys.stdout is not None and sys.stdout.isatty()


def zone_key(zone) -> str:
    """The IANA name to store with the message; empty for an unnamed local zone (a fixed offset)."""
    return getattr(zone, "key", None) or ""


def zone_named(name: str):
    from jobmail.errors import JobmailError
    from jobmail.when import resolve_zone

    try:
        return resolve_zone(name)
    except JobmailError:
        return resolve_zone(None)


def wall_time(instant, zone) -> str:
    wall = instant.astimezone(zone)
    return f"{WEEKDAYS[wall.weekday()]} {wall:%Y-%m-%d %H:%M} {wall.tzname()}"


def zone_time(instant, name: str) -> str:
    return f"{wall_time(instant, zone_named(name))} {name or '(local)'}"


def duration(seconds: float) -> str:
    whole = int(seconds + 0.999)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock
