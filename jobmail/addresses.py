"""Checks on addresses and header values, before anything is built or sent."""

from __future__ import annotations

from .errors import InputError


def normalize_address(text: str, field: str) -> str:
    """Return the address in the ASCII form a mail server accepts, or raise InputError naming the field.

    Syntax only (email-validator, no DNS look-up). A non-ASCII domain is converted to its IDNA form;
    a non-ASCII local part is refused, since many servers do not accept it.
    """
    check_header_value(text, field)
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"{field}: {text.strip()!r} is not a valid email address: {exc}") from None
    return valid.ascii_email or valid.normalized


def check_header_value(text: str, field: str) -> None:
    """Refuse a value that would break a header: CR, LF or other control characters."""
    for ch in text:
        if ch in "\r\n":
            raise InputError(f"{field} contains a line break: keep it on one line")
        if ord(ch) < 32 and ch != "\t" or ord(ch) == 127:
            raise InputError(f"{field} contains a control character ({ord(ch):#04x}): remove it")
