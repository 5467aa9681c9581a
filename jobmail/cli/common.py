"""Small helpers shared by the subcommands: settings, the log, and terminal output."""

from __future__ import annotations

import os
import sys


def settings_from(args, require_account: bool = True):
    """The validated Settings for this command (.env file under the environment)."""
    from jobmail.settings import load

    settings = load(args.env_file)
    if require_account:
        settings.require_account()
    return settings


def sent_log(settings):
    from jobmail.store.sentlog import SentLog

    return SentLog(settings.log_folder)


def reconfigure_unless_utf8(stream, **options) -> None:
    """Reconfigure a text stream (errors=, encoding=) when it is not UTF-8 already, as a Windows code page is."""
    if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
        stream.reconfigure(**options)


# The --env-file the user gave (None: the default .env): the commands we suggest get it too, so that a
# hint like `python send.py log show ID` looks in the same account's log.
env_file: str | None = None


def with_env_file(text: str) -> str:
    """Each `python send.py ...` command suggested in `text`, with --env-file added when one was given."""
    if not env_file or "python send.py" not in text:
        return text
    import re

    given = shell_quoted(os.path.abspath(env_file))  # absolute: right from any folder, cron's too

    def add(found: re.Match) -> str:
        command = found.group(1)
        if "--env-file" in command or command.rstrip().endswith("..."):
            return found.group(0)
        head, redirect, tail = command.partition(" > ")
        return f"`{head} --env-file {given}" + (f" > {tail}" if redirect else "") + "`"

    return re.sub(r"`(python send\.py [^`]*)`", add, text)


def shell_quoted(path: str) -> str:
    """A path as one word on this platform's command line (POSIX shells; cmd and PowerShell on Windows)."""
    if os.name == "nt":
        import subprocess

        return subprocess.list2cmdline([path])
    import shlex

    return shlex.quote(path)


def out(text: str = "") -> None:
    """Our own words to the user (suggested commands get the --env-file that was given)."""
    print(with_env_file(text))


def verbatim(text: str = "") -> None:
    """The user's data as it is (a message, a record, a table of them): never rewritten."""
    print(text)


def err(text: str) -> None:
    print(with_env_file(text), file=sys.stderr)


def terminal_width() -> int | None:
    """Columns to fit output in: $COLUMNS, else the terminal's width; None (no cutting) when not a terminal.
    (shutil's rule, without importing shutil.)"""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
        if columns > 0:
            return columns
    except ValueError:
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None


def report_event(status: str, record: dict) -> None:
    """A retry, as it happens (send and the outbox)."""
    if status == "retrying":
        err(f"attempt {record['attempt']} failed: {record['error']}; retrying in {record['retry_in']}s")


def parser_classes():
    """argparse classes that size help text without importing shutil (argparse asks it for the terminal
    size on every add_argument: 2 ms of every start). Returns (Parser, HelpFormatter, RawDescription)."""
    import argparse

    width = (terminal_width() or 80) - 2

    class HelpFormatter(argparse.HelpFormatter):
        def __init__(self, prog, indent_increment=2, max_help_position=24, width=width):
            super().__init__(prog, indent_increment, max_help_position, width)

    class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    ours = {argparse.HelpFormatter: HelpFormatter, argparse.RawDescriptionHelpFormatter: RawDescriptionHelpFormatter}

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, formatter_class=argparse.HelpFormatter, **kwargs):
            super().__init__(*args, formatter_class=ours.get(formatter_class, formatter_class), **kwargs)

    return Parser, HelpFormatter, RawDescriptionHelpFormatter


def checklist_lines(report) -> list[str]:
    """The etiquette checklist: one line per step of the guide, then each finding."""
    lines = []
    for step, title, passed, findings in report.checklist():
        mark = "ok  " if passed else ("FAIL" if any(f.severity == "error" for f in findings) else "warn")
        lines.append(f"  [{mark}] {step}. {title}")
        for finding in findings:
            where = f"line {finding.line}: " if finding.line and f"line {finding.line}" not in finding.message else ""
            lines.append(f"         {finding.severity}: {where}{finding.message}")
    if getattr(report, "note", None):
        lines.append(f"  note: {report.note}")
    return lines
