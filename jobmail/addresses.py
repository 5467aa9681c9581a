"""Checks on addresses and header values, before anything is built or sent."""

from __future__ import annotations

import re
import unicodedata

from jobmail.errors import InputError

# What Python's email package reads as an RFC 2047 encoded word ("=?charset?q?text?="). It decodes
# such text even in a value we set, so "=?utf-8?q?x=0D=0ABcc:_y?=" would become a line break and a
# header of its own: a value that looks like one is refused rather than sent changed.
_ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)
# Characters str.splitlines() (and so the email package) treats as line breaks, besides CR and LF.
_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# A Message-ID as mail programs match it for threading: <left@right>, printable ASCII, no spaces or brackets.
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")


# The everyday address (dot-atom local part, LDH domain labels, an alphabetic top-level domain):
# accepted as is, with the domain in lower case, exactly as email-validator would return it, without
# paying its ~20 ms import on every start. Anything else goes to email-validator.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")  # email-validator refuses these


def _plain_address(text: str) -> str | None:
    found = _PLAIN_ADDRESS.fullmatch(text)
    if found is None:
        return None
    local, domain = found.group(1), found.group(2).lower()
    if len(local) > 64 or len(text) > 254 or domain.rpartition(".")[2] in _SPECIAL_USE:
        return None
    return f"{local}@{domain}"


# RFC 2606 / RFC 6761 names for testing: no real server delivers there, a server on this machine may.
TEST_DOMAINS = ("test", "example", "invalid", "localhost")


def at_test_domain(text: str) -> bool:
    """Whether an address (or several, comma-separated) names a special-use test domain: only then is it
    worth asking whether the server is on this machine (a question that may need a DNS look-up)."""
    return any(part.strip().rstrip(">").rpartition(".")[2].lower() in TEST_DOMAINS for part in text.split(","))


def normalize_address(text: str, field: str, *, test_domains: bool = False) -> str:
    """Return the address in the ASCII form a mail server accepts, or raise InputError naming the field.

    Syntax only (email-validator, no DNS look-up). A non-ASCII domain is converted to its IDNA form;
    a non-ASCII local part is refused, since many servers do not accept it. `test_domains`: the
    special-use test names (`acme.test`, `x.localhost`) are accepted (the server is on this machine).
    """
    check_header_value(text, field)
    plain = _plain_address(text.strip())
    if plain is not None:
        return plain
    found = _PLAIN_ADDRESS.fullmatch(text.strip())
    tld = found.group(2).rpartition(".")[2].lower() if found else ""
    if found and tld in TEST_DOMAINS:
        if test_domains:
            return f"{found.group(1)}@{found.group(2).lower()}"
        raise InputError(
            f"{field}: {text.strip()!r} is at .{tld}, a name reserved for testing (RFC 2606): no real server "
            "delivers there; use it only with a server on this machine (SMTP_HOST=127.0.0.1), or give a real address"
        )
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"{field}: {text.strip()!r} is not a valid email address: {exc}") from None
    return valid.ascii_email or valid.normalized


def normalize_message_id(text: str, field: str) -> str:
    """Return `text` as a Message-ID (`<left@right>`, brackets added when missing), or raise InputError
    naming the field. Mail programs thread a reply by this exact string, so nothing else is accepted."""
    check_header_value(text, field)
    value = text.strip()
    if value and not value.startswith("<"):
        value = f"<{value}>"
    if not _MESSAGE_ID.fullmatch(value):
        raise InputError(
            f"{field}: {text.strip()!r} is not a Message-ID: copy the Message-ID header of the recruiter's "
            "email, like <CAB1234@mail.example.com>"
        )
    return value


# The big providers' domains, for a likely misspelling ("gmial.com"): a warning, never a refusal.
COMMON_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "protonmail.com",
    "proton.me",
    "gmx.com",
    "gmx.net",
    "fastmail.com",
    "zoho.com",
)


def likely_typo(address: str) -> str | None:
    """The big provider's domain an address's domain looks like a misspelling of (one or two letters
    off, or two swapped: gmial.com, outlok.com, yaho.com), or None."""
    domain = address.rpartition("@")[2].lower()
    if domain in COMMON_DOMAINS or "." not in domain:
        return None
    for known in COMMON_DOMAINS:
        if (
            len(known) >= 7
            and abs(len(known) - len(domain)) <= 2
            and _distance(domain, known) <= (2 if len(known) >= 9 else 1)
        ):
            return known
    return None


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from a to b (optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def check_header_value(text: str, field: str) -> None:
    """Refuse a value that would break or change a header: line breaks, control characters,
    text that is not valid Unicode, and encoded-word syntax."""
    for ch in text:
        if ch in "\r\n" or ch in _LINE_BREAKS:
            raise InputError(f"{field} contains a line break ({_codepoint(ch)}): keep it on one line")
        code = ord(ch)
        if (code < 32 and ch != "\t") or 127 <= code < 160:
            raise InputError(f"{field} contains a control character ({_codepoint(ch)}): remove it")
        if 0xD800 <= code <= 0xDFFF:
            raise InputError(f"{field} contains bytes that are not valid UTF-8: retype it, or save the file as UTF-8")
        if unicodedata.category(ch) == "Cf":  # bidi controls, zero-width: "...Analyst\u202efdp.exe"
            raise InputError(
                f"{field} contains an invisible format character ({_codepoint(ch)}), which can make it display "
                "as other text: remove it"
            )
    if _ENCODED_WORD.search(text):
        raise InputError(
            f"{field} contains '=?...?=', which mail programs would decode as an encoded word and so change: remove it"
        )


def _codepoint(ch: str) -> str:
    return f"U+{ord(ch):04X}"
