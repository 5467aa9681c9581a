"""`send`: render a template, check it against the guide, and send it (or preview it with --dry-run)."""

from __future__ import annotations

import argparse

from jobmail.app.requests import REASON_CHOICES, SendRequest
from jobmail.cli.common import checklist_lines, err, out, report_event, settings_from, verbatim
from jobmail.errors import EXIT_OK, EtiquetteError, InputError, LogLockedError, SendError


def register(subparsers, common) -> None:
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


def add_message_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", action="append", required=True, metavar="ADDR", help="recipient (repeat for more)")
    p.add_argument("--cc", action="append", default=[], metavar="ADDR", help="copy to (repeat for more)")
    p.add_argument("--reply-to", default="", metavar="ADDR", help="where replies should go")
    p.add_argument("--in-reply-to", default="", metavar="MESSAGE-ID", help="join the recruiter's thread")
    p.add_argument("--bcc-self", action="store_true", help="send yourself a copy (no Bcc header is written)")
    add_variable_arguments(p)


def add_variable_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")
    p.add_argument("--interviewer", help="whom to greet (default: 'Dear Hiring Team')")
    p.add_argument("--position", help="the role, e.g. 'Data Analyst'")
    p.add_argument("--company", help="the company's name")
    p.add_argument("--reason", choices=REASON_CHOICES, help="one neutral sentence of reason (optional)")
    p.add_argument(
        "--no-offer-help",
        dest="offer_help",
        action="store_false",
        default=None,
        help="leave out the offer to help with the hiring process",
    )


def add_schedule_arguments(p: argparse.ArgumentParser) -> None:
    """The scheduling flags (--at, --tz, --no-wait), which the outbox command module owns."""
    from jobmail.cli.outbox_cmd import add_schedule_arguments as add

    add(p)


def request_from(args: argparse.Namespace) -> SendRequest:
    """The message the flags ask for, as the plain request the app takes."""
    return SendRequest(
        template=args.template,
        to=tuple(getattr(args, "to", None) or ()),
        cc=tuple(getattr(args, "cc", None) or ()),
        reply_to=getattr(args, "reply_to", ""),
        in_reply_to=getattr(args, "in_reply_to", ""),
        bcc_self=getattr(args, "bcc_self", False),
        pairs=tuple(args.var),
        interviewer=args.interviewer,
        position=args.position,
        company=args.company,
        reason=args.reason,
        offer_help=args.offer_help,
    )


def prepare_from_args(args, settings, now):
    from jobmail.app.sending import prepare

    return prepare(settings, request_from(args), now)


def print_summary(prepared) -> None:
    record = prepared.record
    verbatim(f"Template:  {record['template']}")
    verbatim(f"From:      {prepared.envelope.from_name} <{record['from']}>")
    verbatim(f"To:        {', '.join(record['to'])}")
    if record["cc"]:
        verbatim(f"Cc:        {', '.join(record['cc'])}")
    if prepared.envelope.bcc_self:
        verbatim(f"Copy to:   {record['from']} (yourself, no Bcc header)")
    verbatim(f"Subject:   {record['subject']}")
    out("Guide checklist:")
    for line in checklist_lines(prepared.report):
        verbatim(line)


def stop_on_guide_errors(prepared, force: bool) -> None:
    errors = prepared.report.errors
    if errors and not force:
        raise EtiquetteError(
            f"the message breaks the guide ({len(errors)} error(s) listed above): nothing sent; "
            "fix the template or the variables, or add --force to send it anyway"
        )


def run(args) -> int:
    from datetime import UTC, datetime

    at = getattr(args, "at", None)
    if at is not None and not at.strip():
        raise InputError("--at needs a time, like 14:30, tomorrow 9:00, +45m or next-business-morning")
    if (getattr(args, "tz", None) or getattr(args, "no_wait", False)) and not at:
        raise InputError("--tz and --no-wait only go with --at WHEN: add --at, or drop them to send now")
    settings = settings_from(args)
    now = datetime.now(UTC)
    due = zone = None
    if at:  # checked before anything else, dry run included; the message is dated when it is due
        from jobmail.cli.outbox_cmd import resolve_due

        due, zone = resolve_due(args, settings, now)
    prepared = prepare_from_args(args, settings, due or now)
    print_summary(prepared)
    if due is not None and args.dry_run:  # otherwise scheduling says it, with the id
        from jobmail.cli.outbox_cmd import describe_due

        out(f"Send at:   {describe_due(due, zone)}")
    stop_on_guide_errors(prepared, args.force)
    if args.dry_run:
        out("")
        out("--- the message: headers exactly as they will be sent, then the body as the recipient reads it ---")
        for line in preview_lines(prepared.data):
            verbatim(line)  # exactly what goes out
        out("")
        then = "queue it for that time" if due is not None else "send it"
        out(f">>> This was a dry run: nothing was sent. Run the same command without --dry-run to {then}.")
        return EXIT_OK
    if due is not None:
        from jobmail.cli.outbox_cmd import schedule_prepared

        return schedule_prepared(args, settings, prepared, now, due, zone)
    return send_prepared(settings, prepared, force=args.force)


def preview_lines(data: bytes) -> list[str]:
    """The header block as sent, then the plain-text body decoded (quoted-printable is hard to read)."""
    import email
    import email.policy

    head = data.partition(b"\r\n\r\n")[0].decode("ascii", "replace").split("\r\n")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content().replace("\r\n", "\n").rstrip("\n").split("\n") if body is not None else []
    extra = ["", "(and the same text as HTML, the alternative part)"] if msg.is_multipart() else []
    return [*head, "", *text, *extra]


def send_prepared(settings, prepared, force: bool, log_hint: bool = True) -> int:
    from jobmail.app.sending import send_now
    from jobmail.store.sentlog import SentLog

    log_file = SentLog(settings.log_folder).file
    logged = f"Logged as {prepared.id[:8]} in {log_file}; see `python send.py log show {prepared.id[:8]}`"
    try:
        done = send_now(settings, prepared, force=force, on_event=report_event)
    except (SendError, LogLockedError):  # recorded as failed or unknown: say where, before the error line itself
        if log_hint:
            err(logged)
        raise
    out(f"Sent via {done.server} ({done.tls or 'no TLS'}): {done.code} {done.text}")
    if log_hint:
        out(logged)
    return EXIT_OK


def build_parser_for_demo() -> argparse.ArgumentParser:
    """A parser for the message arguments alone, so the demo builds its message like `send` does."""
    p = argparse.ArgumentParser(prog="send.py demo", add_help=False)
    p.add_argument("template")
    add_message_arguments(p)
    return p
