"""One error base for the whole package; the CLI turns it into a message and an exit code."""

from __future__ import annotations

# Exit codes, one table (mirrored in the README).
EXIT_OK = 0
EXIT_SEND_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130


class JobmailError(Exception):
    """Base of every error the user can cause or fix. Its text is one line that says what to do."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(JobmailError):
    """The .env file or the environment holds something unusable. `key`: the setting at fault, when one
    is (config.load then says where it was set: the file and line, or the environment)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class CredentialError(JobmailError):
    """The keyring is missing, unusable, or holds no password for this account."""


class TemplateError(JobmailError):
    """A template is missing, malformed, or needs a variable that was not given."""


class InputError(JobmailError):
    """A command-line value or a message field is invalid."""


class EtiquetteError(JobmailError):
    """The rendered message breaks the guide in a way that blocks the send."""


class DuplicateError(JobmailError):
    """The same message was already sent (or may have been) to the same recipient."""


class SendError(JobmailError):
    """The server refused the message or could not be reached; nothing was delivered."""

    exit_code = EXIT_SEND_FAILED

    def __init__(self, message: str, *, code: int | None = None, reply: str = "", transient: bool = False):
        super().__init__(message)
        self.code = code
        self.reply = reply
        self.transient = transient
        self.attempts = 0


class OutcomeUnknown(SendError):
    """The message data went out but no final reply came back: it may have been delivered."""

    exit_code = EXIT_UNKNOWN
