"""`demo`: the whole pipeline with no account, through an SMTP server on loopback inside this process."""

from __future__ import annotations

from jobmail.cli.common import out, verbatim
from jobmail.errors import EXIT_OK

DEMO_VALUES = {
    "FROM_ADDRESS": "alex.example@example.com",
    "FROM_NAME": "Alex Example",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_SECURITY": "none",
    "SEND_ATTEMPTS": "1",
}
DEMO_ARGS = [
    "withdraw",
    "--to",
    "jordan.lee@example.com",
    "--interviewer",
    "Jordan Lee",
    "--position",
    "Data Analyst",
    "--company",
    "Example Corp",
    "--reason",
    "another-offer",
]


def register(subparsers, common) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "demo",
        parents=[common],
        help=SUMMARIES["demo"],
        description="Run the whole pipeline (render, check, send, log) against an SMTP server on 127.0.0.1 "
        "started inside this process. Nothing leaves this machine; no account or password is needed. "
        "Records go to the demo/ folder inside the log folder, apart from your real log.",
    )
    p.set_defaults(run=run)


def demo_log_dir(args):
    """`demo/` inside the configured log folder (or the default one when the config cannot be read)."""
    from jobmail.errors import JobmailError
    from jobmail.settings import PROJECT_DIR, load

    try:
        return load(args.env_file).log_dir / "demo"
    except JobmailError:
        return PROJECT_DIR / "log" / "demo"


def run(args) -> int:
    import json
    from datetime import UTC, datetime

    from jobmail.cli.send_cmd import (
        build_parser_for_demo,
        prepare_from_args,
        print_summary,
        send_prepared,
        stop_on_guide_errors,
    )
    from jobmail.loopback import LoopbackServer
    from jobmail.settings import from_values

    with LoopbackServer() as server:
        out(f"DEMO: a local SMTP server is listening on 127.0.0.1:{server.port} inside this process.")
        out("DEMO: no account, no password, no internet: nothing leaves this machine.")
        out("")
        settings = from_values({**DEMO_VALUES, "SMTP_PORT": str(server.port), "LOG_DIR": str(demo_log_dir(args))})
        demo_args = build_parser_for_demo().parse_args(DEMO_ARGS)
        prepared = prepare_from_args(demo_args, settings, datetime.now(UTC))
        print_summary(prepared)
        stop_on_guide_errors(prepared, force=False)
        send_prepared(settings, prepared, force=True, log_hint=False)
        received = server.messages[-1]
    out("")
    out(f"--- what the local server received ({len(received.data)} bytes, for {', '.join(received.rcpt_tos)}) ---")
    verbatim(received.data.decode("ascii", "replace").replace("\r\n", "\n").rstrip("\n"))
    out("--- the sent log's records for it ---")
    from jobmail.store.sentlog import SentLog

    for record in SentLog(settings.log_folder).history(prepared.id):
        verbatim(json.dumps(record, ensure_ascii=False))
    out("")
    out("DEMO finished: the message went only to the local server inside this process; nothing left this machine.")
    out(f"Demo records are kept apart from your real log, in {settings.log_dir}.")
    out("To send for real, with the virtual environment's Python (`.venv/bin/python`, or activate .venv first):")
    out("  python send.py setup        # your account, step by step")
    out("  python send.py send --help  # then the one command that sends")
    return EXIT_OK
