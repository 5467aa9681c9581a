"""`password set|delete`: keep the SMTP password in the OS keyring, never in a file or an argument."""

from __future__ import annotations

import argparse

from jobmail.cli.output import Console, commands_in
from jobmail.cli.prompts import read_password
from jobmail.errors import EXIT_OK, Command, CredentialError


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "password",
        help=SUMMARIES["password"],
        description="The password is kept only in the OS keyring, under the SMTP host and your username "
        "from the .env file. It is never read from an argument.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_p = actions.add_parser("set", parents=[common], help="prompt for the password and store it")
    set_p.add_argument("--stdin", action="store_true", help="read the password as one line from standard input")
    set_p.set_defaults(run=run_set)
    del_p = actions.add_parser("delete", parents=[common], help="remove the stored password")
    del_p.set_defaults(run=run_delete)


def run_set(args: argparse.Namespace, console: Console) -> int:
    from jobmail import settings as config
    from jobmail.auth.credentials import backend_name, set_password, storage_note

    settings = config.load(args.env_file)
    if not settings.smtp_host or not settings.smtp_username:
        raise CredentialError(
            "SMTP_HOST and SMTP_USERNAME (or FROM_ADDRESS) must be set in .env first: run ",
            Command("setup"),
            ", which asks for them and stores the password",
        )
    password = read_password(args.stdin, f"Password for {settings.smtp_username} at {settings.smtp_host}: ")
    set_password(settings.smtp_host, settings.smtp_username, password, settings.keyring_backend)
    where = backend_name(settings.keyring_backend)
    console.out(f"Stored the password for {settings.smtp_username} at {settings.smtp_host} in the keyring ({where}).")
    note = storage_note(settings.keyring_backend)
    if note:
        console.out(*commands_in(note))
    return EXIT_OK


def run_delete(args: argparse.Namespace, console: Console) -> int:
    from jobmail import settings as config
    from jobmail.auth.credentials import delete_password

    settings = config.load(args.env_file)
    if delete_password(settings.smtp_host, settings.smtp_username, settings.keyring_backend):
        console.out(f"Deleted the password for {settings.smtp_username} at {settings.smtp_host} from the keyring.")
    else:
        console.out(f"No password was stored for {settings.smtp_username} at {settings.smtp_host}.")
    return EXIT_OK
