"""The recruiter's email a reply answers (`send --reply-to-message FILE`): a saved .eml, or the raw source
a mail program shows ("Show original", "View source") pasted into a file.

What a reply needs from it, checked: their Message-ID (In-Reply-To), their References chain plus that id
(References), where an answer goes (Reply-To, else From), and their subject for `Re: ...`. The standard
library's email parser reads it (folded headers, RFC 2047 subjects, multipart bodies alike).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from jobmail.addresses import normalize_message_id
from jobmail.errors import InputError

MAX_ORIGINAL_BYTES = 10 * 1024 * 1024  # a recruiter's email with attachments; beyond this it is not one
MAX_REFERENCES = 20  # RFC 5322 3.6.4 lets a long chain be trimmed: keep the first and the latest
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|wg)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Original:
    """The parts of their email that make ours a reply in their thread."""

    message_id: str
    references: tuple[str, ...]  # theirs, then their Message-ID
    reply_address: str  # Reply-To, else From; "" when neither holds an address
    subject: str  # theirs, decoded

    @property
    def reply_subject(self) -> str:
        """`Re: <their subject>`, never `Re: Re:`."""
        return "Re: " + (_REPLY_PREFIX.sub("", self.subject).strip() or "(no subject)")


def read_original(path: str | Path, field: str = "--reply-to-message") -> Original:
    """Read and check the saved email; raises InputError (one line, what to do) when it cannot serve."""
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if size > MAX_ORIGINAL_BYTES:
            raise InputError(
                f"{field} {file}: {size:,} bytes is too large for an email to answer (over "
                f"{MAX_ORIGINAL_BYTES // 2**20} MiB): save the recruiter's email itself (.eml, or its source)"
            )
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{field} {file}: no such file: save the recruiter's email there (.eml)") from None
    except IsADirectoryError:
        raise InputError(f"{field} {file} is a folder: give the saved email's file") from None
    except OSError as exc:
        raise InputError(f"{field} {file}: cannot read it ({exc.strerror or exc})") from None
    return parse_original(data, f"{field} {file}")


def parse_original(data: bytes, where: str) -> Original:
    text = data.lstrip(b"\r\n\t \xef\xbb\xbf")  # pasted source often starts with blank lines or a BOM
    msg = email.message_from_bytes(text, policy=email.policy.default)
    if not isinstance(msg, EmailMessage) or not (msg["From"] or msg["Message-ID"]):
        raise InputError(
            f"{where} is not an email: save the recruiter's email as .eml (or paste its full source, headers first)"
        )
    raw_id = str(msg.get("Message-ID", "") or "").strip()
    found = _MSG_ID.search(raw_id)
    if not found:
        raise InputError(
            f"{where} has no Message-ID header, so a reply cannot join its thread: save the email again with its "
            "full headers (\"Show original\" / \"View source\"), or leave --reply-to-message out"
        )
    message_id = normalize_message_id(found.group(0), f"{where}: its Message-ID")
    chain = [ref for ref in _MSG_ID.findall(str(msg.get("References", "") or "")) if ref != message_id]
    if len(chain) >= MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 2) :]]
    references = []
    for ref in (*chain, message_id):
        try:
            references.append(normalize_message_id(ref, "References"))
        except InputError:  # an odd id in their chain is dropped, not fatal
            continue
    return Original(message_id, tuple(references), _reply_address(msg), _one_line(str(msg.get("Subject", "") or "")))


def _reply_address(msg: EmailMessage) -> str:
    for header in ("Reply-To", "From"):
        for _, address in email.utils.getaddresses([str(value) for value in msg.get_all(header, [])]):
            if "@" in address:
                return address
    return ""


def _one_line(text: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
