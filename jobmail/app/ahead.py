"""Connecting ahead (#19): a send that goes out now opens its SMTP connection as soon as the settings are
known, while this thread still imports, renders, checks and logs the message (jobmail.smtp.ahead).

The TCP connection starts at once; while it travels, this thread imports the SMTP client and hands it to
the connection's thread (which builds the TLS context meanwhile), then reads the password from the
keyring and hands that over too (the thread reads no reply before, so that none is ever read without it
hidden).
The caller gives the connection to the delivery (`send_now(..., ahead=...)`), which uses it, and that
password, for its first attempt, and closes it in any case when it is done (`close()`: QUIT, nothing sent,
when the message never got that far: it failed its checks, was a refused duplicate, or the user stopped
it). A dry run and a scheduled send do not connect ahead; nor does a send whose password the keyring
cannot give now (the delivery asks again and records why).
"""

from __future__ import annotations

from jobmail.settings import Settings
from jobmail.smtp.ahead import Ahead


def connect_ahead(settings: Settings) -> Ahead | None:
    """Start connecting to the account's SMTP server: the TCP connection at once, in a thread; the TLS
    context (and an implicit-TLS handshake) once the SMTP client is imported here; the greeting, STARTTLS
    and EHLO once the password, which this reads from the keyring meanwhile, is known."""
    ahead = Ahead(settings)
    try:
        from jobmail.smtp.client import connect  # ssl and smtplib: imported while the TCP connection is made

        ahead.go(connect)
        from jobmail.auth.credentials import login_password  # the keyring: the delivery needs it anyway

        secrets = login_password(settings)
    except Exception:  # no password to be had: no connection ahead; the delivery tells why, and logs it
        ahead.close()
        return None
    except BaseException:  # Ctrl-C at the keyring's prompt or in the import: no thread waits on for ever
        ahead.close()
        raise
    ahead.give(secrets)
    return ahead
