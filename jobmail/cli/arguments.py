"""The argument groups several commands declare, and the request they make.

`common_parent` (--env-file, --debug) goes on every command; `action_options` repeats it after an action
(`outbox run --env-file X`); `add_message_arguments`, `add_variable_arguments` and `add_schedule_arguments`
are the flags of `send` and `lint`; `request_from(args)` turns those flags into the app's SendRequest.

Cheap to import (the parser for `--help` is built from it): app.requests is loaded only by the functions
that need it.
"""

from __future__ import annotations

import argparse

from jobmail.cli.output import parser_classes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.app.requests import SendRequest

WHEN_HELP = (
    "send later instead of now: +45m, +2h, 09:00, tomorrow 09:00, mon 09:00, 2026-12-01 09:30, "
    "2026-12-01T09:30+01:00, or next-business-morning"
)


def common_parent() -> argparse.ArgumentParser:
    """--env-file and --debug, the parent of every command's parser."""
    common = parser_classes()[0](add_help=False)
    common.add_argument(
        "--env-file", metavar="PATH", default=None, help="settings file (default: .env in the current folder)"
    )
    common.add_argument("--debug", action="store_true", help="log what happens, step by step (never secrets)")
    return common


def action_options() -> argparse.ArgumentParser:
    """--env-file and --debug after an action too, without overwriting a value given before it."""
    p = parser_classes()[0](add_help=False)
    p.add_argument("--env-file", metavar="PATH", default=argparse.SUPPRESS, help="settings file (default: .env)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log what happens, step by step")
    return p


def add_message_arguments(p: argparse.ArgumentParser) -> None:
    """The envelope (--to, --cc, ...) and the template's variables."""
    p.add_argument(
        "--to",
        action="append",
        metavar="ADDR",
        help="recipient (repeat for more; with --reply-to-message: its sender)",
    )
    p.add_argument("--cc", action="append", default=[], metavar="ADDR", help="copy to (repeat for more)")
    p.add_argument("--reply-to", default="", metavar="ADDR", help="where replies should go")
    p.add_argument("--in-reply-to", default="", metavar="MESSAGE-ID", help="join the recruiter's thread")
    p.add_argument(
        "--reply-to-message",
        default="",
        metavar="FILE",
        help="answer the recruiter's email saved as FILE (.eml, or its source): their thread, their address, "
        "'Re: <their subject>'",
    )
    p.add_argument(
        "--reply-to-latest",
        default="",
        metavar="ADDR",
        help="answer ADDR's latest email in your INBOX (IMAP), the same way",
    )
    p.add_argument("--bcc-self", action="store_true", help="send yourself a copy (no Bcc header is written)")
    add_variable_arguments(p)


def add_variable_arguments(p: argparse.ArgumentParser) -> None:
    """The template's variables: --var KEY=VALUE and the named ones."""
    from jobmail.message import REASON_CHOICES

    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")
    p.add_argument("--interviewer", help="whom to greet (default: 'Dear Hiring Team')")
    p.add_argument("--position", help="the role, e.g. 'Data Analyst'")
    p.add_argument("--company", help="the company's name")
    p.add_argument("--reason", choices=REASON_CHOICES, help="one neutral sentence of reason (optional)")
    p.add_argument(
        "--highlight",
        metavar="TEXT",
        help="one sentence of thanks for something specific ('I especially enjoyed ...')",
    )
    p.add_argument("--interview-on", metavar="WHEN", help="withdraw: when the interview is (checks the timing)")
    p.add_argument("--deadline", metavar="WHEN", help="decline-offer: by when the offer must be answered")
    p.add_argument(
        "--no-offer-help",
        dest="offer_help",
        action="store_false",
        default=None,
        help="leave out the offer to help with the hiring process",
    )


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


def request_from(args: argparse.Namespace, dates: dict | None = None) -> SendRequest:
    """The message the flags ask for, as the plain request the app takes (`dates`: --interview-on and
    --deadline, already read as times)."""
    from jobmail.app.requests import SendRequest

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
        reply_to_message=getattr(args, "reply_to_message", ""),
        highlight=args.highlight,
        **(dates or {}),
    )


def event_dates(args: argparse.Namespace, now: object, business_hours: str) -> dict:
    """--interview-on and --deadline as aware times in the zone they were given in (--tz, else this
    computer's), read like --at."""
    dates: dict = {}
    for flag, key in (("--interview-on", "interview_on"), ("--deadline", "deadline")):
        text = getattr(args, key, None)
        if text is None:
            continue
        from jobmail.errors import InputError
        from jobmail.when import BusinessHours, parse_when, resolve_zone  # only when a date is given

        zone = resolve_zone(getattr(args, "tz", None))
        try:
            moment = parse_when(text, now, zone, BusinessHours.parse(business_hours))  # type: ignore[arg-type]
        except InputError as exc:
            raise InputError(f"{flag}: {exc}") from None
        dates[key] = moment.astimezone(zone)
    return dates
