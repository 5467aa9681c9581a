"""`log`: read the sent log: the latest state of each message, newest first; `log show ID` for one message.

Kept light: `send.py log` must start fast and never import jinja2, keyring, smtplib or email.mime.
"""

from __future__ import annotations

import argparse
import sys

from jobmail.cli import views
from jobmail.cli.output import Console, lifted, reconfigure_unless_utf8, terminal_width
from jobmail.errors import EXIT_OK, Command, InputError
from jobmail.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime

    from jobmail.store.sentlog import Query, SentLog

MAX_LIMIT = 1_000_000  # --limit's largest value (a larger one is --all)

EXAMPLES = """examples:
  python send.py log                          the latest 20 messages
  python send.py log --status failed,unknown  what may need a look
  python send.py log --to acme --since 7d     to (or Cc) an address containing 'acme', this week
  python send.py log --grep "Data Analyst"    subject or body
  python send.py log show 3f9a2c1b            one message: every state, and the exact message
  python send.py log --all --csv > sent.csv   for a spreadsheet"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "log",
        parents=[common],
        help=SUMMARIES["log"],
        description="Show the sent log: the latest state of each message, newest first.\n"
        "TIME is local time (for a scheduled message: when it is due); STATUS carries the server's reply code.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", metavar="show", help="`log show ID`: one message's history and stored copy")
    p.add_argument("id", nargs="?", metavar="ID", help="a message id, or a unique start of one (the ID column)")
    p.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="only messages now in STATUS: sent, replied, failed, unknown, scheduled, overdue, cancelled, sending or "
        "retrying (repeat it, or a comma list: sent,failed)",
    )
    p.add_argument("--to", metavar="TEXT", help="only messages to (or Cc) an address containing TEXT (any case)")
    p.add_argument("--since", metavar="WHEN", help="only messages changed at or after WHEN: 2026-11-01, 7d, 12h ...")
    p.add_argument("--until", metavar="WHEN", help="only messages changed at or before WHEN (a date: that whole day)")
    p.add_argument("--grep", metavar="TEXT", help="only messages whose subject or body contains TEXT (any case)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="show at most N messages (default 20)")
    p.add_argument("--all", action="store_true", help="show every message")
    formats = p.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print the records as JSON Lines (one object a line)")
    formats.add_argument("--csv", action="store_true", help="print the records as CSV, with a header row")
    formats.add_argument("--raw", action="store_true", help="with show: print only the stored message's exact bytes")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from jobmail.settings import load
    from jobmail.store.sentlog import SentLog

    settings = load(args.env_file)
    log = SentLog(settings.log_folder, on_warning=lambda text: console.err("warning: ", *lifted((text,))))
    try:
        if args.action == "show":
            return show(console, args, log)
        if args.action is not None:
            raise InputError(
                f"unknown log command {args.action!r}: to see one message, run ", Command("log", "show", args.action)
            )
        if args.raw:
            raise InputError("--raw goes with show: ", Command("log", "show", "ID", "--raw", ">", "message.eml"))
        return list_messages(console, args, log)
    except BrokenPipeError:  # `send.py log --all | head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK


def list_messages(console: Console, args: argparse.Namespace, log: SentLog) -> int:
    from itertools import islice

    from jobmail.clock import utc_now

    if args.limit < 1 and not args.all:
        raise InputError(f"--limit {args.limit}: give 1 or more, or use --all")
    if args.limit > MAX_LIMIT and not args.all:
        raise InputError(f"--limit {args.limit}: give at most {MAX_LIMIT}; to see every message, use --all")
    query = build_query(args, log, utc_now())
    found = log.latest(query)
    records = list(found) if args.all else list(islice(found, args.limit + 1))
    more = not args.all and len(records) > args.limit
    records = recover(log, records[: args.limit] if more else records)
    if args.json:
        write_json(console, records)
    elif args.csv:
        write_csv(records)
    elif not records:
        filtered = bool(query)
        console.out(
            f"No message matches these filters (in {log.file})." if filtered else f"The sent log is empty ({log.file})."
        )
    else:
        for line in views.table(records, terminal_width()):
            console.verbatim(line)
        console.out("")
        console.out(views.summary(records, more, filtered=bool(query)))
    return EXIT_OK


def build_query(args: argparse.Namespace, log: SentLog, now: datetime) -> Query:
    from jobmail.store.sentlog import Query

    since = views.parse_when(args.since, "--since", now) if args.since else None
    until = views.parse_when(args.until, "--until", now, end_of_day=True) if args.until else None
    if since is not None and until is not None and since > until:
        raise InputError(f"--since {args.since} is after --until {args.until}: nothing can match; swap them")
    return Query(
        statuses=views.parse_statuses(args.status),
        to=(args.to or "").strip(),
        since=since,
        until=until,
        where=views.grep_filter(log, args.grep) if args.grep else None,
    )


def recover(log: SentLog, records: list[dict]) -> list[dict]:
    """A message left `sending` (or, by an immediate send, `retrying`) by a process that is gone is shown,
    and recorded, as `unknown` (or `failed`)."""
    if not any(record.get("status") in (Status.SENDING, Status.RETRYING) for record in records):
        return records
    from jobmail.app.recovery import recover_interrupted

    written = {record["id"]: record for record in recover_interrupted(log, records)}
    return [written.get(record["id"], record) for record in records]


def show(console: Console, args: argparse.Namespace, log: SentLog) -> int:
    if not args.id:
        raise InputError(
            "give the message's id: ", Command("log", "show", "ID"), " (the ID column of ", Command("log"), ")"
        )
    message_id = log.resolve(args.id)
    current = log.current(message_id)
    if current is not None:
        recover(log, [current])
    history = log.history(message_id)
    data = log.read_message(message_id)
    if args.raw:
        if data is None:
            raise InputError(f"no stored copy of {message_id}: {log.message_path(message_id)} is missing")
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    if args.json:
        write_json(console, history)
        return EXIT_OK
    if args.csv:
        write_csv(history)
        return EXIT_OK
    latest = history[-1]
    console.out(f"Message {message_id}: {views.status_cell(latest)} (since {views.local_time(latest['time'])})")
    for line in views.message_lines(latest):
        console.verbatim(line)
    console.out("")
    console.out("History (local time):")
    for record in history:
        console.verbatim(views.state_line(record))
    console.out("")
    replies = views.reply_lines(history)
    if replies:
        console.out("Replies (local time):")
        for line in replies:
            console.verbatim(line)
        console.out("")
    path = log.message_path(message_id)
    if data is None:
        console.out(f"No stored copy: {path} is missing.")
        return EXIT_OK
    kept = "sent" if latest["status"] in (Status.SENT, Status.REPLIED, Status.UNKNOWN) else "kept"
    console.out(f"Stored message, exactly as {kept}: {path}")
    console.out(
        f"({len(data)} bytes; the exact bytes alone: ",
        Command("log", "show", message_id[:8], "--raw", ">", "copy.eml"),
        ")",
    )
    rule = "-" * 72
    console.out(rule)
    console.verbatim(views.raw_text(data))
    console.out(rule)
    if views.needs_decoding(data):
        console.out("Decoded (the message above uses MIME encodings):")
        for line in views.decoded_lines(data):
            console.verbatim(f"  {line}".rstrip())
    return EXIT_OK


def utf8_stdout() -> None:
    """JSON and CSV are UTF-8 whatever the console's code page (Windows writes cp1252 to a redirect)."""
    reconfigure_unless_utf8(sys.stdout, encoding="utf-8")


def write_json(console: Console, records: list[dict]) -> None:
    import json

    utf8_stdout()
    for record in records:
        console.verbatim(json.dumps(record, ensure_ascii=False))


def write_csv(records: list[dict]) -> None:
    import csv

    utf8_stdout()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(views.CSV_COLUMNS)
    for record in records:
        writer.writerow(views.csv_row(record))


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so Python's exit flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
