"""`outbox`: list the scheduled messages, cancel one, send one now, and run the scheduled sends.

The logic (storage, locks, waiting) is jobmail/app/outbox.py; scheduling a message (`send --at`) and the
waiting's printing are jobmail/cli/scheduling.py; this module parses, prints and picks exit codes.
"""

from __future__ import annotations

import argparse

from jobmail.cli.arguments import action_options
from jobmail.cli.output import Console
from jobmail.errors import EXIT_OK, EXIT_UNKNOWN, Command


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    p.set_defaults(run=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    options = action_options()
    listing = actions.add_parser("list", parents=[options], help="list scheduled and overdue messages (the default)")
    listing.set_defaults(run=run)
    cancel = actions.add_parser("cancel", parents=[options], help="cancel a scheduled message: nothing is sent")
    cancel.add_argument("id", metavar="ID", help="the message id, or a unique start of it")
    cancel.set_defaults(run=run)
    now = actions.add_parser(
        "send-now", parents=[options], help="send a scheduled (or overdue) message now, whatever its time"
    )
    now.add_argument("id", metavar="ID", help="the message id, or a unique start of it")
    now.set_defaults(run=run)
    run_parser = actions.add_parser(
        "run",
        parents=[options],
        help="send every due message, then keep waiting for the rest (Ctrl-C stops)",
        description="Send every due message, then wait and send the others when due, until stopped. "
        "With --once: send what is due and exit (for cron, a systemd timer or Windows Task Scheduler).",
    )
    run_parser.add_argument("--once", action="store_true", help="send what is due now and exit")
    run_parser.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """The action asked for (none: list)."""
    from jobmail import settings as config
    from jobmail.app.outbox import Entry, Outbox
    from jobmail.cli import reporting, scheduling, views
    from jobmail.cli.output import lifted, on_terminal, terminal_width
    from jobmail.clock import utc_now
    from jobmail.status import Status
    from jobmail.when import resolve_zone

    settings = config.load(args.env_file)
    if args.action in ("send-now", "run"):
        settings.require_account()
    outbox = Outbox(settings)
    if args.action == "cancel":
        message_id = outbox.log.resolve(args.id)
        entry = Entry(outbox.cancel(message_id))
        due = views.describe_due(entry.due, views.zone_named(entry.zone))
        console.out(f"Cancelled {message_id[:8]} (was due {due}): nothing will be sent.")
        return EXIT_OK
    if args.action == "send-now":
        message_id = outbox.log.resolve(args.id)
        copies: list[tuple] = []
        outcome = outbox.send_now(message_id, on_event=reporting.retry_reporter(console, copies))
        scheduling.outcome_reporter(console, copies)(outcome)
        return scheduling.exit_code([outcome])
    if args.action == "run":
        for record in outbox.retry_sent_copies():
            console.out(*reporting.sent_copy_parts(record))
        recovered = outbox.recover()
        for record in recovered:
            to = ", ".join(record.get("to", []))
            console.err(f"Outcome unknown for {record['id'][:8]} to {to}: ", *lifted((str(record["error"]),)))
        if args.once:
            copies = []
            outcomes = outbox.run_due(
                on_event=reporting.retry_reporter(console, copies),
                on_outcome=scheduling.outcome_reporter(console, copies),
            )
            if not outcomes and not recovered and on_terminal():
                upcoming = outbox.entries(frozenset({Status.SCHEDULED}))
                console.out(f"Nothing is due. {len(upcoming)} message(s) scheduled; see ", Command("outbox"), ".")
            return max(scheduling.exit_code(outcomes), EXIT_UNKNOWN if recovered else EXIT_OK)
        return scheduling.run_until_stopped(console, outbox, recovered)
    entries = outbox.entries()
    if not entries:
        console.out(
            "The outbox is empty: nothing is scheduled. Schedule a message with ",
            Command("send", "...", "--at", "WHEN"),
            ".",
        )
        return EXIT_OK
    local = resolve_zone(None)
    now = utc_now()
    states = [outbox.state(entry, now) for entry in entries]
    rows = [views.outbox_row(entry, state, local) for entry, state in zip(entries, states, strict=True)]
    for line in views.outbox_table(rows, terminal_width()):
        console.verbatim(line)
    if any(state in ("held", "overdue") for state in states):
        console.out("")
        console.out(
            "Overdue messages are held: send one with ", Command("outbox", "send-now", "ID"), ", or `outbox cancel ID`."
        )
    if "due" in states:
        console.out("")
        console.out("Due messages go out at the next ", *scheduling.RUN_HINT, ".")
    return EXIT_OK
