"""The end of a run (#19): once a command has returned its exit code, the process ends without the
interpreter's teardown.

At exit Python first joins the threads that are not daemons and runs every `atexit` handler (logging's
flush, a library's clean-up), then flushes stdout and stderr, then tears down every module it imported
and frees their objects one by one. That last part does nothing a user can see: every file a command wrote
is already closed (the sent log's records are fsynced before the command returns), and the operating
system reclaims memory, descriptors and locks anyway. After a send it costs about 20 ms (ssl, smtplib,
email, Jinja2, keyring), as long as two round trips of the rest of the send on loopback; and skipping it
also means OpenSSL's own clean-up at exit never runs while a stopped connection thread may still be
inside it.

`install()`, first thing, registers the end as the first `atexit` handler, so it runs last: after every
other handler, and after the threads were joined. `end(code)` leaves with `sys.exit(code)` as before;
when the end handler then runs, it flushes stdout and stderr and ends the process with that code
(`os._exit`). Any other way out (an exception no one caught, a `sys.exit` elsewhere, a flush that fails)
gets Python's own exit, unchanged.
"""

from __future__ import annotations

import atexit
import os
import sys

TYPE_CHECKING = False  # no typing: this module is imported before --help
if TYPE_CHECKING:
    from typing import NoReturn

_code: int | None = None  # the exit code end() was given; None: Python's own exit


def install() -> None:
    """Register the end; call it before anything else can register an atexit handler."""
    atexit.register(_end)


def end(code: int) -> NoReturn:
    """Exit with `code` (`sys.exit`), without the teardown once the rest of the exit has run."""
    global _code
    _code = code if isinstance(code, int) and not isinstance(code, bool) else None
    sys.exit(code)


def _end() -> None:
    code = _code
    if code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a reader gone, a stream closed: Python's own exit says so, as before
            return
    os._exit(code)
