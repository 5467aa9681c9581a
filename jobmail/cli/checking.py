"""The account check as the user watches it: each step as it completes, then the verdict (`check` and
`setup` both run it).

Heavy: it loads the SMTP diagnosis. A command imports it at the start of its `run`.
"""

from __future__ import annotations

import os

from jobmail.cli import views
from jobmail.cli.output import Console, commands_in
from jobmail.errors import EXIT_OK
from jobmail.settings import Settings
from jobmail.smtp.diagnose import Step, check


class _StepPrinter:
    """Each step on one line: its title as soon as it starts (`connect smtp.example.com:587 ...`, shown at
    once, so that a step that waits is on the screen while it waits), then its result on the same line."""

    def __init__(self, console: Console):
        self.console = console
        self.started: str | None = None  # the title of the step begun and not yet ended

    def start(self, title: str) -> None:
        self.end_line()
        self.console.begin(views.step_start(title))
        self.started = title

    def __call__(self, step: Step) -> None:
        if self.started is not None and self.started == step.title:
            self.started = None
            self.console.out(*commands_in(" " + views.step_result(step)))
            return
        self.end_line()
        self.console.out(*commands_in(views.step_line(step)))

    def end_line(self) -> None:
        """End a begun line that no result came for (a step that did not happen, or an interrupted one)."""
        if self.started is not None:
            self.started = None
            self.console.out()


def run_check(console: Console, settings: Settings) -> int:
    """Run the check, printing each step as it starts and its result as it completes; return the exit code."""
    print_step = _StepPrinter(console)
    try:
        result = check(settings, on_step=print_step, environ=os.environ, on_start=print_step.start)
    finally:
        print_step.end_line()
    failed = result.failed
    if failed is None and settings.uses_imap:
        failed = _check_imap(settings, print_step)
        if failed is not None:
            console.out(f"Sending works, but IMAP does not yet: the {failed.title.split()[0]} step failed.")
            print_failure(console, failed)
            return failed.exit_code
    if failed is None:
        console.out(
            f"The account works: {settings.smtp_username} can send through {settings.server}. Nothing was sent."
        )
        return EXIT_OK
    console.out(f"The account does not work yet: the {failed.title.split()[0]} step failed.")
    print_failure(console, failed)
    return failed.exit_code


def _check_imap(settings: Settings, print_step) -> Step | None:
    """IMAP_HOST is set: log in there too (the same password or sign-in) and find the Sent folder."""
    from jobmail.app.sending import password_provider
    from jobmail.imap import diagnose  # imports imaplib: only with IMAP_HOST set

    steps = diagnose.check(settings, password_provider(settings), print_step)
    return next((step for step in steps if not step.ok), None)


def print_failure(console: Console, step: Step) -> None:
    """The failed step's problem and hint as one `error:` line on stderr, then any longer guidance."""
    console.flush()
    for line in views.failure_lines(step):
        console.err(*commands_in(line))
