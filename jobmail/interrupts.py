"""Stopping: Ctrl-C, `kill`, `systemctl stop` and a closed terminal all end a run the same way.

Each of SIGINT, SIGTERM and SIGHUP (SIGBREAK, Ctrl-Break, on Windows) raises `Stopped`, a
KeyboardInterrupt, so every phase of a send ends the way Ctrl-C ends it: `failed` before the message left,
`unknown` after, `scheduled` while a message waits. Its `exit_code` is 128 + the signal's number (130,
143, 129), the shell's convention.

Two things make this more than Python's own KeyboardInterrupt:
- A program started in the background by a shell without job control (a script's `cmd &`, some CI
  runners and supervisors) inherits SIGINT *ignored*, and Python then installs no handler: a Ctrl-C or
  `kill -INT` would be swallowed. `handled()` installs ours whatever was there. SIGHUP stays ignored where
  it was (`nohup`).
- `deferred()` holds a signal back while a record is written, so a stop never leaves a half-written
  state behind; it is raised as the block ends.
"""

from __future__ import annotations

import signal

TYPE_CHECKING = False  # no typing, threading or contextlib: this module is imported before --help
if TYPE_CHECKING:
    from types import FrameType, TracebackType

EXIT_BASE = 128  # a process ended by signal N exits 128 + N (POSIX shells), also when it ends itself


def _signals() -> dict[int, str]:
    names = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "SIGHUP": "hang-up", "SIGBREAK": "Ctrl-Break"}
    return {getattr(signal, name): said for name, said in names.items() if hasattr(signal, name)}


SIGNALS = _signals()


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal. `exit_code`: 128 + its number; `said`: how to name it to the user."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = EXIT_BASE + signum
        self.said = SIGNALS.get(signum, f"signal {signum}")
        self.done: object = None  # what was already done when it came (a delivery the server accepted)


def after(exc: KeyboardInterrupt, done: object) -> Stopped:
    """The stop `exc`, carrying what was done before it came (a plain KeyboardInterrupt becomes Ctrl-C's)."""
    stop = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
    stop.done = done
    return stop


def exit_code(exc: BaseException) -> int:
    """The exit code of an interruption: the signal's, or 130 for a plain KeyboardInterrupt."""
    return getattr(exc, "exit_code", EXIT_BASE + signal.SIGINT)


def said(exc: BaseException) -> str:
    return getattr(exc, "said", "Ctrl-C")


class _Pending:
    depth = 0  # how many deferred() blocks are open (signals only ever reach the main thread)
    signum: int | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _Pending.depth:
        if _Pending.signum is None:
            _Pending.signum = signum
        return
    raise Stopped(signum)


class deferred:  # lower case: used like a function, `with deferred():`
    """Hold back a stop until the block ends (a record being written), then raise it."""

    def __enter__(self) -> None:
        _Pending.depth += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _Pending.depth -= 1
        if not _Pending.depth and _Pending.signum is not None:
            signum, _Pending.signum = _Pending.signum, None
            raise Stopped(signum)


def install() -> dict[int, object]:
    """Route every stop signal to `Stopped`; returns the handlers it replaced. Main thread only (a no-op
    elsewhere: Python lets only the main thread set handlers)."""
    replaced: dict[int, object] = {}
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        if signum == getattr(signal, "SIGHUP", None) and previous == signal.SIG_IGN:
            continue  # started under nohup: a closed terminal is meant not to stop it
        try:
            signal.signal(signum, _on_signal)
        except (OSError, ValueError):  # not the main thread, or a signal this platform keeps to itself
            continue
        replaced[signum] = previous
    return replaced


def restore(replaced: dict[int, object]) -> None:
    for signum, previous in replaced.items():
        if previous is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signum, previous)  # type: ignore[arg-type]


class handled:  # lower case: used like a function, `with handled():`
    """Stop signals raise Stopped inside the block; the previous handlers come back after it."""

    def __enter__(self) -> None:
        self.replaced = install()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        restore(self.replaced)
