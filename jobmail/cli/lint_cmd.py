"""`lint`: check a template's rendering, or a message written elsewhere, against the guide."""

from __future__ import annotations

import argparse

from jobmail.cli.arguments import add_variable_arguments, event_dates, request_from
from jobmail.cli.output import Console
from jobmail.errors import EXIT_BAD_INPUT, EXIT_OK, InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "lint",
        parents=[common],
        help=SUMMARIES["lint"],
        description="Render TEMPLATE with the given variables (or read --file MESSAGE.eml) and check it against "
        "the seven steps of the withdrawal guide. Exit 0 when there are no errors (warnings are shown), 2 otherwise.",
    )
    p.add_argument("template", nargs="?", help="template name, e.g. withdraw")
    p.add_argument("--file", metavar="MESSAGE.eml", help="check a message written elsewhere instead")
    p.add_argument("--sender-name", help="the name the sign-off must carry (default: FROM_NAME, or the From name)")
    add_variable_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from jobmail import settings as config
    from jobmail.app.requests import template_variables
    from jobmail.app.sending import unused_variables
    from jobmail.cli import views
    from jobmail.message.compose import render
    from jobmail.message.etiquette import check, check_timing

    if bool(args.template) == bool(args.file):
        raise InputError("give either a TEMPLATE name or --file MESSAGE.eml")
    now = datetime.now(UTC)
    dates = event_dates(args, now, "09:00-17:00")
    if args.file:
        subject, body, sender, language = read_eml(Path(args.file))
    else:
        settings = config.load(args.env_file)
        dates = event_dates(args, now, settings.business_hours)
        variables = template_variables(request_from(args, dates), settings)
        sender = args.sender_name or settings.from_name
        if not sender:
            raise InputError(
                "no sender name to check the sign-off against: set FROM_NAME in .env or pass --sender-name"
            )
        variables["sender_name"] = sender
        draft = render(settings.templates_dir, args.template, variables, fill_missing=True)
        subject, body, language = draft.subject, draft.body, draft.language
        if draft.filled:
            shown = ", ".join(f"[{name}]" for name in draft.filled)
            console.out(f"note: no value given for {', '.join(draft.filled)}: shown as {shown}; the rest is checked")
        for note in unused_variables(settings, request_from(args, dates)):
            console.out(f"warning: {note}")
    sender = args.sender_name or sender
    report = check(subject, body, sender, language)
    if not args.file:
        report = in_template_lines(report, settings.templates_dir, args.template, body, draft.filled)
    if dates:  # step 2 on the facts given: a message checked now is sent now
        report = check_timing(report, now, **dates)
    console.verbatim(f"Subject: {subject}")
    console.out("Guide checklist:")
    for line in views.checklist_lines(report):
        console.verbatim(line)
    errors, warnings = len(report.errors), len(report.warnings)
    console.out(f"{errors} error(s), {warnings} warning(s)" + (": errors block a send" if errors else ""))
    return EXIT_BAD_INPUT if errors else EXIT_OK


def in_template_lines(report, templates_dir: Path, name: str, body: str, filled: tuple[str, ...]):
    """The report with each finding's body line replaced by the template file's own line, and without the
    placeholders lint put in for values not given."""
    from dataclasses import replace

    from jobmail.message.compose import TEXT_SUFFIX, template_line

    stand_ins = tuple(f"[{name}]" for name in filled)
    path = templates_dir / (name + TEXT_SUFFIX)
    findings = []
    for finding in report.findings:
        if finding.rule == "placeholder" and any(s in finding.message for s in stand_ins):
            continue
        line = template_line(templates_dir, name, body, finding.line) if finding.line else None
        if line is not None:
            message = finding.message.replace(f"line {finding.line}:", f"{path}, line {line}:", 1)
            finding = replace(finding, line=line, message=message)
        findings.append(finding)
    return replace(report, findings=tuple(findings))


def read_eml(path: Path) -> tuple[str, str, str, str]:
    """(subject, text body, sender's display name, language) of a message file."""
    import email
    import email.policy

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        raise InputError(f"{path} has no text/plain part to check")
    try:
        body = part.get_content().replace("\r\n", "\n")
    except (LookupError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot decode the text part ({exc})") from None
    sender = msg["From"].addresses[0].display_name if msg["From"] and msg["From"].addresses else ""
    language = (msg.get("Content-Language") or "en").split("-")[0].strip().lower() or "en"
    return str(msg.get("Subject", "")), body, sender, language
