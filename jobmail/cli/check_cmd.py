"""`check`: log in to the configured SMTP account, step by step, without sending anything."""

from __future__ import annotations

import argparse

from jobmail.cli.output import Console

DESCRIPTION = """Connect to the SMTP server, negotiate TLS and verify its certificate, find the password in the
keyring, log in, and quit. Nothing is sent. Each step is printed with its result; a failure comes with the
server's reply and what to do about it.

exit codes: 0 the account works, 1 it does not (see the hint), 2 bad configuration (the .env file, or no
keyring backend / no stored password)"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "check",
        parents=[common],
        help=SUMMARIES["check"],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from jobmail import settings as config
    from jobmail.cli.checking import run_check

    settings = config.load(args.env_file)
    settings.require_account()
    return run_check(console, settings)
