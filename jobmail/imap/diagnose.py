"""`check`'s IMAP steps: log in (TLS verified as for SMTP), then find the Sent folder. Nothing is changed.

Each step is a jobmail.smtp.diagnose.Step, so the CLI shows them as it shows the SMTP steps. This module
does not print: the CLI does.
"""

from __future__ import annotations

from collections.abc import Callable

from jobmail.errors import EXIT_SEND_FAILED, JobmailError
from jobmail.imap import client
from jobmail.settings import Settings
from jobmail.smtp.diagnose import Step


def check(settings: Settings, secret: Callable[[], str], on_step: Callable[[Step], None]) -> list[Step]:
    """The IMAP login and the Sent folder, one Step each (stopping at the first failure)."""
    steps: list[Step] = []

    def add(step: Step) -> None:
        steps.append(step)
        on_step(step)

    title = f"IMAP login as {settings.imap_username} at {settings.imap_server}"
    try:
        with client.connect(settings, secret) as box:
            add(Step("imap", title, True, box.tls or "no TLS (a server on this machine)"))
            try:
                folder = box.sent_folder()
            except JobmailError as exc:
                add(_failed("sent", "Sent folder", exc))
                return steps
            how = "marked \\Sent" if "\\sent" in folder.flags else "found by its name"
            if settings.sent_folder:
                how = "SENT_FOLDER"
            add(Step("sent", "Sent folder", True, f"{folder.shown!r} ({how}); {_copy_plan(settings)}"))
    except JobmailError as exc:
        add(_failed("imap", title, exc))
    return steps


def _copy_plan(settings: Settings) -> str:
    if settings.copies_to_sent:
        return "a copy of each message sent goes there"
    if settings.sent_copy == "never":
        return "SENT_COPY=never: no copy is made"
    return "SENT_COPY=auto: your provider files sent mail there itself, so no copy is made"


def _failed(name: str, title: str, exc: JobmailError) -> Step:
    return Step(name, title, False, problem=str(exc), exit_code=EXIT_SEND_FAILED, commands=exc.commands)
