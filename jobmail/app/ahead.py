"""Connecting ahead (#19): a send that goes out now opens its SMTP connection as soon as the settings are
known, while this thread still imports, renders, checks and logs the message (jobmail.smtp.ahead).

The caller gives the connection to the delivery (`send_now(..., ahead=...)`), which uses it for its first
attempt, and closes it in any case when it is done (`close()`: QUIT, nothing sent, when the message never
got that far: it failed its checks, was a refused duplicate, or the user stopped it). A dry run and a
scheduled send do not connect ahead.
"""

from __future__ import annotations

from jobmail.settings import Settings
from jobmail.smtp.ahead import Ahead


def connect_ahead(settings: Settings) -> Ahead:
    """Start connecting to the account's SMTP server: the TCP connection at once, in a thread; the
    greeting, TLS and EHLO once the SMTP client is imported, which this does meanwhile."""
    ahead = Ahead(settings)
    try:
        from jobmail.smtp.client import connect  # ssl and smtplib: imported while the TCP connection is made
    except BaseException:  # Ctrl-C in the middle of the import: the thread must not wait on for ever
        ahead.close()
        raise
    ahead.go(connect)
    return ahead
