"""What a user asks for, as plain records (no argparse), and the checks on its values.

`SendRequest` is one message: the template, the envelope as typed, and the template's variables. The CLI
builds it from its flags; the demo and the tests build it directly.
"""

from __future__ import annotations

import re

from jobmail.addresses import check_header_value, normalize_address, normalize_message_id
from jobmail.errors import InputError
from jobmail.message.model import FLAG_VARIABLES, Envelope
from jobmail.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import NamedTuple as Record

    from jobmail.message.original import Original
else:
    from jobmail.frozen import Record

REASON_CHOICES = ("another-offer", "personal", "role-fit", "career-change")
FALSE_WORDS = ("", "0", "false", "no", "off", "n")


class SendRequest(Record):
    """One message to send (or preview, or check): as the user typed it, before any check."""

    template: str
    to: tuple[str, ...] = ()  # each may hold several addresses, comma-separated
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    in_reply_to: str = ""
    bcc_self: bool = False
    pairs: tuple[str, ...] = ()  # `--var KEY=VALUE`, as typed
    interviewer: str | None = None
    position: str | None = None
    company: str | None = None
    reason: str | None = None
    offer_help: bool | None = None  # None: the template's own default (offer it)
    reply_to_message: str = ""  # a saved email (.eml) this one answers: its thread, sender and subject
    interview_on: datetime | None = None  # the interview this withdrawal cancels (aware, in the user's zone)
    deadline: datetime | None = None  # by when the offer must be answered (aware, in the user's zone)
    highlight: str | None = None  # one sentence of thanks about something specific


def template_variables(request: SendRequest, settings: Settings) -> dict[str, object]:
    """Defaults for the shipped templates' variables, then the KEY=VALUE pairs, then the friendly flags."""
    variables: dict[str, object] = {
        "interviewer": "",
        "reason": "",
        "offer_help": True,
        "sender_name": settings.from_name,
        "sender_email": settings.from_address,
    }
    for pair in request.pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InputError(f"--var {pair!r} is not KEY=VALUE: write it like --var position='Data Analyst'")
        variables[key] = value
    for key in FLAG_VARIABLES:
        if getattr(request, key) is not None:
            variables[key] = getattr(request, key)
    if request.offer_help is not None:
        variables["offer_help"] = request.offer_help
    for key in ("interview_on", "deadline"):
        moment = getattr(request, key)
        variables[key] = spoken_date(moment) if moment is not None else variables.get(key, "")
    if request.highlight is not None:
        variables["highlight"] = check_highlight(request.highlight)
    variables.setdefault("highlight", "")
    if isinstance(variables["offer_help"], str):
        variables["offer_help"] = variables["offer_help"].strip().lower() not in FALSE_WORDS
    for key, given in variables.items():
        if isinstance(given, str):
            check_header_value(given, f"the variable '{key}'")
            variables[key] = given.strip()
    reason = variables["reason"]
    if reason and reason not in REASON_CHOICES:
        raise InputError(f"reason {reason!r} is not one of {', '.join(REASON_CHOICES)}: pick one, or leave it out")
    return variables


def spoken_date(moment: datetime) -> str:
    """`Thursday, 10 December`, as the letter says it (in the zone the date was given in)."""
    return f"{moment:%A}, {moment.day} {moment:%B}"


MAX_HIGHLIGHT = 200
_PAY_TALK = re.compile(
    r"\b(?:salary|salaries|pay|paid|compensation|bonus|equity|stock|money|wage|wages|package|benefits)\b|[$€£¥]",
    re.IGNORECASE,
)


def check_highlight(text: str) -> str:
    """One sentence of thanks about something specific; ends with a full stop."""
    check_header_value(text, "--highlight")
    sentence = " ".join(text.split())
    if not sentence:
        raise InputError("--highlight is empty: give one sentence, like 'I especially enjoyed meeting the team.'")
    if len(sentence) > MAX_HIGHLIGHT:
        raise InputError(f"--highlight is {len(sentence)} characters: keep it to one short sentence ({MAX_HIGHLIGHT})")
    if re.search(r"[.!?]\s+\S", sentence):
        raise InputError("--highlight holds more than one sentence: keep one (the guide asks for a short email)")
    if _PAY_TALK.search(sentence):
        raise InputError("--highlight talks about pay or benefits: thank them for the people or the work instead")
    return sentence if sentence[-1] in ".!?" else sentence + "."


def envelope(request: SendRequest, settings: Settings, original: Original | None = None) -> Envelope:
    """Who it is from and to, each address checked and normalised (duplicates dropped, order kept). With
    the recruiter's email (`original`): To is its Reply-To or From unless --to is given, and the thread's
    ids go in In-Reply-To and References."""
    to = _addresses(request.to, "--to")
    if not to and original is not None and original.reply_address:
        to = (normalize_address(original.reply_address, "the Reply-To or From of --reply-to-message"),)
    if not to:
        raise InputError("--to is empty: give the recipient's address")
    if original is not None:
        if request.in_reply_to.strip():
            raise InputError("--in-reply-to and --reply-to-message both name the thread: keep one")
        return Envelope(
            from_name=settings.from_name,
            from_address=settings.from_address,
            to=to,
            cc=_addresses(request.cc, "--cc"),
            reply_to=normalize_address(request.reply_to, "--reply-to") if request.reply_to.strip() else "",
            in_reply_to=original.message_id,
            bcc_self=request.bcc_self,
            references=original.references,
        )
    return Envelope(
        from_name=settings.from_name,
        from_address=settings.from_address,
        to=to,
        cc=_addresses(request.cc, "--cc"),
        reply_to=normalize_address(request.reply_to, "--reply-to") if request.reply_to.strip() else "",
        in_reply_to=(
            normalize_message_id(request.in_reply_to, "--in-reply-to") if request.in_reply_to.strip() else ""
        ),
        bcc_self=request.bcc_self,
    )


def _addresses(values: tuple[str, ...], field: str) -> tuple[str, ...]:
    parts = [part for value in values for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(normalize_address(part, field) for part in parts))
