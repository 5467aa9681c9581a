"""`check`: log in to the configured SMTP account, step by step, without sending anything."""

from __future__ import annotations

import os
import sys

from jobmail.cli.common import err, out, settings_from
from jobmail.errors import EXIT_OK

DESCRIPTION = """Connect to the SMTP server, negotiate TLS and verify its certificate, find the password in the
keyring, log in, and quit. Nothing is sent. Each step is printed with its result; a failure comes with the
server's reply and what to do about it.

exit codes: 0 the account works, 1 it does not (see the hint), 2 bad configuration (the .env file, or no
keyring backend / no stored password)"""


def register(subparsers, common) -> None:
    import argparse

    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "check",
        parents=[common],
        help=SUMMARIES["check"],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from(args)
    return run_check(settings, args)


def password_command(args) -> str:
    return "python send.py password set"  # the --env-file given is added to every suggested command


def run_check(settings, args) -> int:
    """Run the check, printing each step as it completes; return the exit code (used by `setup` too)."""
    from jobmail.smtp.diagnose import check

    result = check(settings, password_command=password_command(args), on_step=print_step, environ=os.environ)
    failed = result.failed
    if failed is None:
        out(f"The account works: {settings.smtp_username} can send through {settings.server}. Nothing was sent.")
        return EXIT_OK
    out(f"The account does not work yet: the {failed.title.split()[0]} step failed.")
    print_failure(failed)
    return failed.exit_code


def step_line(step) -> str:
    if step.name == "keyring":
        return f"keyring: {step.detail}" if step.ok else "keyring: FAILED"
    if step.ok:
        return f"{step.title} ... {step.mark}" + (f" ({step.detail})" if step.detail else "")
    return f"{step.title} ... FAILED" + (f" ({step.reply})" if step.reply else "")


def print_step(step) -> None:
    out(step_line(step))


def print_failure(step) -> None:
    """The failed step's problem and hint as one `error:` line on stderr, then any longer guidance."""
    sys.stdout.flush()
    err(f"error: {step.problem}" + (f": {step.hint}" if step.hint else ""))
    for line in step.guidance:
        err(line)
