"""`track`: look in the mailbox (IMAP, read-only) for the answers to what we sent, and log them as `replied`.

The logic is jobmail/app/tracking.py; this module parses, prints and picks exit codes.
"""

from __future__ import annotations

import argparse

from jobmail.cli.output import Console

DESCRIPTION = """Log in over IMAP (IMAP_HOST, with the SMTP password or sign-in), search INBOX (and the
provider's All Mail, where it has one) for messages that answer one you sent (their In-Reply-To or
References holds its Message-ID), and add one `replied` record per answer to the sent log. Nothing in
the mailbox changes: it is opened read-only and no message is marked read. Running it again adds
nothing new. Sent folder copies that failed earlier are made first.

exit codes: 0 done, 1 the IMAP server could not be reached or refused the login, 2 bad configuration"""

EXAMPLES = """examples:
  python send.py track                  answers to what you sent in the last 60 days
  python send.py track --all            look further back
  python send.py log --status replied   the messages that got an answer"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "track",
        parents=[common],
        help=SUMMARIES["track"],
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--all", action="store_true", help="look for answers to every message sent, not the last 60 days")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from jobmail import settings as config
    from jobmail.app.tracking import track
    from jobmail.cli import reporting, views
    from jobmail.clock import utc_now
    from jobmail.errors import EXIT_OK, Command, ConfigError

    settings = config.load(args.env_file)
    settings.require_account()
    if not settings.uses_imap:
        raise ConfigError(
            "IMAP_HOST is not set: `track` reads your mailbox over IMAP; add IMAP_HOST (e.g. imap.gmail.com) to "
            "your .env (config.example.env and the README's \"Sent folder and replies\" list each provider's), "
            "then run ",
            Command("check"),
        )
    done = track(settings, utc_now(), everything=args.all)
    for record in done.copies:
        console.out(*reporting.sent_copy_parts(record))
    window = f"since {done.since:%Y-%m-%d}" if done.since else "at any time"
    where = " and ".join(done.folders)
    if not done.replies:
        console.out(f"No new replies in {where} to the {done.searched} message(s) sent {window}.")
        return EXIT_OK
    console.out(f"{len(done.replies)} new repl{'y' if len(done.replies) == 1 else 'ies'} (searched {where}):")
    for record in done.replies:
        console.verbatim(views.reply_line(record))
    console.out(
        "See one with ", Command("log", "show", "ID"), "; all of them with ", Command("log", "--status", "replied"), "."
    )
    return EXIT_OK
