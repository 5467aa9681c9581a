"""One error base for the whole package; the CLI turns it into a message and an exit code.

An error's text is one line that says what to do. Where the next step is one of our own commands, the
error holds it as data (a `Command`) among the parts of its text: `str(exc)` shows it in its plain form
(what the sent log stores), and only the CLI renders it for the user's own command line (with the
`--env-file` they gave).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: typing costs `send.py log` ~9 ms of its start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# Exit codes, one table (mirrored in the README).
EXIT_OK = 0
EXIT_SEND_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130

PROGRAM = "python send.py"  # how a command is shown where no command line is known (the log's records)


class Command:
    """A next step that is one of our own commands: its words after the program name, e.g.
    ("log", "show", "3f2a1b9c"). `str()` is the plain form, in backquotes, as running text quotes it."""

    __slots__ = ("words",)

    def __init__(self, *words: str):
        self.words: tuple[str, ...] = words

    def __str__(self) -> str:
        return f"`{PROGRAM} {' '.join(self.words)}`"

    def __repr__(self) -> str:
        return f"Command{self.words!r}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and other.words == self.words

    def __hash__(self) -> int:
        return hash(self.words)


Part = "str | Command"  # one piece of a message's text (a type alias, written as text for start-up speed)


def render(parts: Iterable[str | Command], command: Callable[[Command], str] = str) -> str:
    """A message's parts as one text, each Command shown by `command` (default: its plain form)."""
    return "".join(part if isinstance(part, str) else command(part) for part in parts)


class JobmailError(Exception):
    """Base of every error the user can cause or fix. Its text is one line that says what to do.

    Built from parts: strings, and the Commands that are its next steps (`JobmailError("no password is
    stored: run ", Command("password", "set"))`).
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, *parts: str | Command):
        self.parts: tuple[str | Command, ...] = parts
        super().__init__(render(parts))

    @property
    def commands(self) -> tuple[Command, ...]:
        """The next steps this error names, in order."""
        return tuple(part for part in self.parts if isinstance(part, Command))


class ConfigError(JobmailError):
    """The .env file or the environment holds something unusable. `key`: the setting at fault, when one
    is (settings.load then says where it was set: the file and line, or the environment)."""

    def __init__(self, *parts: str | Command, key: str | None = None):
        super().__init__(*parts)
        self.key = key


class CredentialError(JobmailError):
    """The keyring is missing, unusable, or holds no password for this account."""


class SignInError(CredentialError):
    """An OAuth 2.0 sign-in failed, expired or was revoked, or the OAuth settings are unusable."""


class TemplateError(JobmailError):
    """A template is missing, malformed, or needs a variable that was not given."""


class InputError(JobmailError):
    """A command-line value or a message field is invalid."""


class EtiquetteError(JobmailError):
    """The rendered message breaks the guide in a way that blocks the send."""


class DuplicateError(JobmailError):
    """The same message was already sent (or may have been) to the same recipient."""


class LogLockedError(JobmailError):
    """Another process held one of the log folder's locks for too long."""


class SendError(JobmailError):
    """The server refused the message or could not be reached; nothing was delivered."""

    exit_code = EXIT_SEND_FAILED

    def __init__(self, *parts: str | Command, code: int | None = None, reply: str = "", transient: bool = False):
        super().__init__(*parts)
        self.code = code
        self.reply = reply
        self.transient = transient
        self.attempts = 0


class MailboxError(JobmailError):
    """The IMAP server could not be reached or refused a step (login, the Sent copy, the reply search).
    It never says anything about whether a message was sent: that is the SMTP server's 250."""

    exit_code = EXIT_SEND_FAILED


class OutcomeUnknown(SendError):
    """The message data went out but no final reply came back: it may have been delivered."""

    exit_code = EXIT_UNKNOWN
