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

import logging
import random
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobmail import interrupts
from jobmail.errors import JobmailError, OutcomeUnknown, SendError
from jobmail.settings import Settings, is_loopback, loopback_addresses
from jobmail.smtp import explain as why
from jobmail.smtp.ahead import Ahead, open_tcp, wire_name
from jobmail.smtp.explain import (  # re-exported: the public names of the send path
    ATTEMPT_TIMEOUTS,
    GREETING_PATIENCE,
    HIDDEN,
    MAX_REPLY_BYTES,
    MAX_REPLY_CHARS,
    MAX_REPLY_LINES,
    STAGES,
    WRONG_MODE_HINT,
    Failed,
    Problem,
    explain,
    plain_local_hint,
    reply_text,
)
from jobmail.tls import verified_context

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "HIDDEN",
    "MAX_REPLY_CHARS",
    "STAGES",
    "WRONG_MODE_HINT",
    "Delivered",
    "Failed",
    "Problem",
    "Session",
    "authenticate",
    "certificate_detail",
    "classify",
    "connect",
    "explain",
    "local_hostname",
    "login",
    "plain_local_hint",
    "redact",
    "reply_text",
    "send",
    "ssl_context",
]

logger = logging.getLogger(__name__)

_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")


@dataclass(frozen=True)
class Delivered:
    """The server's final answer to an accepted message."""

    code: int
    text: str
    server: str
    tls: str | None
    attempts: int


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The system's trusted CAs, plus SMTP_CA_FILE when set; certificate and host name always checked
    (jobmail.tls, shared with IMAP and the OAuth endpoints). Raises SendError when SMTP_CA_FILE is not a
    certificate file.
    """
    try:
        return verified_context(settings.smtp_ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise why.ca_file_unusable(str(settings.smtp_ca_file), exc).error("tls") from None


def local_hostname() -> str:
    """The name we greet the server with (EHLO), found without a DNS look-up."""
    name = socket.gethostname()
    return name if _HOSTNAME.match(name) else "localhost"


# --- connecting, by stages -----------------------------------------------------------------------------


def _nothing(stage: str) -> None:
    pass


class _SteppedSMTP(smtplib.SMTP):
    """smtplib.SMTP that knows the stage it is at (tcp, tls, greeting, ehlo), and wraps the TCP connection in
    TLS at once for implicit TLS, so that a failure is known by its stage. `reached(stage)` is told each
    stage as it completes.

    It reads the server's replies itself (getreply), bounded: at most MAX_REPLY_LINES lines and
    MAX_REPLY_BYTES bytes, the whole reply within SMTP_TIMEOUT (not per byte: a server that drips one byte
    at a time is cut off), and everything (replies and sends) within the attempt's deadline,
    ATTEMPT_TIMEOUTS x SMTP_TIMEOUT from the start of the connection. Each raw reply line has the secrets
    of `hide()` replaced before anything else sees it.

    Without implicit TLS, a greeting of which not one byte has come within GREETING_PATIENCE seconds (or
    half of SMTP_TIMEOUT, when shorter) makes it ask the port, on a second connection and within as long
    again, whether it speaks TLS from the first byte (`_speaks_tls`): if so the connect fails at once,
    permanently (the mode does not match the port); if not, it waits for the greeting on until
    SMTP_TIMEOUT, as for any slow server.
    """

    def __init__(
        self,
        settings: Settings,
        implicit_tls: ssl.SSLContext | None,
        reached: Callable[[str], None],
        secrets: list[str] | None = None,
        sock: socket.socket | Exception | None = None,
        pending: Callable[[], list[str]] | None = None,
    ):
        self.stage = "tcp"
        self._pending = pending  # the secrets still to come, waited for before the first reply is read
        self._given = sock  # a TCP connection made ahead (jobmail.smtp.ahead), or how making it failed
        self._settings = settings
        self._implicit_tls = implicit_tls
        self._probe_greeting = implicit_tls is None  # asked once, on the greeting: see _greeting_line
        self._reached = reached
        self._plain = settings.smtp_security == "none"
        self._user = settings.smtp_username
        self._secrets: list[str] = list(secrets or [])
        self._deadline = time.monotonic() + settings.smtp_timeout * ATTEMPT_TIMEOUTS
        self.trips: list[str] = []  # --debug: each wait for the server, in order: "greeting", "EHLO", "MAIL+RCPT" ...
        self._asked = ""  # what was sent and not yet answered (the next round trip's name)
        self._last_code = 0
        self._unread = b""  # bytes received past the last reply line (pipelined replies)
        self._unread_from: object = None  # the socket they came from (a new TLS socket starts afresh)
        super().__init__(local_hostname=local_hostname(), timeout=settings.smtp_timeout)
        # The name TLS checks the certificate against (smtplib's __init__ sets it when it connects itself;
        # connect() is called apart here, to know the stage of a failure).
        self._host: str | bytes = wire_name(settings.smtp_host)

    def restart_deadline(self) -> None:
        """The attempt's deadline counted from now (a connection opened ahead: its attempt starts when the
        delivery takes it)."""
        self._deadline = time.monotonic() + self._settings.smtp_timeout * ATTEMPT_TIMEOUTS

    def hide(self, secret: str) -> None:
        """Replace `secret` (and its base64 forms) in every reply read from now on."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def getreply(self) -> tuple[int, bytes]:  # smtplib's own reader, replaced: bounded, and redacted
        if self._pending is not None:  # a connection opened ahead: not one reply read without the secrets
            pending, self._pending = self._pending, None
            for secret in pending():
                self.hide(secret)
            self.restart_deadline()  # the wait for the keyring is not the server's time
        ends = min(time.monotonic() + self.timeout, self._deadline)
        lines: list[bytes] = []
        size = 0
        code = -1
        while True:
            greeting = self._probe_greeting and self.stage == "greeting"
            raw = self._greeting_line(ends) if greeting else self._readline(ends)
            if not raw:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if len(raw) > smtplib._MAXLINE:  # type: ignore[attr-defined]  # smtplib's own limit, as it checks it
                self.close()
                raise smtplib.SMTPResponseException(500, "Line too long.")
            size += len(raw)
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise why.OverlongReply(f"a reply of more than {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES} bytes")
            raw = why.redact_raw(raw, self._user, self._secrets)
            lines.append(raw[4:].strip(b" \t\r\n"))
            try:
                code = int(raw[:3])
            except ValueError:
                code = -1
                break
            if raw[3:4] != b"-":
                break
        self._set_timeout()
        if self._asked or self.stage == "greeting":  # a reply to what we sent (or the greeting): one round trip
            self.trips.append(self._asked or "greeting")
            self._asked = ""
        self._last_code = code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("S: %d %s", code, "; ".join(line.decode("utf-8", "replace") for line in lines)[:300])
        return code, b"\n".join(lines)

    def _greeting_line(self, ends: float) -> bytes:
        """The greeting's first line; a port that stays silent and speaks TLS is a mode mismatch (a Failed)."""
        self._probe_greeting = False
        patience = min(GREETING_PATIENCE, self.timeout / 2)  # the probe fits in SMTP_TIMEOUT too
        try:
            return self._readline(min(time.monotonic() + patience, ends))
        except TimeoutError:
            probe = min(patience, ends - time.monotonic())
            if self._unread or probe <= 0 or not self._speaks_tls(probe):  # some bytes came: slow, not TLS
                return self._readline(ends)
        raise why.implicit_tls_port(self._settings).error("greeting")

    def _speaks_tls(self, timeout: float) -> bool:
        """Whether the port answers a TLS handshake, tried on a new connection to the same address with the
        verifying context (so the probe's certificate check is the send's own): a handshake that completes,
        fails on the certificate, or gets a TLS alert has had TLS back from the server. Nothing is sent
        over it; it is closed at once."""
        sock = self.sock
        if sock is None:
            return False
        try:
            address = sock.getpeername()[:2]
            context = ssl_context(self._settings)
            with socket.create_connection(address, timeout) as raw:
                with context.wrap_socket(raw, server_hostname=self._host):
                    pass
        except ssl.SSLCertVerificationError:
            return True
        except ssl.SSLError as exc:
            return "ALERT" in str(exc.reason or "").upper()
        except (OSError, SendError):  # plain text back, closed, timed out; an unusable SMTP_CA_FILE
            return False
        logger.debug("%s answered a TLS handshake on a second connection", self._settings.server)
        return True

    def _readline(self, ends: float) -> bytes:
        """One line (with its newline; longer than smtplib's _MAXLINE: cut there), b"" at the end of the
        connection; TimeoutError once `ends` (a time.monotonic()) has passed."""
        sock = self.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if self._unread_from is not sock:  # bytes sent before STARTTLS are never read as encrypted ones
            self._unread, self._unread_from = b"", sock
        limit = smtplib._MAXLINE + 1  # type: ignore[attr-defined]
        while True:
            cut = self._unread.find(b"\n", 0, limit)
            if cut >= 0 or len(self._unread) >= limit:
                end = cut + 1 if cut >= 0 else limit
                line, self._unread = self._unread[:end], self._unread[end:]
                return line
            left = ends - time.monotonic()
            if left <= 0:
                raise why.AttemptTimedOut("timed out") if ends >= self._deadline else TimeoutError("timed out")
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                line, self._unread = self._unread, b""
                return line
            self._unread += chunk

    def send(self, s: ReadableBuffer | str) -> None:  # every command and the message data: within the attempt
        self._set_timeout(whole_attempt=True)
        if logger.isEnabledFor(logging.DEBUG):
            self._show(s)
        super().send(s)

    def _show(self, s: ReadableBuffer | str) -> None:
        """--debug: the line of what goes out, and the name of the round trip it starts (or joins)."""
        if self._last_code == 334:  # an answer to a SASL challenge: a password, or the base64 of one
            said = ["[hidden]"]
        else:
            said = _said(s, message=self._asked == "" and self.trips[-1:] == ["DATA"])
        logger.debug("C: %s", " | ".join(said))
        verbs = "+".join(dict.fromkeys(_verb(line) for line in said))  # MAIL+RCPT for a pipelined group
        self._asked = f"{self._asked}+{verbs}" if self._asked else verbs

    def starttls(self, *, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:  # type: ignore[override]
        reply = super().starttls(context=context)
        self.trips.append("TLS handshake")
        return reply

    def _set_timeout(self, whole_attempt: bool = False) -> None:
        """The socket's timeout for what comes next: SMTP_TIMEOUT (a send: the rest of the attempt), never
        past the attempt's deadline."""
        if self.sock is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise why.AttemptTimedOut("timed out")
        self.sock.settimeout(left if whole_attempt else min(self.timeout, left))

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:  # smtplib's own hook
        given, self._given = self._given, None
        if isinstance(given, Exception):
            raise given
        if given is not None:
            sock = given
        else:  # plaintext: to the loopback addresses the name resolved to, never to the name again
            sock = open_tcp(host, port, timeout, loopback_addresses(host) if self._plain else None)
        self._reached("tcp")
        if self._implicit_tls is None:
            self.stage = "greeting"
            return sock
        self.stage = "tls"
        try:
            wrapped = self._implicit_tls.wrap_socket(sock, server_hostname=wire_name(host))
        except BaseException:
            sock.close()
            raise
        self.trips.append("TLS handshake")
        self._reached("tls")
        self.stage = "greeting"
        return wrapped


SHOWN_VERBS = ("EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT")


def _said(s: ReadableBuffer | str, message: bool) -> list[str]:
    """What a send put on the wire, as --debug shows it: each command line whose verb is in SHOWN_VERBS;
    AUTH and every other line (a SASL response) as "[hidden]"; the message as "message (N bytes)". The
    message is never copied or scanned for this: only its length and a BDAT's first line are read."""
    if message:
        return [f"message ({len(memoryview(s.encode() if isinstance(s, str) else s))} bytes)"]
    data = s.encode("utf-8", "replace") if isinstance(s, str) else bytes(s[:1000] if isinstance(s, bytes) else s)
    if data[:5].upper() == b"BDAT ":  # the chunk follows its command line
        line = data.partition(b"\r\n")[0].decode("ascii", "replace")
        size = line.split(" ")[1]
        return [f"{line} (message, {size} bytes)"]
    shown: list[str] = []
    for line in data.decode("utf-8", "replace").split("\r\n"):
        verb = line.split(" ", 1)[0].upper()
        if verb in SHOWN_VERBS:
            shown.append(line)
        elif line:
            shown.append("AUTH [hidden]" if verb == "AUTH" else "[hidden]")
    return shown or ["[hidden]"]


def _verb(shown: str) -> str:
    """A round trip's name for one line of _said(): its verb; "message"; AUTH for a hidden SASL answer."""
    word = shown.split(" ", 1)[0]
    return word.upper() if word.upper() in SHOWN_VERBS else "AUTH" if word.startswith(("AUTH", "[")) else word


def trips_line(trips: list[str]) -> str:
    """ "8 (greeting, EHLO, STARTTLS, TLS handshake, EHLO, AUTH, MAIL+RCPT, BDAT)" """
    return f"{len(trips)} ({', '.join(trips)})"


class Session:
    """An open, greeted (and, where asked, encrypted) connection: `tls` is the TLS version (None: plain),
    `certificate` the line that describes the server's certificate."""

    __slots__ = ("conn", "tls", "certificate")

    def __init__(self, conn: smtplib.SMTP, tls: str | None, certificate: str | None):
        self.conn = conn
        self.tls = tls
        self.certificate = certificate

    def close(self) -> None:
        _close(self.conn)

    def leave(self) -> None:
        """QUIT without waiting for the reply (nothing depends on it), then close."""
        _leave(self.conn)


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def connect(
    settings: Settings,
    reached: Callable[[str], None] = _nothing,
    secrets: list[str] | None = None,
    opened: Callable[[smtplib.SMTP], None] | None = None,
    sock: socket.socket | Exception | None = None,
    pending: Callable[[], list[str]] | None = None,
) -> Session:
    """Connect, greet, and secure the connection as SMTP_SECURITY says: tcp, then (implicit) tls, greeting,
    ehlo, then (STARTTLS) tls and ehlo again. `reached(stage)` is told each stage as it completes.
    `secrets` (the passwords or tokens known so far) never appear in a reply read on this connection.
    `opened(conn)` is given the connection before it connects, and `sock` is its TCP connection, already
    made, or what making it raised (jobmail.smtp.ahead: a connection made in a thread); `pending()` gives
    the secrets still to come, and is waited for before the first reply is read.

    Raises a SendError (a `Failed`, whose `.stage` says where it failed) that says what to do.
    """
    logger.debug("connecting to %s (%s)", settings.server, settings.smtp_security)
    security = settings.smtp_security
    if security == "none" and not is_loopback(settings.smtp_host):  # checked again here: a name may change
        raise why.not_loopback(settings).error("tcp")
    context = ssl_context(settings) if security != "none" else None
    conn = _SteppedSMTP(settings, context if security == "ssl" else None, reached, secrets, sock, pending)
    if opened is not None:
        opened(conn)
    try:
        code, greeting = conn.connect(settings.smtp_host, settings.smtp_port)
        if code != 220:  # as smtplib.SMTP's own constructor checks it
            raise smtplib.SMTPConnectError(code, greeting)
        reached("greeting")
        conn.stage = "ehlo"
        _greet(conn, settings)
        if security == "starttls" and context is not None:
            conn.stage = "tls"
            _starttls(conn, settings, context)
            conn.stage = "ehlo"
            _greet(conn, settings)
        reached("ehlo")
    except Failed:
        conn.close()
        raise
    except Exception as exc:
        conn.close()
        raise classify(exc, settings, stage=conn.stage) from None
    except BaseException:
        conn.close()
        raise
    sock = conn.sock
    tls = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    session = Session(conn, tls, certificate_detail(sock))
    logger.debug("connected to %s: %s", settings.server, session.certificate or "no TLS")
    return session


def _greet(conn: _SteppedSMTP, settings: Settings) -> None:
    """EHLO, falling back to HELO for a server without ESMTP; a refusal is an error, not an empty feature list."""
    code, reply = conn.ehlo()
    if 200 <= code < 300:
        return
    if 400 <= code < 500:
        _expect((code, reply), (250,), settings, "the greeting (EHLO)", conn.stage)
    code, reply = conn.helo()
    _expect((code, reply), (250,), settings, "the greeting (EHLO and HELO)", conn.stage)


def _starttls(conn: smtplib.SMTP, settings: Settings, context: ssl.SSLContext) -> None:
    """STARTTLS, which must succeed: there is no fall-back to plain text. smtplib raises on a refusal."""
    if not conn.has_extn("starttls"):
        raise why.no_starttls(settings).error("tls")
    conn.starttls(context=context)


def certificate_detail(sock: object) -> str | None:
    """The TLS version and the server's certificate in one line (None for a plain connection):
    "TLSv1.3, certificate: commonName=..., issued by ..., valid until YYYY-MM-DD"."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert() or {}
    subject = ", ".join(f"{k}={v}" for k, v in _names(cert.get("subject"))) or "(no subject)"
    issuer = dict(_names(cert.get("issuer")))
    text = f"{sock.version()}, certificate: {subject}"
    by = issuer.get("organizationName") or issuer.get("commonName")
    if by:
        text += f", issued by {by}"
    until = _certificate_day(cert.get("notAfter"))
    if until:
        text += f", valid until {until}"
    return text


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CERT_TIME = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) \d\d:\d\d:\d\d(?:\.\d+)? (\d{4}) GMT")


def _certificate_day(value: object) -> str | None:
    """YYYY-MM-DD (UTC) of a certificate time as getpeercert() gives it ("Jun  1 12:00:00 2027 GMT").
    Read here, not with ssl.cert_time_to_seconds: that imports _strptime, ~10 ms of every send."""
    match = _CERT_TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or match[1] not in _MONTHS:
        return None
    return f"{match[3]}-{_MONTHS.index(match[1]) + 1:02d}-{int(match[2]):02d}"


def _names(rdns: object) -> list[tuple[str, str]]:
    """The (name, value) pairs of a certificate's subject or issuer as getpeercert() gives it."""
    if not isinstance(rdns, tuple):
        return []
    return [(str(pair[0]), str(pair[1])) for rdn in rdns for pair in rdn if len(pair) == 2]


# --- login ---------------------------------------------------------------------------------------------


def login(session: Session, settings: Settings, password: Callable[[], str]) -> bool:
    """Log in when the connection is encrypted (or is `none` to loopback and the server offers AUTH).

    The password is fetched only when it is needed, and only sent over TLS (or to loopback with
    SMTP_SECURITY=none). Returns whether a login happened. Errors never contain the password.
    """
    conn = session.conn
    if settings.smtp_security == "none" and not conn.has_extn("auth"):
        return False
    if session.tls is None and not (settings.smtp_security == "none" and is_loopback(settings.smtp_host)):
        raise why.not_encrypted(settings).error("login")
    if not conn.has_extn("auth"):
        raise why.no_login(settings).error("login")
    secret = password()
    if isinstance(conn, _SteppedSMTP):
        conn.hide(secret)  # a server that quotes it back, in any later reply, says "[password hidden]"
    if settings.uses_oauth:
        try:
            return _login_oauth(conn, settings, secret)
        except SendError as exc:
            renewed = _renewed(password) if exc.code in (530, 534, 535) else None
            if renewed is None:
                raise
            if isinstance(conn, _SteppedSMTP):
                conn.hide(renewed)
            logger.debug("the access token was refused before its time; trying once more with a new one")
            return _login_oauth(conn, settings, renewed)
    try:
        authenticate(conn, settings.smtp_username, secret)
    except smtplib.SMTPResponseException as exc:
        raise _redacted(classify(exc, settings, stage="login"), settings.smtp_username, [secret]) from None
    except smtplib.SMTPException:
        offered = conn.esmtp_features.get("auth", "").strip() or "none"
        ascii_only = settings.smtp_username.isascii() and secret.isascii()
        raise why.no_login_method(settings, offered, ascii_only).error("login") from None
    except Exception as exc:
        raise _redacted(classify(exc, settings, stage="login"), settings.smtp_username, [secret]) from None
    logger.debug("logged in to %s as %s", settings.server, settings.smtp_username)
    return True


OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


def _renewed(password: Callable[[], str]) -> str | None:
    """A new access token when the one refused was not new (the provider ended it early: revoked, or a
    long `outbox run` kept it), from a source that can renew (auth.oauth.TokenSource); else None."""
    source = password._password if isinstance(password, _Remembered) else password
    renew = getattr(source, "renew", None)
    try:
        token = renew() if callable(renew) else None
    except JobmailError:  # the sign-in itself is gone (revoked): the refusal, which says to sign in again, stands
        return None
    if token and isinstance(password, _Remembered):
        password.fetched.append(token)  # hidden from errors like the first one
    return token or None


def _login_oauth(conn: smtplib.SMTP, settings: Settings, token: str) -> bool:
    """Log in with an OAuth 2.0 access token: SASL XOAUTH2 (Google, Microsoft), or OAUTHBEARER (RFC 7628)
    where only that is offered. The token goes in the initial response: one round trip."""
    offered = conn.esmtp_features.get("auth", "").upper().split()
    mechanism = next((name for name in OAUTH_MECHANISMS if name in offered), None)
    if mechanism is None:
        raise why.no_oauth_login(settings, " ".join(offered) or "none").error("login")
    user = settings.smtp_username
    try:
        code, reply = conn.docmd("AUTH", f"{mechanism} {sasl_response(mechanism, user, token)}")
        if code == 334:  # the server's error details (RFC 7628 3.2.2): answer with an empty line for the result
            code, reply = conn.docmd("")
    except Exception as exc:
        raise _redacted(classify(exc, settings, stage="login"), user, [token]) from None
    if code != 235:
        problem = why.login_refused(code, reply_text(reply), settings)
        raise _redacted(problem.error("login"), user, [token]) from None
    logger.debug("logged in to %s as %s (%s)", settings.server, user, mechanism)
    return True


def sasl_response(mechanism: str, user: str, token: str) -> str:
    """The initial response of XOAUTH2 or OAUTHBEARER (RFC 7628 3.1), base64."""
    if mechanism == "XOAUTH2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        name = user.replace("=", "=3D").replace(",", "=2C")
        raw = f"n,a={name},\x01auth=Bearer {token}\x01\x01"
    return why.b64(raw)


def authenticate(conn: smtplib.SMTP, user: str, secret: str) -> None:
    """Log in on an open connection with one mechanism the server offers, raising smtplib's exceptions:
    AUTH PLAIN with its initial response (one round trip), else LOGIN, both in UTF-8 (RFC 4616: a user
    name or password beyond ASCII too, which smtplib cannot encode), else CRAM-MD5 (ASCII only). One
    mechanism, once: smtplib's login() tries the next one after a refusal, so a wrong password counted
    twice or three times against the account's lock-out limits (and a server's growing delay).

    Whoever shows an error from here should pass its text through redact(): servers may quote the
    credentials back.
    """
    mechanisms = conn.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in mechanisms:
        response = why.b64("\0" + user + "\0" + secret)
        code, reply = conn.docmd("AUTH", "PLAIN " + response)
        if code == 334:  # a server that asks again for what came with the command: answered once, as smtplib does
            code, reply = conn.docmd(response)
    elif "LOGIN" in mechanisms:
        code, reply = conn.docmd("AUTH", "LOGIN " + why.b64(user))
        if code == 334:
            code, reply = conn.docmd(why.b64(secret))
    elif "CRAM-MD5" in mechanisms and user.isascii() and secret.isascii():
        conn.user, conn.password = user, secret
        try:
            conn.auth("CRAM-MD5", conn.auth_cram_md5)  # raises SMTPAuthenticationError when refused
        finally:
            conn.password = None  # type: ignore[assignment]  # smtplib keeps it; nothing needs it after login
        return
    else:
        raise smtplib.SMTPException("no login method jobmail can use")
    if code not in (235, 503):  # 503: already logged in
        raise smtplib.SMTPAuthenticationError(code, reply)


def redact(text: str, user: str, secret: str) -> str:
    """`text` with the password replaced wherever it appears, plain or base64-encoded as AUTH sends it."""
    return why.redact_all(text, user, [secret])


def _secret_forms(user: str, secrets: list[str]) -> list[str]:
    """The password as it could come back in a reply: plain, and base64 as AUTH PLAIN and LOGIN send it."""
    return why.secret_forms(user, secrets)


def _redacted(exc: SendError, user: str, secrets: list[str], suffix: str = "") -> SendError:
    """The same error (same class, code, transient, attempts) with every form of the password replaced in
    its parts and reply, and `suffix` added to its text."""
    parts = why.redact_parts(exc.parts, user, secrets)
    reply = why.redact_all(exc.reply, user, secrets)
    if not suffix and parts == exc.parts and reply == exc.reply:
        return exc
    if suffix:
        parts = (*parts, suffix)
    copy: SendError
    if isinstance(exc, Failed):
        problem = exc.problem.redacted(user, secrets)
        copy = Failed(*parts, code=exc.code, reply=reply, transient=exc.transient, problem=problem, stage=exc.stage)
    else:
        copy = type(exc)(*parts, code=exc.code, reply=reply, transient=exc.transient)
    copy.attempts = exc.attempts
    return copy


def classify(exc: BaseException, settings: Settings, stage: str) -> SendError:
    """Turn a library or socket exception raised at `stage` into a one-line SendError that says what to do
    (the entry of jobmail.smtp.explain's table)."""
    return explain(exc, settings, stage).error(stage)


# --- sending -------------------------------------------------------------------------------------------


class _Remembered:
    """The password callable, keeping every value it gave (to redact them from errors)."""

    def __init__(self, password: Callable[[], str]):
        self._password = password
        self.fetched: list[str] = []

    def __call__(self) -> str:
        value = self._password()
        self.fetched.append(value)
        return value


def _no_hook(attempt: int) -> None:
    pass


def _no_report(attempt: int, error: SendError, delay: float) -> None:
    pass


def send(
    settings: Settings,
    password: Callable[[], str],
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    before_data: Callable[[int], None] = _no_hook,
    on_retry: Callable[[int, SendError, float], None] = _no_report,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
    ahead: Ahead | None = None,
) -> Delivered:
    """Send `data` to `recipients`, retrying transient failures that happen before the message data.
    The first attempt uses the connection opened `ahead` when one is given (its failure counts as that
    attempt's); every later attempt connects anew.

    `before_data(attempt)` runs just before the DATA command (the caller records `sending` there);
    whatever it raises ends the send unchanged. A failure after the message data went out raises
    OutcomeUnknown and is never retried. Waits between attempts grow exponentially:
    SEND_RETRY_DELAY * 2**(attempt-1), times a random factor from 0.5 to 1.5. A retry is planned only if
    that wait, before the random factor, ends within SEND_RETRY_WITHIN seconds of the first attempt's
    start (timeouts make attempts long).
    """
    remembered = _Remembered(password)
    if settings.needs_password:
        remembered()  # known before the first greeting: a server that learnt it once cannot quote it back
    attempt = 0
    started = clock()
    while True:
        attempt += 1
        try:
            opened = ahead if attempt == 1 else None
            return _attempt(settings, remembered, sender, recipients, data, attempt, before_data, opened)
        except SendError as exc:
            error = _redacted(exc, settings.smtp_username, remembered.fetched)
            error.attempts = attempt
            if isinstance(error, OutcomeUnknown) or not error.transient:
                raise error from None
            delay = None
            spent = 0.0
            if attempt < settings.send_attempts:
                spent = clock() - started
                planned = settings.send_retry_delay * (2 ** (attempt - 1))  # judged before the jitter
                if spent + planned <= settings.send_retry_within:
                    delay = planned * (0.5 + jitter())
            if delay is None:
                suffix = (
                    _gave_up(attempt) if attempt >= settings.send_attempts else _out_of_time(attempt, spent, settings)
                )
                final = _redacted(error, settings.smtp_username, [], suffix=suffix)
                final.attempts = attempt
                raise final from None
            on_retry(attempt, error, delay)
            logger.info("attempt %d failed (%s); retrying in %.1fs", attempt, error, delay)
            sleep(delay)


def _gave_up(attempts: int) -> str:
    return f" (gave up after {attempts} attempts)" if attempts > 1 else ""


def _out_of_time(attempts: int, spent: float, settings: Settings) -> str:
    return (
        f" (gave up after {attempts} of {settings.send_attempts} attempts, {spent:.0f}s: another would start "
        f"after SEND_RETRY_WITHIN={settings.send_retry_within:g}s)"
    )


def _attempt(
    settings: Settings,
    password: Callable[[], str],
    sender: str,
    recipients: list[str],
    data: bytes,
    attempt: int,
    before_data: Callable[[int], None],
    ahead: Ahead | None = None,
) -> Delivered:
    secrets = password.fetched if isinstance(password, _Remembered) else []
    if ahead is not None:
        session = ahead.take(secrets)
    else:
        session = connect(settings, secrets=secrets)
    conn = session.conn
    stage = "login"
    try:
        login(session, settings, password)
        stage = "envelope"
        _envelope(conn, settings, sender, recipients, _body_options(conn, settings, data))
        stage = "record"
        before_data(attempt)
        if conn.has_extn("chunking"):  # RFC 3030: the command and the message in one go, no DATA round trip
            stage = "data-sent"  # from here on the server may have the whole message
            message = _crlf(data)
            conn.send(b"BDAT %d LAST\r\n" % len(message) + message)
        else:
            stage = "data"
            _expect(conn.docmd("DATA"), (354,), settings, "the message", stage)
            stage = "data-sent"
            conn.send(_dot_stuffed(data))
        code, reply = conn.getreply()
        _expect((code, reply), (250,), settings, "the message", stage, after_data=True)
    except SendError as exc:
        session.close()
        if stage == "data-sent" and exc.code is None and not isinstance(exc, OutcomeUnknown):
            raise why.lost_after_data(settings, str(exc)) from None
        raise
    except BaseException as exc:
        conn.close()
        if stage == "record" or not isinstance(exc, Exception):
            raise  # the caller's own failure, or KeyboardInterrupt and the like: the caller records it
        if stage == "data-sent":
            raise why.lost_after_data(settings, why.no_answer_detail(exc)) from None
        raise classify(exc, settings, stage=stage) from None
    delivered = Delivered(code, reply_text(reply), settings.server, session.tls, attempt)
    if isinstance(conn, _SteppedSMTP) and logger.isEnabledFor(logging.DEBUG):
        logger.debug("round trips: %s; the reply to QUIT not awaited", trips_line(conn.trips))
    try:
        _leave(conn)
    except KeyboardInterrupt as exc:  # stopped while saying goodbye: the server has accepted the message
        conn.close()
        raise interrupts.after(exc, delivered) from None
    return delivered


def _envelope(conn: smtplib.SMTP, settings: Settings, sender: str, recipients: list[str], options: list[str]) -> None:
    """MAIL FROM and every RCPT TO, each reply checked before anything else is sent. With PIPELINING
    (RFC 2920) they go out together and their replies are read in order: one round trip instead of one
    per command. DATA is never in the group: a refused recipient must still mean nothing is sent."""
    mail = f"FROM:{smtplib.quoteaddr(sender)}{''.join(' ' + option for option in options)}"
    if conn.has_extn("pipelining"):
        conn.send("".join([f"MAIL {mail}\r\n", *(f"RCPT TO:{smtplib.quoteaddr(r)}\r\n" for r in recipients)]))
        answers = _replies(conn, 1 + len(recipients))
    else:
        conn.putcmd("mail", mail)
        answers = [conn.getreply()]
        answers += [conn.rcpt(rcpt) for rcpt in recipients] if answers[0][0] == 250 else []
    _expect(answers[0], (250,), settings, f"the sender {sender}", "envelope")
    for rcpt, answer in zip(recipients, answers[1:], strict=False):  # fewer: one refused, then it hung up
        _expect(answer, (250, 251), settings, f"the recipient {rcpt}", "envelope")


def _replies(conn: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    """The replies to `count` pipelined commands, in order. A server that refused one and then hung up
    is reported by that refusal (a 421 says more than the closed connection after it)."""
    answers: list[tuple[int, bytes]] = []
    for _ in range(count):
        try:
            answers.append(conn.getreply())
        except (smtplib.SMTPServerDisconnected, OSError):
            if any(code >= 400 for code, _ in answers):
                return answers
            raise
    return answers


def _leave(conn: smtplib.SMTP) -> None:
    """QUIT once the server has accepted the message, without waiting for its reply (a round trip that
    changes nothing: the message is the server's now)."""
    try:
        conn.send("QUIT\r\n")
    except (smtplib.SMTPException, OSError):
        pass
    conn.close()


def _body_options(conn: smtplib.SMTP, settings: Settings, data: bytes) -> list[str]:
    """MAIL FROM parameters: BODY=8BITMIME for a message that is not 7-bit (RFC 6152)."""
    if data.isascii():
        return []
    if not conn.has_extn("8bitmime"):
        raise why.no_8bitmime(settings).error("envelope")
    return ["BODY=8BITMIME"]


def _crlf(data: bytes) -> bytes:
    """The message with every line ending CRLF, the last one included (as DATA and BDAT both want it)."""
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA sends it: CRLF lines, a leading dot doubled, ended by a line with one dot."""
    return re.sub(rb"(?m)^\.", b"..", _crlf(data)) + b".\r\n"


def _expect(
    answer: tuple[int, bytes],
    codes: tuple[int, ...],
    settings: Settings,
    what: str,
    stage: str,
    after_data: bool = False,
) -> None:
    code, reply = answer
    if code not in codes:
        raise why.refused(settings, what, code, reply_text(reply), after_data).error(stage)
