"""`send`: render a template, check it against the guide, and send it (or preview it with --dry-run)."""

from __future__ import annotations

import argparse

from jobmail.cli.arguments import add_message_arguments, add_schedule_arguments, event_dates, request_from
from jobmail.cli.output import Console
from jobmail.errors import EXIT_OK, InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from jobmail.settings import Settings
    from jobmail.smtp.ahead import Ahead


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "send",
        parents=[common],
        help=SUMMARIES["send"],
        description="Render TEMPLATE, check it against the guide, and send it through your SMTP account.",
        epilog="example: python send.py send withdraw --to jane@acme.example --interviewer 'Jane Doe' "
        "--position 'Data Analyst' --company Acme --dry-run",
    )
    p.add_argument("template", help="template name, e.g. withdraw or decline-offer (see templates/)")
    add_message_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="print the exact message and send nothing")
    p.add_argument("--force", action="store_true", help="send despite guide errors or an identical earlier send")
    add_schedule_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from datetime import UTC, datetime

    from jobmail import settings as config

    at = getattr(args, "at", None)
    if at is not None and not at.strip():
        raise InputError("--at needs a time, like 14:30, tomorrow 9:00, +45m or next-business-morning")
    if (getattr(args, "tz", None) or getattr(args, "no_wait", False)) and not at:
        raise InputError("--tz and --no-wait only go with --at WHEN: add --at, or drop them to send now")
    settings = config.load(args.env_file)
    settings.require_account()
    now = datetime.now(UTC)
    due = zone = None
    if at:  # checked before anything else, dry run included; the message is dated when it is due
        from jobmail.cli import scheduling

        due, zone = scheduling.resolve_due(at, args.tz, settings, now)
    if not args.to and not args.reply_to_message and not args.reply_to_latest:
        raise InputError("--to is missing: give the recipient's address (or --reply-to-message with their email)")
    if args.reply_to_message and args.reply_to_latest:
        raise InputError("--reply-to-message and --reply-to-latest both name the email to answer: keep one")
    ahead = None
    if not args.dry_run and due is None:  # sent now: connect while the message is made (jobmail.app.ahead)
        from jobmail.app.ahead import connect_ahead

        ahead = connect_ahead(settings)
    try:
        return _send(args, console, settings, now, due, zone, ahead)
    finally:
        if ahead is not None:
            ahead.close()  # not taken (the message stopped before its delivery): QUIT, nothing sent


def _send(
    args: argparse.Namespace,
    console: Console,
    settings: Settings,
    now: datetime,
    due: datetime | None,
    zone: tzinfo | None,
    ahead: Ahead | None,
) -> int:
    """The message made from `args`, checked, shown, and sent (on `ahead`), queued or printed (--dry-run)."""
    from jobmail.app.sending import prepare
    from jobmail.cli import reporting, views

    request = request_from(args, event_dates(args, now, settings.business_hours))
    if args.reply_to_latest:
        from jobmail.addresses import normalize_address
        from jobmail.app.tracking import latest_from

        sender = normalize_address(args.reply_to_latest, "--reply-to-latest", test_domains=True)
        request = request._replace(original=latest_from(settings, sender))
    prepared = prepare(settings, request, due or now)
    reporting.print_summary(console, prepared)
    if due is not None and args.dry_run:  # otherwise scheduling says it, with the id
        console.out(f"Send at:   {views.describe_due(due, zone)}")
    reporting.stop_on_guide_errors(prepared, args.force)
    if args.dry_run:
        console.out("")
        console.out(
            "--- the message: headers exactly as they will be sent, then the body as the recipient reads it ---"
        )
        for line in views.preview_lines(prepared.data):
            console.verbatim(line)  # exactly what goes out
        console.out("")
        then = "queue it for that time" if due is not None else "send it"
        console.out(f">>> This was a dry run: nothing was sent. Run the same command without --dry-run to {then}.")
        return EXIT_OK
    if due is not None:
        from jobmail.cli import scheduling

        return scheduling.schedule_and_report(
            console, settings, prepared, due, zone, force=args.force, no_wait=args.no_wait
        )
    return reporting.send_and_report(console, settings, prepared, force=args.force, ahead=ahead)
