"""SMTP with the standard library: TLS modes, certificate checks, login, send, error classes, retries.

Every TLS connection verifies the server certificate and host name with ssl.create_default_context()
(plus SMTP_CA_FILE when set); nothing can turn that off. STARTTLS must succeed or the send stops:
there is no fall-back to plaintext. Credentials only ever go over TLS, or to a loopback server with
SMTP_SECURITY=none. The password never appears in an error or a log line, even when a server quotes
it back.

Faults: a failure before the DATA command (refused, reset, timed out, a 4xx reply) is transient and
retried with exponential backoff and jitter; a 5xx reply or a TLS failure is permanent. Once the
message data has gone out, a lost connection is OutcomeUnknown: never retried, since the server may
have kept the message.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import random
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobmail.errors import OutcomeUnknown, SendError
from jobmail.settings import Settings, is_loopback

logger = logging.getLogger(__name__)

_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
WRONG_MODE_HINT = "the TLS mode does not match the port: use SMTP_SECURITY=ssl with port 465 and starttls with port 587"
MAX_REPLY_CHARS = 300
HIDDEN = "[password hidden]"
# What happened at each stage, in words a user knows.
STAGES = {
    "connect": "while connecting or waiting for its greeting",
    "login": "during login",
    "envelope": "while giving the sender and recipients",
    "data": "before the message was sent",
}
# OpenSSL's X509_V_ERR_* codes that need their own advice.
_CERT_EXPIRED = 10
_CERT_NAME_MISMATCH = (62, 64)  # host name, IP address


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
    """The system's trusted CAs, plus SMTP_CA_FILE when set; certificate and host name always checked.

    Built once per CA file and reused (loading the system store costs about 20 ms a connection).
    """
    ca_file = settings.smtp_ca_file
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
        try:
            context.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise SendError(
                f"SMTP_CA_FILE={ca_file} is not a PEM certificate file ({_describe(exc)}): "
                "export the server's or CA's certificate in PEM form"
            ) from None
    # create_default_context() sets both; restated so that no later change can loosen them unnoticed.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def local_hostname() -> str:
    """The name we greet the server with (EHLO), found without a DNS look-up."""
    name = socket.gethostname()
    return name if _HOSTNAME.match(name) else "localhost"


def connect(settings: Settings) -> Session:
    """Connect, greet, and secure the connection as SMTP_SECURITY says. Raises SendError."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout
    logger.debug("connecting to %s (%s)", settings.server, settings.smtp_security)
    try:
        if settings.smtp_security == "ssl":
            conn = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl_context(settings), local_hostname=local_hostname()
            )
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout, local_hostname=local_hostname())
        try:
            _greet(conn, settings)
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
    session = Session(conn, tls, _cert_subject(sock))
    logger.debug("connected to %s: %s, certificate %s", settings.server, tls or "no TLS", session.cert_subject)
    return session


def _greet(conn: smtplib.SMTP, settings: Settings) -> None:
    """EHLO, falling back to HELO for a server without ESMTP; a refusal is an error, not an empty feature list."""
    code, reply = conn.ehlo()
    if 200 <= code < 300:
        return
    if 400 <= code < 500:
        _expect((code, reply), (250,), settings, "the greeting (EHLO)")
    code, reply = conn.helo()
    _expect((code, reply), (250,), settings, "the greeting (EHLO and HELO)")


def plain_local_hint(settings: Settings) -> str:
    """For a server without STARTTLS on this machine (a test server): the setting that fits it."""
    return (
        " (for a test server on this machine without TLS: SMTP_SECURITY=none)"
        if is_loopback(settings.smtp_host)
        else ""
    )


def _starttls(conn: smtplib.SMTP, settings: Settings) -> None:
    if not conn.has_extn("starttls"):
        raise SendError(
            f"{settings.server} does not offer STARTTLS, so nothing was sent (not even the password): "
            "check SMTP_HOST and SMTP_PORT (use SMTP_SECURITY=ssl for port 465)" + plain_local_hint(settings)
        )
    code, reply = conn.starttls(context=ssl_context(settings))
    if code != 220:
        text = reply_text(reply)
        raise SendError(
            f"{settings.server} refused STARTTLS: {code} {text}, so nothing was sent: "
            + ("try again later" if 400 <= code < 500 else "check SMTP_HOST and SMTP_PORT"),
            code=code,
            reply=text,
            transient=400 <= code < 500,
        )
    _greet(conn, settings)


def _cert_subject(sock) -> str | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert() or {}
    parts = [f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn]
    return ", ".join(parts) or None


def login(session: Session, settings: Settings, password: Callable[[], str]) -> bool:
    """Log in when the connection is encrypted (or is `none` to loopback and the server offers AUTH).

    The password is fetched only when it is needed, and only sent over TLS (or to loopback with
    SMTP_SECURITY=none). Returns whether a login happened. Errors never contain the password.
    """
    conn = session.conn
    if settings.smtp_security == "none" and not conn.has_extn("auth"):
        return False
    if session.tls is None and not (settings.smtp_security == "none" and is_loopback(settings.smtp_host)):
        raise SendError(
            f"the connection to {settings.server} is not encrypted, so the password was not sent: "
            "use SMTP_SECURITY=starttls (port 587) or ssl (port 465)"
        )
    if not conn.has_extn("auth"):
        raise SendError(f"{settings.server} does not offer login (AUTH): check SMTP_HOST and SMTP_PORT")
    secret = password()
    try:
        authenticate(conn, settings.smtp_username, secret)
    except smtplib.SMTPResponseException as exc:
        raise _redacted(classify(exc, settings, stage="login"), settings.smtp_username, [secret]) from None
    except smtplib.SMTPException:
        offered = conn.esmtp_features.get("auth", "").strip() or "none"
        what = "jobmail can use" if secret.isascii() else "that can carry a password with non-ASCII characters"
        raise SendError(
            f"{settings.server} offers no login method {what} (it offers {offered}): "
            "make an app password with your provider and store it with `python send.py password set`"
        ) from None
    except Exception as exc:
        raise _redacted(classify(exc, settings, stage="login"), settings.smtp_username, [secret]) from None
    logger.debug("logged in to %s as %s", settings.server, settings.smtp_username)
    return True


def authenticate(conn: smtplib.SMTP, user: str, secret: str) -> None:
    """Log in on an open connection like smtplib's login(), raising its exceptions, but also with a user
    name or password beyond ASCII (which smtplib cannot encode): AUTH PLAIN or LOGIN in UTF-8 (RFC 4616).

    Whoever shows an error from here should pass its text through redact(): servers may quote the
    credentials back.
    """
    if user.isascii() and secret.isascii():
        try:
            conn.login(user, secret)
        finally:
            conn.password = None  # smtplib keeps it on the connection object; nothing needs it after login
        return
    mechanisms = conn.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in mechanisms:
        code, reply = conn.docmd("AUTH", "PLAIN " + _b64("\0" + user + "\0" + secret))
    elif "LOGIN" in mechanisms:
        code, reply = conn.docmd("AUTH", "LOGIN " + _b64(user))
        if code == 334:
            code, reply = conn.docmd(_b64(secret))
    else:
        raise smtplib.SMTPException("no login method for non-ASCII credentials")
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


def redact(text: str, user: str, secret: str) -> str:
    """`text` with the password replaced wherever it appears, plain or base64-encoded as AUTH sends it."""
    for form in _secret_forms(user, [secret]):
        text = text.replace(form, HIDDEN)
    return text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


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
    clock: Callable[[], float] = time.monotonic,
) -> Delivered:
    """Send `data` to `recipients`, retrying transient failures that happen before the message data.

    `before_data(attempt)` runs just before the DATA command (the caller records `sending` there);
    whatever it raises ends the send unchanged. A failure after the message data went out raises
    OutcomeUnknown and is never retried. Waits between attempts grow exponentially:
    SEND_RETRY_DELAY * 2**(attempt-1), times a random factor from 0.5 to 1.5. A retry is planned only if
    that wait, before the random factor, ends within SEND_RETRY_WITHIN seconds of the first attempt's
    start (timeouts make attempts long).
    """
    fetched: list[str] = []

    def remembered() -> str:
        value = password()
        fetched.append(value)
        return value

    attempt = 0
    started = clock()
    while True:
        attempt += 1
        try:
            return _attempt(settings, remembered, sender, recipients, data, attempt, before_data)
        except SendError as exc:
            exc = _redacted(exc, settings.smtp_username, fetched)
            exc.attempts = attempt
            if isinstance(exc, OutcomeUnknown) or not exc.transient:
                raise exc from None
            delay = None
            if attempt < settings.send_attempts:
                planned = settings.send_retry_delay * (2 ** (attempt - 1))  # judged before the jitter
                spent = clock() - started
                if spent + planned <= settings.send_retry_within:
                    delay = planned * (0.5 + jitter())
            if delay is None:
                suffix = (
                    _gave_up(attempt) if attempt >= settings.send_attempts else _out_of_time(attempt, spent, settings)
                )
                final = _redacted(exc, settings.smtp_username, [], suffix=suffix)
                final.attempts = attempt
                raise final from None
            on_retry(attempt, exc, delay)
            logger.info("attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
            sleep(delay)


def _gave_up(attempts: int) -> str:
    return f" (gave up after {attempts} attempts)" if attempts > 1 else ""


def _out_of_time(attempts: int, spent: float, settings: Settings) -> str:
    return (
        f" (gave up after {attempts} of {settings.send_attempts} attempts, {spent:.0f}s: another would start "
        f"after SEND_RETRY_WITHIN={settings.send_retry_within:g}s)"
    )


def _attempt(settings, password, sender, recipients, data, attempt, before_data) -> Delivered:
    session = connect(settings)
    conn = session.conn
    stage = "login"
    try:
        login(session, settings, password)
        stage = "envelope"
        _expect(conn.mail(sender, _body_options(conn, settings, data)), (250,), settings, f"the sender {sender}")
        for rcpt in recipients:
            _expect(conn.rcpt(rcpt), (250, 251), settings, f"the recipient {rcpt}")
        stage = "record"
        before_data(attempt)
        stage = "data"
        _expect(conn.docmd("DATA"), (354,), settings, "the message")
        stage = "data-sent"  # from here on the server may have the whole message
        conn.send(_dot_stuffed(data))
        code, reply = conn.getreply()
        _expect((code, reply), (250,), settings, "the message", after_data=True)
    except SendError as exc:
        session.close()
        if stage == "data-sent" and exc.code is None and not isinstance(exc, OutcomeUnknown):
            raise _unknown(settings, str(exc)) from None
        raise
    except BaseException as exc:
        conn.close()
        if stage == "record" or not isinstance(exc, Exception):
            raise  # the caller's own failure, or KeyboardInterrupt and the like: the caller records it
        if stage == "data-sent":
            raise _unknown(settings, _detail(exc)) from None
        raise classify(exc, settings, stage=stage) from None
    session.close()
    return Delivered(code, reply_text(reply), settings.server, session.tls, attempt)


def _body_options(conn: smtplib.SMTP, settings: Settings, data: bytes) -> list[str]:
    """MAIL FROM parameters: BODY=8BITMIME for a message that is not 7-bit (RFC 6152)."""
    if data.isascii():
        return []
    if not conn.has_extn("8bitmime"):
        raise SendError(
            f"the message has 8-bit content and {settings.server} does not accept it (no 8BITMIME), "
            "so nothing was sent: remove the non-ASCII characters, or use another server"
        )
    return ["BODY=8BITMIME"]


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
    text = reply_text(reply)
    if code == -1:
        raise SendError(f"{settings.server} closed the connection: {text}", transient=not after_data)
    raise SendError(
        f"{settings.server} refused {what}: {code} {text}{_reply_hint(code, what, text)}",
        code=code,
        reply=text,
        transient=400 <= code < 500,
    )


def _reply_hint(code: int, what: str, text: str = "") -> str:
    if code == 530 and "STARTTLS" in text.upper():
        return ": the server wants an encrypted connection: set SMTP_SECURITY=starttls (port 587)"
    if 400 <= code < 500:
        return " (a temporary refusal): try again later"
    if code in (550, 551, 553) and what.startswith("the recipient"):
        return ": check the address"
    if code in (550, 553) and what.startswith("the sender"):
        return ": FROM_ADDRESS must be an address of the account you log in with"
    if code == 552:
        return ": the message is too large for this server; shorten it"
    if code in (530, 535, 538):
        return ": check the login settings and the password (`python send.py password set`)"
    if code == 554:
        return ": the server rejected it; read its reply for the reason"
    return ": nothing was delivered; read the server's reply for the reason"


def _unknown(settings: Settings, detail: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"the connection to {settings.server} was lost after the message was sent and before the server "
        f"confirmed it ({detail}): it may have been delivered; check your mail account's Sent folder "
        "(with --bcc-self: your inbox), and only if it is not there send it again on purpose with the same "
        "command and --force"
    )


def reply_text(reply) -> str:
    """A server reply as one printable line of bounded length (replies are the server's words, not ours)."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(str(reply).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= MAX_REPLY_CHARS else text[: MAX_REPLY_CHARS - 1] + "…"


def _describe(exc: BaseException) -> str:
    return reply_text(str(exc)) or type(exc).__name__


def _detail(exc: BaseException) -> str:
    if _timed_out(exc):
        return "no answer in time"
    return _describe(exc)


def _timed_out(exc: BaseException) -> bool:
    """A timeout, including smtplib's SMTPServerDisconnected raised while handling one."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _secret_forms(user: str, secrets: list[str]) -> list[str]:
    """The password as it could come back in a reply: plain, and base64 as AUTH PLAIN and LOGIN send it."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        for raw in (secret, "\0" + user + "\0" + secret, user + "\0" + secret):
            encoded = _b64(raw)
            forms.update((encoded, encoded.rstrip("=")))
    return sorted((form for form in forms if len(form) >= 3), key=len, reverse=True)


def _redacted(exc: SendError, user: str, secrets: list[str], suffix: str = "") -> SendError:
    """The same error with every form of the password replaced (and `suffix` added to its text)."""

    def scrub(text: str) -> str:
        for secret in secrets:
            text = redact(text, user, secret)
        return text

    message = scrub(str(exc))
    if not suffix and message == str(exc) and scrub(exc.reply) == exc.reply:
        return exc
    copy = type(exc)(message + suffix, code=exc.code, reply=scrub(exc.reply), transient=exc.transient)
    copy.attempts = exc.attempts
    return copy


def classify(exc: BaseException, settings: Settings, stage: str) -> SendError:
    """Turn a library or socket exception into a one-line SendError that says what to do."""
    server = settings.server
    when = STAGES.get(stage, f"during {stage}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = reply_text(exc.smtp_error)
        return SendError(
            f"{server} refused the login for {settings.smtp_username}: {exc.smtp_code} {text}: "
            "check the username, and use an app password if your provider asks for one; "
            "store it with `python send.py password set`",
            code=exc.smtp_code,
            reply=text,
            transient=400 <= exc.smtp_code < 500,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        text = reply_text(exc.smtp_error)
        return SendError(
            f"{server} answered {exc.smtp_code} {text} {when}" + _reply_hint(exc.smtp_code, "", text),
            code=exc.smtp_code,
            reply=text,
            transient=400 <= exc.smtp_code < 500,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_error(exc, settings)
    if isinstance(exc, ssl.SSLError):
        text = str(exc).upper()
        if "WRONG_VERSION_NUMBER" in text or "RECORD_LAYER" in text:
            return SendError(f"TLS with {server} failed (wrong version number): {WRONG_MODE_HINT}")
        reason = getattr(exc, "reason", None) or _describe(exc)
        return SendError(f"TLS with {server} failed ({reason}): {WRONG_MODE_HINT}")
    if isinstance(exc, socket.gaierror):
        return SendError(f"the host {settings.smtp_host} was not found: check SMTP_HOST and your connection")
    if isinstance(exc, ConnectionRefusedError):
        return SendError(
            f"{server} refused the connection: check SMTP_HOST and SMTP_PORT, or a firewall",
            transient=True,
        )
    if _timed_out(exc):
        hint = ""
        if stage == "connect" and settings.smtp_security == "starttls":
            hint = " (a port that wants TLS from the first byte, usually 465, needs SMTP_SECURITY=ssl)"
        return SendError(
            f"{server} did not answer within {settings.smtp_timeout:g}s {when}: "
            f"check SMTP_PORT and your network{hint}, or raise SMTP_TIMEOUT",
            transient=True,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        hint = f"; if it happens every time, {WRONG_MODE_HINT}" if stage == "connect" else ""
        return SendError(f"{server} closed the connection {when}: nothing was sent{hint}", transient=True)
    if isinstance(exc, OSError):
        return SendError(f"the connection to {server} failed {when}: {_describe(exc)}", transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return SendError(f"SMTP with {server} failed {when}: {_describe(exc)}")
    return SendError(f"sending through {server} failed {when}: {type(exc).__name__}: {_describe(exc)}")


def _certificate_error(exc: ssl.SSLCertVerificationError, settings: Settings) -> SendError:
    server = settings.server
    code = getattr(exc, "verify_code", None)
    reason = reply_text(getattr(exc, "verify_message", None) or str(exc))
    if code in _CERT_NAME_MISMATCH:
        return SendError(
            f"the certificate of {server} is for another host name ({reason}), so nothing was sent: "
            "set SMTP_HOST to the exact server name your provider gives"
        )
    if code == _CERT_EXPIRED:
        return SendError(
            f"the certificate of {server} has expired ({reason}), so nothing was sent: "
            "check your computer's date and time; otherwise the server must renew it"
        )
    return SendError(
        f"the certificate of {server} is not trusted ({reason}), so nothing was sent: if this is your own or a "
        "private server, point SMTP_CA_FILE at its certificate (PEM); otherwise check SMTP_HOST"
    )
