"""SMTP with the standard library: TLS modes, certificate checks, login, send, error classes, retries.

Every TLS connection verifies the server certificate and host name with ssl.create_default_context()
(plus SMTP_CA_FILE when set); nothing can turn that off. STARTTLS must succeed or the send stops:
there is no fall-back to plaintext. Credentials only ever go over TLS, or to a loopback server.
"""

from __future__ import annotations

import logging
import random
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import Settings
from .errors import OutcomeUnknown, SendError

logger = logging.getLogger(__name__)

_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
WRONG_MODE_HINT = "the TLS mode does not match the port: use SMTP_SECURITY=ssl with port 465 and starttls with port 587"


@dataclass(frozen=True)
class Delivered:
    """The server's final answer to an accepted message."""

    code: int
    text: str
    server: str
    tls: str | None
    attempts: int


@dataclass
class Session:
    """An open, greeted (and, where asked, encrypted) connection."""

    conn: smtplib.SMTP
    tls: str | None
    cert_subject: str | None

    def close(self) -> None:
        try:
            self.conn.quit()
        except (smtplib.SMTPException, OSError):
            self.conn.close()


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The system's trusted CAs, plus SMTP_CA_FILE when set; certificate and host name always checked."""
    context = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.smtp_ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise SendError(
                f"SMTP_CA_FILE={settings.smtp_ca_file} is not a PEM certificate file ({exc}): "
                "export the server's or CA's certificate in PEM form"
            ) from None
    return context


def local_hostname() -> str:
    """The name we greet the server with (EHLO), found without a DNS look-up."""
    name = socket.gethostname()
    return name if _HOSTNAME.match(name) else "localhost"


def connect(settings: Settings) -> Session:
    """Connect, greet, and secure the connection as SMTP_SECURITY says. Raises SendError."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout
    try:
        if settings.smtp_security == "ssl":
            conn = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl_context(settings), local_hostname=local_hostname()
            )
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout, local_hostname=local_hostname())
        try:
            conn.ehlo()
            if settings.smtp_security == "starttls":
                _starttls(conn, settings)
        except BaseException:
            conn.close()
            raise
    except SendError:
        raise
    except Exception as exc:
        raise classify(exc, settings, stage="connect") from None
    sock = conn.sock
    tls = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return Session(conn, tls, _cert_subject(sock))


def _starttls(conn: smtplib.SMTP, settings: Settings) -> None:
    if not conn.has_extn("starttls"):
        raise SendError(
            f"{settings.server} does not offer STARTTLS, so nothing was sent: "
            "check SMTP_HOST and SMTP_PORT (use SMTP_SECURITY=ssl for port 465)"
        )
    code, reply = conn.starttls(context=ssl_context(settings))
    if code != 220:
        raise SendError(f"{settings.server} refused STARTTLS: {code} {_text(reply)}", code=code, reply=_text(reply))
    conn.ehlo()


def _cert_subject(sock) -> str | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert() or {}
    parts = [f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn]
    return ", ".join(parts) or None


def login(session: Session, settings: Settings, password: Callable[[], str]) -> bool:
    """Log in when the connection is encrypted (or is `none` to loopback and the server offers AUTH).

    The password is fetched only when it is needed. Returns whether a login happened.
    """
    conn = session.conn
    if settings.smtp_security == "none" and not conn.has_extn("auth"):
        return False
    try:
        conn.login(settings.smtp_username, password())
    except smtplib.SMTPNotSupportedError:
        raise SendError(f"{settings.server} does not offer login (AUTH): check SMTP_HOST and SMTP_PORT") from None
    except SendError:
        raise
    except Exception as exc:
        raise classify(exc, settings, stage="login") from None
    return True


def send(
    settings: Settings,
    password: Callable[[], str],
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    before_data: Callable[[int], None] = lambda attempt: None,
    on_retry: Callable[[int, SendError, float], None] = lambda attempt, error, delay: None,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> Delivered:
    """Send `data` to `recipients`, retrying transient failures that happen before the message data.

    `before_data(attempt)` runs just before the DATA command (the caller records `sending` there).
    A failure after the message data went out raises OutcomeUnknown and is never retried.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(settings, password, sender, recipients, data, attempt, before_data)
        except OutcomeUnknown as exc:
            exc.attempts = attempt
            raise
        except SendError as exc:
            exc.attempts = attempt
            if not exc.transient or attempt >= settings.send_attempts:
                raise
            delay = settings.send_retry_delay * (2 ** (attempt - 1)) * (0.5 + jitter())
            on_retry(attempt, exc, delay)
            logger.info("attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
            sleep(delay)


def _attempt(settings, password, sender, recipients, data, attempt, before_data) -> Delivered:
    session = connect(settings)
    conn = session.conn
    stage = "login"
    try:
        login(session, settings, password)
        stage = "envelope"
        _expect(conn.mail(sender), (250,), settings, f"the sender {sender}")
        for rcpt in recipients:
            _expect(conn.rcpt(rcpt), (250, 251), settings, f"the recipient {rcpt}")
        before_data(attempt)
        stage = "data"
        _expect(conn.docmd("DATA"), (354,), settings, "the message")
        stage = "data-sent"
        conn.send(_dot_stuffed(data))
        code, reply = conn.getreply()
        _expect((code, reply), (250,), settings, "the message", after_data=True)
    except SendError as exc:
        session.close()
        if stage == "data-sent" and not isinstance(exc, OutcomeUnknown) and exc.code is None:
            raise _unknown(settings, str(exc)) from None
        raise
    except BaseException as exc:
        conn.close()
        if stage == "data-sent":
            if isinstance(exc, Exception):
                raise _unknown(settings, _describe(exc)) from None
            raise  # KeyboardInterrupt and the like: the caller records `unknown`
        if isinstance(exc, Exception):
            raise classify(exc, settings, stage=stage) from None
        raise
    session.close()
    return Delivered(code, _text(reply), settings.server, session.tls, attempt)


def _dot_stuffed(data: bytes) -> bytes:
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _expect(answer, codes, settings: Settings, what: str, after_data: bool = False) -> None:
    code, reply = answer
    if code in codes:
        return
    text = _text(reply)
    if code == -1:
        raise SendError(f"{settings.server} closed the connection: {text}", transient=not after_data)
    hint = _reply_hint(code, what)
    raise SendError(
        f"{settings.server} refused {what}: {code} {text}{hint}",
        code=code,
        reply=text,
        transient=400 <= code < 500,
    )


def _reply_hint(code: int, what: str) -> str:
    if 400 <= code < 500:
        return " (a temporary refusal)"
    if code in (550, 551, 553) and what.startswith("the recipient"):
        return ": check the address"
    if code == 552:
        return ": the message is too large for this server"
    if code == 554:
        return ": the server rejected it; read its reply above"
    return ""


def _unknown(settings: Settings, detail: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"the connection to {settings.server} was lost after the message was sent and before the server "
        f"confirmed it ({detail}): it may have been delivered; check your mail account's Sent folder "
        "before sending it again (with --force)"
    )


def _text(reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(str(reply).split())


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def classify(exc: BaseException, settings: Settings, stage: str) -> SendError:
    """Turn a library or socket exception into a one-line SendError that says what to do."""
    server = settings.server
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = _text(exc.smtp_error)
        return SendError(
            f"{server} refused the login for {settings.smtp_username}: {exc.smtp_code} {text}: "
            "check the username, and use an app password if your provider asks for one; "
            "store it with `python send.py password set`",
            code=exc.smtp_code,
            reply=text,
            transient=400 <= exc.smtp_code < 500,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        text = _text(exc.smtp_error)
        return SendError(
            f"{server} answered {exc.smtp_code} {text}" + _reply_hint(exc.smtp_code, ""),
            code=exc.smtp_code,
            reply=text,
            transient=400 <= exc.smtp_code < 500,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(
            f"the certificate of {server} is not trusted ({exc.verify_message}): if this is your own or a "
            "private server, point SMTP_CA_FILE at its certificate (PEM); otherwise check SMTP_HOST"
        )
    if isinstance(exc, ssl.SSLError):
        if "WRONG_VERSION_NUMBER" in str(exc).upper() or "RECORD_LAYER" in str(exc).upper():
            return SendError(f"TLS with {server} failed (wrong version number): {WRONG_MODE_HINT}")
        return SendError(f"TLS with {server} failed ({exc.reason or exc}): {WRONG_MODE_HINT}")
    if isinstance(exc, socket.gaierror):
        return SendError(f"the host {settings.smtp_host} was not found: check SMTP_HOST and your connection")
    if isinstance(exc, ConnectionRefusedError):
        return SendError(
            f"{server} refused the connection: check SMTP_HOST and SMTP_PORT, or a firewall",
            transient=True,
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        hint = " (with port 465 use SMTP_SECURITY=ssl)" if settings.smtp_port == 465 else ""
        return SendError(
            f"{server} did not answer within {settings.smtp_timeout:g}s during {stage}: "
            f"check SMTP_PORT and your network{hint}",
            transient=True,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        hint = f": {WRONG_MODE_HINT}" if stage == "connect" else ""
        return SendError(f"{server} closed the connection during {stage}{hint}", transient=True)
    if isinstance(exc, OSError):
        return SendError(f"the connection to {server} failed during {stage}: {_describe(exc)}", transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return SendError(f"SMTP with {server} failed during {stage}: {_describe(exc)}")
    return SendError(f"sending through {server} failed during {stage}: {type(exc).__name__}: {_describe(exc)}")
