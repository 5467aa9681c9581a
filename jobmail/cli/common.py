"""Small helpers shared by the subcommands: settings, the log, and terminal output."""

from __future__ import annotations

import sys


def settings_from(args, require_account: bool = True):
    """The validated Settings for this command (.env file under the environment)."""
    from ..config import load

    settings = load(args.env_file)
    if require_account:
        settings.require_account()
    return settings


def sent_log(settings):
    from ..sentlog import SentLog

    return SentLog(settings.log_dir)


def out(text: str = "") -> None:
    print(text)


def err(text: str) -> None:
    print(text, file=sys.stderr)


def terminal_width(default: int = 100) -> int:
    import shutil

    return shutil.get_terminal_size((default, 24)).columns


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
