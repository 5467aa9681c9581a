"""The command line: argparse subcommands. The only place that prints and picks exit codes.

Each subcommand lives in its own module with `register(subparsers, common)` and a `run(args)`;
heavy imports (jinja2, keyring, smtplib) happen inside `run`, so `--help` and `log` stay fast.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import EXIT_INTERRUPTED, JobmailError
from . import check_cmd, demo_cmd, lint_cmd, log_cmd, outbox_cmd, password_cmd, send_cmd, setup_cmd

COMMANDS = (send_cmd, demo_cmd, setup_cmd, check_cmd, password_cmd, lint_cmd, log_cmd, outbox_cmd)

EPILOG = """exit codes: 0 sent or queued, 1 the send failed, 2 bad input or config,
3 outcome unknown (check your Sent folder), 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env-file", metavar="PATH", default=None, help="settings file (default: .env in the current folder)"
    )
    common.add_argument("--debug", action="store_true", help="log what happens, step by step (never secrets)")
    parser = argparse.ArgumentParser(
        prog="send.py",
        description="Send a polite withdrawal or offer decline through your own SMTP account, and keep a log.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except JobmailError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the sent log is consistent; see `python send.py log`", file=sys.stderr)
        return EXIT_INTERRUPTED
