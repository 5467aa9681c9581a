"""What a user asks for, as plain records (no argparse), and the checks on its values.

`SendRequest` is one message: the template, the envelope as typed, and the template's variables. The CLI
builds it from its flags; the demo and the tests build it directly.
"""

from __future__ import annotations

import re

from jobmail.addresses import at_test_domain, check_header_value, normalize_address, normalize_message_id
from jobmail.errors import InputError
from jobmail.message import REASON_CHOICES
from jobmail.message.model import FLAG_VARIABLES, Envelope
from jobmail.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import NamedTuple as Record

    from jobmail.message.original import Original
else:
    from jobmail.frozen import Record

FALSE_WORDS = ("", "0", "false", "no", "off", "n")
# Names a template cannot use for a variable: Jinja2's own (`self` is the template itself, and the
# parameter of its render()), and its literals.
RESERVED_VARIABLES = frozenset({"self", "true", "false", "none", "True", "False", "None"})


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
    original: bytes = b""  # or that email's bytes themselves (--reply-to-latest fetched it over IMAP)
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
        if key in RESERVED_VARIABLES:
            raise InputError(
                f"--var {key}=...: a template cannot use a variable named {key!r} (Jinja2 keeps the name): "
                f"name it otherwise, in the template and the --var, like {key}_text"
            )
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
    """Who it is from and to, each address checked and normalised (duplicates dropped, order kept; a name
    typed as `Jordan Lee <jordan@acme.example>` kept for the header). With the recruiter's email
    (`original`): To is its Reply-To or From unless --to is given, and the thread's ids go in In-Reply-To
    and References. The test domains (.test, .localhost ...) pass only with a server on this machine."""
    from jobmail.settings import is_loopback

    typed = (*request.to, *request.cc, request.reply_to, original.reply_address if original is not None else "")
    local = bool(settings.smtp_host) and any(at_test_domain(t) for t in typed) and is_loopback(settings.smtp_host)
    names: dict[str, str] = {}
    to = _addresses(request.to, "--to", names, local)
    if not to and original is not None and original.reply_address:
        field = "the Reply-To or From of --reply-to-message"
        to = (normalize_address(original.reply_address, field, test_domains=local),)
    if not to:
        raise InputError("--to is empty: give the recipient's address")
    cc = _addresses(request.cc, "--cc", names, local)
    reply_to = normalize_address(request.reply_to, "--reply-to", test_domains=local) if request.reply_to.strip() else ""
    if original is not None and request.in_reply_to.strip():
        raise InputError("--in-reply-to and --reply-to-message both name the thread: keep one")
    if original is not None:
        in_reply_to, references = original.message_id, original.references
    else:
        in_reply_to = normalize_message_id(request.in_reply_to, "--in-reply-to") if request.in_reply_to.strip() else ""
        references = ()
    return Envelope(
        from_name=settings.from_name,
        from_address=settings.from_address,
        to=to,
        cc=cc,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
        bcc_self=request.bcc_self,
        references=references,
        names=tuple(names.items()),
    )


def _addresses(values: tuple[str, ...], field: str, names: dict[str, str], local: bool) -> tuple[str, ...]:
    """The addresses typed in each value (comma-separated, or `Name <addr>`), checked; an error quotes the
    value as typed, with a guess where one is likely (`hiring@example,com`: hiring@example.com?)."""
    import email.utils

    found: list[str] = []
    for value in values:
        if "<" in value:
            check_header_value(value, field)
            pairs = email.utils.getaddresses([value])
            if not pairs or any(not addr for _, addr in pairs) or value.count("<") != value.count(">"):
                raise InputError(
                    f"{field}: {value.strip()!r} is not an address: write it like 'Jordan Lee <jordan@acme.com>'"
                )
        else:
            parts = [part.strip() for part in value.split(",") if part.strip()]
            _no_comma_for_a_dot(parts, value, field)
            pairs = [("", part) for part in parts]
        for name, addr in pairs:
            try:
                address = normalize_address(addr, field, test_domains=local)
            except InputError as exc:
                if len(pairs) > 1 or value.strip() != addr.strip():
                    raise InputError(f"{exc} (in {value.strip()!r})") from None
                raise
            if name.strip():
                check_header_value(name, field)
                names.setdefault(address, " ".join(name.split()))
            found.append(address)
    return tuple(dict.fromkeys(found))


def _no_comma_for_a_dot(parts: list[str], value: str, field: str) -> None:
    """`hiring@example,com`: a comma typed for the domain's dot, said as such (not as 'hiring@example')."""
    for before, after in zip(parts, parts[1:], strict=False):
        domain = before.rpartition("@")[2]
        if "@" in before and "." not in domain and "@" not in after and after.isalpha():
            raise InputError(f"{field}: {value.strip()!r} is not a valid email address: did you mean {before}.{after}?")
