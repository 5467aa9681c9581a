"""`send`: render a template, check it against the guide, and send it (or preview it with --dry-run)."""

from __future__ import annotations

import argparse

from jobmail.cli.common import checklist_lines, err, out, report_event, settings_from, verbatim
from jobmail.errors import EXIT_OK, EtiquetteError, InputError, JobmailError

REASON_CHOICES = ("another-offer", "personal", "role-fit", "career-change")
FALSE_WORDS = ("", "0", "false", "no", "off", "n")


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


def template_variables(args, settings) -> dict[str, object]:
    """Defaults for the shipped templates' variables, then --var pairs, then the friendly flags."""
    from jobmail.message.addresses import check_header_value

    variables: dict[str, object] = {
        "interviewer": "",
        "reason": "",
        "offer_help": True,
        "sender_name": settings.from_name,
        "sender_email": settings.from_address,
    }
    for pair in args.var:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InputError(f"--var {pair!r} is not KEY=VALUE: write it like --var position='Data Analyst'")
        variables[key] = value
    for key in ("interviewer", "position", "company", "reason"):
        if getattr(args, key) is not None:
            variables[key] = getattr(args, key)
    if args.offer_help is not None:
        variables["offer_help"] = args.offer_help
    if isinstance(variables["offer_help"], str):
        variables["offer_help"] = variables["offer_help"].strip().lower() not in FALSE_WORDS
    for key, value in variables.items():
        if isinstance(value, str):
            check_header_value(value, f"the variable '{key}'")
            variables[key] = value.strip()
    reason = variables["reason"]
    if reason and reason not in REASON_CHOICES:
        raise InputError(f"reason {reason!r} is not one of {', '.join(REASON_CHOICES)}: pick one, or leave it out")
    return variables


def envelope_from(args, settings):
    from jobmail.message.addresses import normalize_address, normalize_message_id
    from jobmail.message.compose import Envelope

    def addresses(values: list[str], field: str) -> tuple[str, ...]:
        parts = [part for value in values for part in value.split(",") if part.strip()]
        return tuple(dict.fromkeys(normalize_address(part, field) for part in parts))

    to = addresses(args.to, "--to")
    if not to:
        raise InputError("--to is empty: give the recipient's address")
    return Envelope(
        from_name=settings.from_name,
        from_address=settings.from_address,
        to=to,
        cc=addresses(args.cc, "--cc"),
        reply_to=normalize_address(args.reply_to, "--reply-to") if args.reply_to.strip() else "",
        in_reply_to=normalize_message_id(args.in_reply_to, "--in-reply-to") if args.in_reply_to.strip() else "",
        bcc_self=args.bcc_self,
    )


def prepare_from_args(args, settings, now):
    from jobmail.app.sending import prepare

    return prepare(settings, args.template, envelope_from(args, settings), template_variables(args, settings), now)


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
    from jobmail.app.sending import deliver, duplicate_guard, recover_interrupted, refuse_duplicate
    from jobmail.cli.common import sent_log

    log = sent_log(settings)
    logged = f"Logged as {prepared.id[:8]} in {log.file}; see `python send.py log show {prepared.id[:8]}`"
    # Held from the duplicate check to the end of the send: two identical sends started at once
    # cannot both pass the check.
    with duplicate_guard(log):
        with log.locked():
            if not force:
                recover_interrupted(log, log.latest(_sending_only()))
                refuse_duplicate(log, prepared.record)
            log.store_message(prepared.id, prepared.data)
        try:
            done = deliver(settings, log, prepared.id, prepared.record, prepared.data, on_event=report_event)
        except JobmailError:  # recorded as failed or unknown: say where, before the error line itself
            if log_hint:
                err(logged)
            raise
    out(f"Sent via {done.server} ({done.tls or 'no TLS'}): {done.code} {done.text}")
    if log_hint:
        out(logged)
    return EXIT_OK


def _sending_only():
    from jobmail.store.sentlog import Query

    return Query(statuses=frozenset({"sending", "retrying"}))


def build_parser_for_demo() -> argparse.ArgumentParser:
    """A parser for the message arguments alone, so the demo builds its message like `send` does."""
    p = argparse.ArgumentParser(prog="send.py demo", add_help=False)
    p.add_argument("template")
    add_message_arguments(p)
    return p
