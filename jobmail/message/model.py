"""The message's plain records: a rendered template (Draft) and who it goes to (Envelope).

Cheap to import (no Jinja2, no email package): the CLI and the requests of jobmail.app use them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Variables the send and lint commands take as flags of their own (--position "Data Analyst").
FLAG_VARIABLES = ("interviewer", "position", "company", "reason")


@dataclass(frozen=True)
class Draft:
    """A rendered template: what the etiquette check reads and the message is built from."""

    template: str
    subject: str
    body: str
    html: str | None = None
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    language: str = "en"
    filled: tuple[str, ...] = ()  # variables given no value, shown as [name] (lint without values)


@dataclass(frozen=True)
class Envelope:
    """Who the message is from and who gets it, already validated."""

    from_name: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    in_reply_to: str = ""
    bcc_self: bool = False
    references: tuple[str, ...] = ()  # the thread's Message-IDs, oldest first (default: in_reply_to alone)
    names: tuple[tuple[str, str], ...] = ()  # (address, display name) for a recipient typed with a name

    def display(self, address: str) -> str:
        """The recipient's display name as typed (`Jordan Lee <jordan@...>`), or ""."""
        return dict(self.names).get(address, "")

    @property
    def recipients(self) -> list[str]:
        """Envelope recipients: To, Cc, and the sender's own copy (never a Bcc header)."""
        seen: list[str] = []
        for addr in (*self.to, *self.cc, *((self.from_address,) if self.bcc_self else ())):
            if addr.lower() not in (s.lower() for s in seen):
                seen.append(addr)
        return seen
