"""Terminal output: the Console each run prints through, the terminal's width, and argparse classes that
size help text without importing shutil.

The Console is built once per run from the parsed arguments and handed to the command's `run`. It knows
the `--env-file` the user gave, so every next step we suggest (a `Command` among a message's parts) is shown
with it, ready to paste: a hint like `python send.py log show ID` then looks in the same account's log.
Nothing here is module-level state: two Consoles with different env files print side by side.

Cheap to import: `send.py --help` and `send.py log` load this module.
"""

from __future__ import annotations

import os
import sys

from jobmail.errors import PROGRAM, Command

TYPE_CHECKING = False  # not `from typing import ...`: typing costs `send.py log` ~9 ms of its start
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable
    from typing import TextIO


class Console:
    """Where a run's words go: `out` (stdout) and `err` (stderr) join their parts, each Command shown for
    this command line; `verbatim` prints the user's own data (a message, a record) as it is."""

    def __init__(self, env_file: str | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.env_file = env_file or None
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> TextIO:
        return self._stdout if self._stdout is not None else sys.stdout  # looked up late: tests swap sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr if self._stderr is not None else sys.stderr

    def command(self, cmd: Command) -> str:
        """`python send.py WORDS`, with `--env-file '/abs/path'` when one was given (before a `> FILE`
        redirect; not added to one that names its own --env-file, nor to a `...` placeholder)."""
        words = list(cmd.words)
        if (
            self.env_file
            and not any(w.startswith("--env-file") for w in words)
            and not (words and words[-1].endswith("..."))
        ):
            given = shell_quoted(os.path.abspath(self.env_file))  # absolute: right from any folder, cron's too
            at = words.index(">") if ">" in words else len(words)
            words[at:at] = ["--env-file", given]
        return f"`{PROGRAM} {' '.join(words)}`"

    def render(self, parts: Iterable[str | Command]) -> str:
        """A message's parts as one text, each Command shown for this command line."""
        return "".join(part if isinstance(part, str) else self.command(part) for part in parts)

    def out(self, *parts: str | Command) -> None:
        """Our own words to the user, on stdout."""
        self._print(self.render(parts))

    def begin(self, *parts: str | Command) -> None:
        """The start of a line on stdout, shown at once; the next `out` ends it (a step before it waits)."""
        try:
            print(self.render(parts), end="", file=self.stdout, flush=True)
        except BrokenPipeError:
            stdout_closed()

    def err(self, *parts: str | Command) -> None:
        """Our own words about a problem, on stderr."""
        print(self.render(parts), file=self.stderr)

    def verbatim(self, text: str = "") -> None:
        """The user's data as it is (a message, a record, a table of them): never rewritten."""
        self._print(text)

    def flush(self) -> None:
        try:
            self.stdout.flush()
        except BrokenPipeError:
            stdout_closed()

    def _print(self, text: str) -> None:
        """A line on stdout; a reader that went away (`send ... | head`) is no error: the command goes on,
        quietly, and its exit code says what happened (a message sent is still sent)."""
        try:
            print(text, file=self.stdout)
        except BrokenPipeError:
            stdout_closed()


def stdout_closed() -> None:
    """The reader of stdout is gone: from now on stdout goes nowhere (nor does the final flush at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def commands_in(text: str) -> tuple[str | Command, ...]:
    """A text that spells our commands out (`` `python send.py password set` ``), as parts with each
    command a Command. For the words of the layers below that still write their hints as text: the
    Console then shows them like our own (with the --env-file given)."""
    start = f"`{PROGRAM} "
    if start not in text:
        return (text,)
    parts: list[str | Command] = []
    rest = text
    while True:
        at = rest.find(start)
        end = rest.find("`", at + len(start)) if at >= 0 else -1
        if at < 0 or end < 0:
            break
        if at:
            parts.append(rest[:at])
        parts.append(Command(*rest[at + len(start) : end].split(" ")))
        rest = rest[end + 1 :]
    if rest:
        parts.append(rest)
    return tuple(parts)


def lifted(parts: Iterable[str | Command]) -> tuple[str | Command, ...]:
    """Parts with the commands spelled out in their text parts made Commands (see commands_in)."""
    return tuple(piece for part in parts for piece in (commands_in(part) if isinstance(part, str) else (part,)))


def shell_quoted(path: str) -> str:
    """A path as one word on this platform's command line (POSIX shells; cmd and PowerShell on Windows)."""
    if os.name == "nt":
        import subprocess

        return subprocess.list2cmdline([path])
    import shlex

    return shlex.quote(path)


def reconfigure_unless_utf8(stream: TextIO, **options: object) -> None:
    """Reconfigure a text stream (errors=, encoding=) when it is not UTF-8 already, as a Windows code page is."""
    if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
        stream.reconfigure(**options)


def on_terminal() -> bool:
    """Is the output a terminal? (No stdout at all under pythonw, e.g. from Windows Task Scheduler.)"""
    return sys.stdout is not None and sys.stdout.isatty()


def terminal_width() -> int | None:
    """Columns to fit output in: $COLUMNS, else the terminal's width; None (no cutting) when not a terminal.
    (shutil's rule, without importing shutil.)"""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
        if columns > 0:
            return columns
    except ValueError:
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__.isatty() else None  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError):
        return None


def _same(message: str) -> str:
    return message


def _plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def argparse_phrases_as_they_are() -> None:
    """argparse asks gettext to translate each of its phrases ("usage: ", "options", "show this help message
    and exit" ...), dozens per start, and gettext keeps no note of a catalog it did not find: every phrase
    searches the locale folders again (2-7 ms of `--help`, with the import of locale). Where no catalog can
    be found (the C or POSIX locale, or none installed: CPython ships none), argparse gets what gettext would
    give it then, the phrase itself; where one is found, it is used as before."""
    import argparse
    import gettext

    if getattr(argparse, "_", None) is _same:
        return
    names = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order: the first one set decides
    languages = next((value for value in map(os.environ.get, names) if value), "C")
    none_to_find = all(lang.split(".")[0].split("@")[0] in ("C", "POSIX", "") for lang in languages.split(":"))
    if not none_to_find:
        domain = gettext.textdomain()
        none_to_find = gettext.find(domain, gettext.bindtextdomain(domain)) is None
    if none_to_find:
        argparse._ = _same  # type: ignore[attr-defined]  # argparse's own names for gettext's functions
        argparse.ngettext = _plural  # type: ignore[attr-defined]


def parser_classes() -> tuple[
    type[argparse.ArgumentParser], type[argparse.HelpFormatter], type[argparse.HelpFormatter]
]:
    """argparse classes that size help text without importing shutil (argparse asks it for the terminal
    size on every add_argument: 2 ms of every start). Returns (Parser, HelpFormatter, RawDescription).
    argparse's phrases skip gettext where it has nothing to give (argparse_phrases_as_they_are)."""
    import argparse

    argparse_phrases_as_they_are()

    width = (terminal_width() or 80) - 2

    class HelpFormatter(argparse.HelpFormatter):
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int = width):
            super().__init__(prog, indent_increment, max_help_position, width)

    class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    ours = {argparse.HelpFormatter: HelpFormatter, argparse.RawDescriptionHelpFormatter: RawDescriptionHelpFormatter}

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, formatter_class=argparse.HelpFormatter, **kwargs) -> None:
            kwargs["formatter_class"] = ours.get(formatter_class, formatter_class)
            super().__init__(*args, **kwargs)

    return Parser, HelpFormatter, RawDescriptionHelpFormatter
