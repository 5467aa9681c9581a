"""What a user asks for, as plain records (no argparse), and the checks on its values.

`SendRequest` is one message: the template, the envelope as typed, and the template's variables. The CLI
builds it from its flags; the demo and the tests build it directly.
"""

from __future__ import annotations

from jobmail.addresses import check_header_value, normalize_address, normalize_message_id
from jobmail.errors import InputError
from jobmail.message.model import FLAG_VARIABLES, Envelope
from jobmail.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record
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


def envelope(request: SendRequest, settings: Settings) -> Envelope:
    """Who it is from and to, each address checked and normalised (duplicates dropped, order kept)."""
    to = _addresses(request.to, "--to")
    if not to:
        raise InputError("--to is empty: give the recipient's address")
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
