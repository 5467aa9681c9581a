"""`demo`: the whole pipeline with no account, through an SMTP server on loopback inside this process."""

from __future__ import annotations

import argparse

from jobmail.cli.output import Console
from jobmail.errors import EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.app.requests import SendRequest

DEMO_VALUES = {
    "FROM_ADDRESS": "alex.example@example.com",
    "FROM_NAME": "Alex Example",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_SECURITY": "none",
    "SEND_ATTEMPTS": "1",
}
# The sample withdrawal, as `send withdraw --to ... --reason another-offer` would ask for it.
DEMO_TO = "jordan.lee@example.com"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace, console: Console) -> int:
    import json
    from datetime import UTC, datetime

    from jobmail.app.requests import SendRequest
    from jobmail.app.sending import prepare
    from jobmail.cli import reporting
    from jobmail.errors import JobmailError
    from jobmail.loopback import LoopbackServer
    from jobmail.settings import PROJECT_DIR, from_values, load
    from jobmail.store.sentlog import SentLog

    try:  # `demo/` inside the configured log folder (or the default one when the config cannot be read)
        log_dir = load(args.env_file).log_dir / "demo"
    except JobmailError:
        log_dir = PROJECT_DIR / "log" / "demo"
    with LoopbackServer() as server:
        console.out(f"DEMO: a local SMTP server is listening on 127.0.0.1:{server.port} inside this process.")
        console.out("DEMO: no account, no password, no internet: nothing leaves this machine.")
        console.out("")
        settings = from_values({**DEMO_VALUES, "SMTP_PORT": str(server.port), "LOG_DIR": str(log_dir)})
        prepared = prepare(settings, demo_request(SendRequest), datetime.now(UTC))
        reporting.print_summary(console, prepared)
        reporting.stop_on_guide_errors(prepared, force=False)
        reporting.send_and_report(console, settings, prepared, force=True, log_hint=False)
        received = server.messages[-1]
    console.out("")
    console.out(
        f"--- what the local server received ({len(received.data)} bytes, for {', '.join(received.rcpt_tos)}) ---"
    )
    console.verbatim(received.data.decode("ascii", "replace").replace("\r\n", "\n").rstrip("\n"))
    console.out("--- the sent log's records for it ---")
    for record in SentLog(settings.log_folder).history(prepared.id):
        console.verbatim(json.dumps(record, ensure_ascii=False))
    console.out("")
    console.out(
        "DEMO finished: the message went only to the local server inside this process; nothing left this machine."
    )
    console.out(f"Demo records are kept apart from your real log, in {settings.log_dir}.")
    console.out(
        "To send for real, with the virtual environment's Python (`.venv/bin/python`, or activate .venv first):"
    )
    console.out("  python send.py setup        # your account, step by step")
    console.out("  python send.py send --help  # then the one command that sends")
    return EXIT_OK


def demo_request(make: type[SendRequest]) -> SendRequest:
    """The sample withdrawal (`make` is SendRequest, imported by run)."""
    return make(
        template="withdraw",
        to=(DEMO_TO,),
        interviewer="Jordan Lee",
        position="Data Analyst",
        company="Example Corp",
        reason="another-offer",
    )
