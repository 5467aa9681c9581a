"""The TLS context of every connection: SMTP, IMAP and the OAuth endpoints alike.

The system's trusted CAs plus the optional extra CA file (SMTP_CA_FILE); certificate and host name always
checked, nothing can turn that off. Built once per CA file and reused: loading the system store costs
about 20 ms a connection.
"""

from __future__ import annotations

import functools
import os
import ssl


def verified_context(ca_file: str | None) -> ssl.SSLContext:
    """The context for `ca_file` (None: the system's CAs only); raises ssl.SSLError or OSError when
    `ca_file` is not a PEM certificate file."""
    if ca_file is None:
        return _context(None, 0)
    try:
        changed = os.stat(ca_file).st_mtime_ns  # a long `outbox run` sees a replaced certificate file
    except OSError:
        changed = 0
    return _context(str(ca_file), changed)


@functools.lru_cache(maxsize=4)
def _context(ca_file: str | None, changed: int) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    # create_default_context() sets both; restated so that no later change can loosen them unnoticed.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
