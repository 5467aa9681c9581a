"""Sending as the user watches it: the shared behaviour of `send`, `demo` and `outbox`.

Each function runs an app use case and prints what happens through the run's Console: a message's summary
and its guide checklist, a send and its `Sent via` / `Logged as` lines, a retry as it happens, the Sent
folder copy. Scheduling (`send --at`, the wait, `outbox run`) is jobmail.cli.scheduling.

Heavy: it loads the sending use case. A command imports it at the start of its `run`; a send that goes
out now does not load the outbox, the scheduler or the time zones.
"""

from __future__ import annotations

from collections.abc import Callable

from jobmail.app.sending import Prepared, send_now
from jobmail.cli import views
from jobmail.cli.output import Console, lifted
from jobmail.errors import (
    EXIT_OK,
    Command,
    EtiquetteError,
    LogLockedError,
    SendError,
)
from jobmail.settings import Settings
from jobmail.smtp.ahead import Ahead
from jobmail.status import Status
from jobmail.store.sentlog import SentLog

OnEvent = Callable[[str, dict], None]


def retry_reporter(console: Console, copies: list[tuple] | None = None) -> OnEvent:
    """The on_event callback of a send: a retry, as it happens (send and the outbox); the Sent copy's
    outcome too, or, with `copies`, its line kept there for the caller to say after the `Sent via` line
    (the copy is made after the server's 250)."""

    def report_event(state: str, record: dict) -> None:
        if state == "sent_copy":
            if copies is None:
                console.out(*sent_copy_parts(record))
            else:
                copies.append(sent_copy_parts(record))
        if state == Status.RETRYING:
            console.err(
                f"attempt {record['attempt']} failed: ",
                *lifted((str(record["error"]),)),
                f"; retrying in {record['retry_in']}s",
            )

    return report_event


def sent_copy_parts(record: dict) -> tuple:
    """The Sent folder copy's outcome, as a line's parts (a send, `outbox run`, `track`)."""
    short = record["id"][: views.SHORT_ID]
    folder = record.get("sent_copy_folder", "")
    outcome = record.get("sent_copy")
    if outcome == "saved":
        return (f"Copy of {short} saved in your Sent folder ({folder}).",)
    if outcome == "found":
        return (f"{short} is already in your Sent folder ({folder}): no second copy made.",)
    if outcome == "pending":
        return (
            f"Sent folder copy of {short} not made yet (",
            *lifted((str(record.get("sent_copy_error", "")),)),
            "): the message itself was sent; ",
            Command("track"),
            " or ",
            Command("outbox", "run", "--once"),
            " tries again.",
        )
    return (f"Sent folder copy of {short}: {outcome}.",)


# -- send now ------------------------------------------------------------------------------------


def print_summary(console: Console, prepared: Prepared) -> None:
    for line in views.summary_lines(prepared):
        console.verbatim(line)
    for note in prepared.notes:
        console.out(f"warning: {note}")


def stop_on_guide_errors(prepared: Prepared, force: bool) -> None:
    errors = prepared.report.errors
    if errors and not force:
        raise EtiquetteError(
            f"the message breaks the guide ({len(errors)} error(s) listed above): nothing sent; "
            "fix the template or the variables, or add --force to send it anyway"
        )


def send_and_report(
    console: Console,
    settings: Settings,
    prepared: Prepared,
    force: bool,
    log_hint: bool = True,
    ahead: Ahead | None = None,
) -> int:
    """Send the message now (on the connection opened `ahead`, if any); say through which server, and
    where it is logged."""
    logged = views.logged_parts(prepared.id, SentLog(settings.log_folder).file)
    copies: list[tuple] = []
    try:
        done = send_now(settings, prepared, force=force, on_event=retry_reporter(console, copies), ahead=ahead)
    except (SendError, LogLockedError):  # recorded as failed or unknown: say where, before the error line itself
        if log_hint:
            console.err(*logged)
        raise
    console.out(f"Sent via {done.server} ({done.tls or 'no TLS'}): {done.code} {done.text}")
    for parts in copies:
        console.out(*parts)
    if log_hint:
        console.out(*logged)
    return EXIT_OK
