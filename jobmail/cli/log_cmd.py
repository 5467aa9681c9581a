"""`log`: read the sent log: the latest state of each message, newest first."""

from __future__ import annotations

import json
from datetime import datetime

from ..errors import EXIT_OK
from .common import out, settings_from, terminal_width


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "log",
        parents=[common],
        help="show what was sent: the latest state of each message, newest first",
        description="Show the sent log: the latest state of each message, newest first.",
    )
    p.add_argument("--limit", type=int, default=20, metavar="N", help="show at most N messages (default 20)")
    p.add_argument("--all", action="store_true", help="show every message")
    p.add_argument("--json", action="store_true", help="print records as JSON Lines")
    p.set_defaults(run=run)


def local_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def table(rows: list[list[str]], width: int) -> list[str]:
    """Align columns; the last column (the subject) is cut to fit the terminal."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=False))
        room = max(10, width - len(head) - 2)
        last = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append(f"{head}  {last}".rstrip())
    return lines


def run(args) -> int:
    from itertools import islice

    from ..sentlog import SentLog

    settings = settings_from(args, require_account=False)
    log = SentLog(settings.log_dir)
    states = log.latest_states()
    records = list(states if args.all else islice(states, max(0, args.limit)))
    if args.json:
        for record in records:
            out(json.dumps(record, ensure_ascii=False))
        return EXIT_OK
    if not records:
        out(f"The sent log is empty ({log.path}).")
        return EXIT_OK
    rows = [["TIME", "STATUS", "TO", "ID", "SUBJECT"]]
    for r in records:
        rows.append([local_time(r["time"]), r["status"], ", ".join(r.get("to", [])), r["id"][:8], r.get("subject", "")])
    for line in table(rows, terminal_width()):
        out(line)
    return EXIT_OK
