"""The command line: argparse subcommands. The only place that prints and picks exit codes.

Each subcommand lives in its own module with `register(subparsers, common)` and a `run(args, console)`;
heavy imports (jinja2, keyring, smtplib) happen once, at the start of `run`, so `--help` and `log` stay
fast. A command module imports only the shared ones (arguments, output, views, reporting, checking,
prompts) and the app, never another command's module.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from jobmail import __version__, interrupts
from jobmail.errors import EXIT_BAD_INPUT, EXIT_OK, Command, JobmailError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.cli.output import Console

# Subcommand name -> its module, in the order --help lists them. Only the module of the command being
# run is imported; --help (or no valid command) lists them from SUMMARIES without importing any.
COMMANDS = {
    "send": "send_cmd",
    "demo": "demo_cmd",
    "setup": "setup_cmd",
    "check": "check_cmd",
    "password": "password_cmd",
    "login": "login_cmd",
    "lint": "lint_cmd",
    "log": "log_cmd",
    "outbox": "outbox_cmd",
    "track": "track_cmd",
}
SUMMARIES = {
    "send": "render, check and send one email",
    "demo": "try it with no account: send the sample withdrawal to a local server inside this process",
    "setup": "configure your SMTP account step by step, store the password, and check it",
    "check": "verify the account (connect, TLS, login) without sending anything",
    "password": "store or delete the SMTP password in the OS keyring",
    "login": "sign in with Microsoft, Google or another OAuth 2.0 server (SMTP_AUTH=oauth2)",
    "lint": "check a template (or an .eml file) against the guide, without sending",
    "log": "show what was sent: the latest state of each message, newest first",
    "outbox": "list scheduled messages; cancel one, send one now, or run the scheduled sends",
    "track": "find the answers to what you sent in your mailbox (IMAP, read-only) and log them as replied",
}

EPILOG = """global options, before or after COMMAND: --env-file PATH (settings file; default: .env here),
--debug (log each step, never secrets)

exit codes: 0 sent or queued, 1 the send failed, 2 bad input or config,
3 outcome unknown (check your Sent folder), 130 interrupted (Ctrl-C),
143 stopped (SIGTERM: kill, systemctl stop), 129 hang-up (the terminal closed)"""


def build_parser(only: str | None = None, listing_only: bool = False) -> argparse.ArgumentParser:
    """The parser. With `only`, just that subcommand is registered; with `listing_only`, every subcommand
    is a bare entry for --help (no module imported). Both are for a faster start."""
    from jobmail.cli.arguments import common_parent
    from jobmail.cli.output import parser_classes

    Parser, _, _ = parser_classes()
    common = common_parent()
    parser = Parser(
        prog="send.py",
        description="Send a polite withdrawal or offer decline through your own SMTP account, and keep a log.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, module in COMMANDS.items():
        if listing_only:
            subparsers.add_parser(name, help=SUMMARIES[name])
        elif only is None or name == only:
            import_module(f".{module}", __name__).register(subparsers, common)
    return parser


def _never_fail_on_encoding() -> None:
    """A console or redirect whose code page lacks a character (Windows' cp1252 and "Łódź") shows '?'
    instead of ending the command with a UnicodeEncodeError."""
    from jobmail.cli.output import reconfigure_unless_utf8

    for stream in (sys.stdout, sys.stderr):
        reconfigure_unless_utf8(stream, errors="replace")


def _joined_negative_times(argv: list[str]) -> list[str]:
    """`--at -1h` as `--at=-1h`: argparse takes a value that starts with '-' for an option and says only
    "expected one argument"; joined, the time parser says what it accepts."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--at" and arg[:1] == "-" and arg[1:2].isdigit():
            joined[-1] = f"--at={arg}"
        else:
            joined.append(arg)
    return joined


def _globals_after_command(argv: list[str]) -> list[str]:
    """`send.py --env-file x.env send ...` (global options first, as git and docker take them): those options
    moved after the command, where every command's parser reads them."""
    moved: list[str] = []
    index = 0
    while index < len(argv) and argv[index] not in COMMANDS:
        arg = argv[index]
        if arg == "--env-file" and index + 1 < len(argv):
            moved += argv[index : index + 2]
            index += 2
        elif arg.startswith("--env-file=") or arg == "--debug":
            moved.append(arg)
            index += 1
        else:
            break
    return argv[index:] + moved if moved else argv


def main(argv: list[str] | None = None) -> int:
    """Run one command; Ctrl-C, SIGTERM and a hang-up stop it the same way (jobmail.interrupts)."""
    with interrupts.handled():
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:  # while parsing or loading the command: nothing was under way
            print(f"\n{_stopped(exc)}: nothing was done", file=sys.stderr)
            return interrupts.exit_code(exc)


def _stopped(exc: BaseException) -> str:
    """'interrupted' for Ctrl-C; 'stopped by SIGTERM' and the like for the other signals."""
    said = interrupts.said(exc)
    return "interrupted" if said == "Ctrl-C" else f"stopped by {said}"


def _main(argv: list[str] | None) -> int:
    _never_fail_on_encoding()
    argv = _globals_after_command(_joined_negative_times(sys.argv[1:] if argv is None else list(argv)))
    first = argv[0] if argv else None
    parser = build_parser(only=first) if first in COMMANDS else build_parser(listing_only=True)
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("filelock").setLevel(logging.INFO)  # its every acquire and release is noise here
    from jobmail.cli.output import Console

    return _run(args, Console(env_file=getattr(args, "env_file", None)))


def _run(args: argparse.Namespace, console: Console) -> int:
    try:
        return args.run(args, console)
    except JobmailError as exc:
        console.err("error: ", *exc.parts)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        console.err(f"\n{_stopped(exc)} (the state of any message is in ", Command("log"), ")")
        return interrupts.exit_code(exc)
    except BrokenPipeError:  # stdout's reader went away (`send.py log | head`): nothing to say, nowhere to say it
        from jobmail.cli.output import stdout_closed

        stdout_closed()
        return EXIT_OK
    except ModuleNotFoundError as exc:  # run with a Python that lacks the project's packages
        package = (exc.name or "?").split(".")[0]
        print(
            f"error: the package {package!r} is not installed for this Python ({sys.executable}): "
            "run `.venv/bin/python send.py ...` (Windows: `.venv\\Scripts\\python send.py ...`), "
            "or activate the virtual environment first",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except OSError as exc:  # a folder that is not there, not a folder, or not ours (LOG_DIR, TEMPLATES_DIR)
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"error: {exc.strerror or exc}{where}: check LOG_DIR and TEMPLATES_DIR in your .env, "
            "and that those folders are yours",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
