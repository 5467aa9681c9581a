"""What an SMTP failure means, one table for both the send and the check.

`explain(exc, settings, stage)` turns a library or socket exception raised at a stage of a connection
into a `Problem`: what happened (with the server's reply when there was one), what to do, and whether a
retry may help. The other causes (a refused reply, no STARTTLS, no login method, ...) have their own
builders here, so that each cause has exactly one wording. The send raises `Problem.error()` (a one-line
SendError: problem, ": ", fix); the check shows `problem` and `hint` of the same entry.

Stages, in the order a connection goes through them: tcp, tls (implicit TLS: right after tcp), greeting,
ehlo, tls (STARTTLS: after the first EHLO), login, envelope, data, data-sent.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from dataclasses import dataclass, replace

from jobmail.errors import EXIT_BAD_INPUT, EXIT_SEND_FAILED, Command, OutcomeUnknown, SendError, render
from jobmail.settings import DEFAULT_PORTS, Settings, is_loopback

Part = str | Command

MAX_REPLY_CHARS = 300
# How much of a reply we read before giving up on the server (an EHLO reply is some 15 lines).
MAX_REPLY_LINES = 100
MAX_REPLY_BYTES = 64 * 1024
# One attempt (connect to the reply after the message data) ends within this many SMTP_TIMEOUTs.
ATTEMPT_TIMEOUTS = 10
# Seconds (at most half of SMTP_TIMEOUT) a greeting may be silent before the client asks the port whether it
# speaks TLS from the first byte (SMTP_SECURITY=starttls or none against an implicit-TLS port).
GREETING_PATIENCE = 3.0
HIDDEN = "[password hidden]"
PASSWORD_SET = Command("password", "set")
LOGIN = Command("login")
WRONG_MODE_HINT = "the TLS mode does not match the port: use SMTP_SECURITY=ssl with port 465 and starttls with port 587"
# What happened at each stage, in words a user knows ("connect" is the older name of tcp).
STAGES = {
    "tcp": "while connecting",
    "connect": "while connecting",
    "greeting": "while connecting (no SMTP greeting came)",
    "tls": "while setting up TLS",
    "ehlo": "while greeting it (EHLO)",
    "login": "during login",
    "envelope": "while giving the sender and recipients",
    "data": "before the message was sent",
}
# OpenSSL's X509_V_ERR_* codes that need their own advice.
_CERT_NOT_YET_VALID = 9
_CERT_EXPIRED = 10
_CERT_NAME_MISMATCH = (62, 64)  # host name, IP address
# How OpenSSL says a TLS handshake got a plain-text answer (the port speaks STARTTLS or plain SMTP).
_PLAIN_REPLY_MARKS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")


@dataclass(frozen=True)
class Problem:
    """One failure: what happened and what to do, each a sequence of parts (strings and Commands)."""

    what: tuple[Part, ...]
    fix: tuple[Part, ...] = ()
    code: int | None = None  # the server's reply code, when it gave one
    reply: str = ""  # the server's reply text (without the code), when it gave one
    transient: bool = False  # a retry may succeed (only before the message data)
    exit_code: int = EXIT_SEND_FAILED  # 1: the account does not work; 2: the configuration is unusable

    @property
    def problem(self) -> str:
        return render(self.what)

    @property
    def hint(self) -> str:
        return render(self.fix)

    @property
    def server_reply(self) -> str:
        """The server's reply as it was given ("535 5.7.8 ..."), or ""."""
        return f"{self.code} {self.reply}" if self.code is not None else self.reply

    @property
    def parts(self) -> tuple[Part, ...]:
        """The one-line form: the problem, then ": " and the fix."""
        return (*self.what, ": ", *self.fix) if self.fix else self.what

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(part for part in self.parts if isinstance(part, Command))

    def error(self, stage: str = "") -> Failed:
        return Failed(
            *self.parts, code=self.code, reply=self.reply, transient=self.transient, problem=self, stage=stage
        )

    def redacted(self, user: str, secrets: list[str]) -> Problem:
        """The same problem with every form of the password replaced in its text and reply."""
        return replace(
            self,
            what=redact_parts(self.what, user, secrets),
            fix=redact_parts(self.fix, user, secrets),
            reply=redact_all(self.reply, user, secrets),
        )


class Failed(SendError):
    """A SendError that keeps its Problem and the stage it happened at (the check shows them apart)."""

    def __init__(
        self,
        *parts: Part,
        code: int | None = None,
        reply: str = "",
        transient: bool = False,
        problem: Problem | None = None,
        stage: str = "",
    ):
        super().__init__(*parts, code=code, reply=reply, transient=transient)
        self.problem = problem if problem is not None else Problem(parts, code=code, reply=reply, transient=transient)
        self.stage = stage


class OverlongReply(smtplib.SMTPException):
    """A reply of more than MAX_REPLY_LINES lines or MAX_REPLY_BYTES bytes: not a server to talk to."""


class AttemptTimedOut(TimeoutError):
    """One attempt went on past ATTEMPT_TIMEOUTS x SMTP_TIMEOUT, each reply within SMTP_TIMEOUT or not."""


# --- the server's words, and the password kept out of them -----------------------------------------


def reply_text(reply: bytes | str) -> str:
    """A server reply as one printable line of bounded length (replies are the server's words, not ours)."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(str(reply).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= MAX_REPLY_CHARS else text[: MAX_REPLY_CHARS - 1] + "…"


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def secret_forms(user: str, secrets: list[str]) -> list[str]:
    """The password (or OAuth access token) as it could come back in a reply: plain, with its white space
    run together as a clean-up would, and base64 as AUTH PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER send it."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.update((secret, " ".join(secret.split())))
        oauth = (f"user={user}\x01auth=Bearer {secret}\x01\x01", f"n,a={user},\x01auth=Bearer {secret}\x01\x01")
        for raw in (secret, "\0" + user + "\0" + secret, user + "\0" + secret, *oauth):
            encoded = b64(raw)
            forms.update((encoded, encoded.rstrip("=")))
    return sorted((form for form in forms if len(form) >= 3), key=len, reverse=True)


def redact_all(text: str, user: str, secrets: list[str]) -> str:
    """`text` with every password of `secrets` replaced wherever it appears, plain or base64-encoded.

    The one redaction of the server's words: the client runs it on each raw reply line as it is read
    (before any clean-up or cut), so every later use of a reply (an error, the sent log, `Sent via`,
    `check`, --debug) sees the redacted text; errors built from our own texts pass through it again."""
    if not secrets:
        return text
    for form in secret_forms(user, secrets):
        text = text.replace(form, HIDDEN)
    return text


def redact_raw(line: bytes, user: str, secrets: list[str]) -> bytes:
    """A raw reply line, as bytes, with every form of the secrets replaced (undecodable bytes kept)."""
    if not secrets:
        return line
    text = line.decode("utf-8", "surrogateescape")
    return redact_all(text, user, secrets).encode("utf-8", "surrogateescape")


def redact_parts(parts: tuple[Part, ...], user: str, secrets: list[str]) -> tuple[Part, ...]:
    return tuple(redact_all(part, user, secrets) if isinstance(part, str) else part for part in parts)


def _describe(exc: BaseException) -> str:
    return reply_text(str(exc)) or type(exc).__name__


def timed_out(exc: BaseException) -> bool:
    """A timeout, including smtplib's SMTPServerDisconnected raised while handling one."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def no_answer_detail(exc: BaseException) -> str:
    return "no answer in time" if timed_out(exc) else _describe(exc)


# --- the table -------------------------------------------------------------------------------------


def explain(exc: BaseException, settings: Settings, stage: str) -> Problem:
    """What `exc`, raised at `stage`, means, and what to do about it."""
    server = settings.server
    when = STAGES.get(stage, f"during {stage}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return login_refused(exc.smtp_code, reply_text(exc.smtp_error), settings)
    if isinstance(exc, smtplib.SMTPNotSupportedError) and stage == "login":
        return no_login(settings)
    if isinstance(exc, smtplib.SMTPConnectError):
        code, text = exc.smtp_code, reply_text(exc.smtp_error)
        fix = (
            "a temporary refusal: try again later"
            if 400 <= code < 500
            else "read the server's reply: this network (or its address) may be refused, or SMTP_PORT is wrong"
        )
        return Problem((f"{server} turned the connection away: {code} {text}",), (fix,), code, text, 400 <= code < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, reply_text(exc.smtp_error)
        if stage == "tls":  # the reply to STARTTLS
            fix = "try again later" if 400 <= code < 500 else "check SMTP_HOST and SMTP_PORT"
            what = f"{server} refused STARTTLS: {code} {text}, so nothing was sent"
            return Problem((what,), (fix,), code, text, 400 <= code < 500)
        return Problem(
            (f"{server} answered {code} {text} {when}",), _reply_fix(code, "", text), code, text, 400 <= code < 500
        )
    if isinstance(exc, OverlongReply):
        return Problem(
            (
                f"{server} sent a reply of more than {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES // 1024} KiB "
                f"{when}, so jobmail stopped reading it and nothing was sent",
            ),
            ("this is not a mail server jobmail can use: check SMTP_HOST and SMTP_PORT",),
        )
    if isinstance(exc, AttemptTimedOut):
        budget = settings.smtp_timeout * ATTEMPT_TIMEOUTS
        return Problem(
            (f"{server} took more than {budget:g}s ({ATTEMPT_TIMEOUTS} x SMTP_TIMEOUT) for one attempt {when}",),
            ("check SMTP_PORT and your network, or raise SMTP_TIMEOUT",),
            transient=True,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return certificate_problem(exc, settings)
    if isinstance(exc, ssl.SSLError):
        return _tls_failed(exc, settings)
    if isinstance(exc, socket.gaierror):
        return Problem(
            (f"the host {settings.smtp_host} was not found ({exc.strerror or exc})",),
            ("check SMTP_HOST for a typo (it looks like smtp.example.com) and that this computer is online",),
        )
    if stage in ("tcp", "connect"):
        return _unreachable(exc, settings)
    if stage == "greeting" and isinstance(exc, OSError):  # smtplib's SMTPServerDisconnected is an OSError
        return _no_greeting(exc, settings)
    if timed_out(exc) or (isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)):
        fix = (
            "check SMTP_SECURITY against the port (ssl with 465, starttls with 587), or raise SMTP_TIMEOUT on a "
            "slow network"
            if stage in ("tls", "ehlo")
            else "check SMTP_PORT and your network, or raise SMTP_TIMEOUT"
        )
        return Problem((f"{server} did not answer within {settings.smtp_timeout:g}s {when}",), (fix,), transient=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        fix = f"if it happens every time, {WRONG_MODE_HINT}" if stage in ("tls", "ehlo") else "try again later"
        return Problem((f"{server} closed the connection {when}, so nothing was sent",), (fix,), transient=True)
    if isinstance(exc, OSError):
        return Problem((f"the connection to {server} failed {when}: {_describe(exc)}",), transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return Problem((f"SMTP with {server} failed {when}: {_describe(exc)}",))
    return Problem((f"sending through {server} failed {when}: {type(exc).__name__}: {_describe(exc)}",))


def refused(settings: Settings, what: str, code: int, text: str, after_data: bool = False) -> Problem:
    """A reply other than the expected one to a command (`what`: "the sender a@b", "the message", ...)."""
    if code == -1:
        return Problem((f"{settings.server} closed the connection: {text}",), transient=not after_data)
    return Problem(
        (f"{settings.server} refused {what}: {code} {text}",),
        _reply_fix(code, what, text),
        code,
        text,
        400 <= code < 500,
    )


def _reply_fix(code: int, what: str, text: str = "") -> tuple[Part, ...]:
    if code == 530 and "STARTTLS" in text.upper():
        return ("the server wants an encrypted connection: set SMTP_SECURITY=starttls (port 587)",)
    if 400 <= code < 500:
        return ("a temporary refusal: try again later",)
    if code in (550, 551, 553) and what.startswith("the recipient"):
        return ("check the address",)
    if code in (550, 553) and what.startswith("the sender"):
        return ("FROM_ADDRESS must be an address of the account you log in with",)
    if code == 552:
        return ("the message is too large for this server; shorten it",)
    if code in (530, 535, 538):
        return ("check the login settings and the password (", PASSWORD_SET, ")")
    if code == 554:
        return ("the server rejected it; read its reply for the reason",)
    return ("nothing was delivered; read the server's reply for the reason",)


def login_refused(code: int, text: str, settings: Settings) -> Problem:
    what = (f"{settings.server} refused the login for {settings.smtp_username}: {code} {text}",)
    if 400 <= code < 500:
        return Problem(what, ("a temporary failure at the server: try again in a few minutes",), code, text, True)
    microsoft = _microsoft_refusal(text, settings)
    if microsoft:
        return Problem(what, microsoft, code, text)
    if settings.uses_oauth:
        fix: tuple[Part, ...] = (
            "the server did not accept the access token: sign in again with ",
            LOGIN,
            "; check that SMTP_USERNAME is the address you signed in as, and that the app registration has the "
            "mail scope (Microsoft: SMTP.Send; Google: https://mail.google.com/)",
        )
        return Problem(what, fix, code, text)
    from jobmail import providers  # only a refused login needs the provider table: a send does not load it

    provider = providers.for_host(settings.smtp_host)
    if provider is None:  # Proton Mail Bridge: a loopback host, known only with the address
        guess = providers.for_address(settings.smtp_username)
        provider = guess if guess is not None and guess.host == settings.smtp_host.lower() else None
    if provider is not None:
        return Problem(what, (f"{provider.note} Then store the right one with ", PASSWORD_SET), code, text)
    fix = (
        "wrong username or password, or an app password is needed: check the username (usually your full "
        "address); many providers (Gmail, Yahoo, iCloud, Fastmail) refuse your normal password over SMTP "
        "and want an app password made in your account's security settings; store the right one with ",
        PASSWORD_SET,
    )
    return Problem(what, fix, code, text)


def _microsoft_refusal(text: str, settings: Settings) -> tuple[Part, ...]:
    """What to do about Microsoft's 5.7.139 refusals (Outlook.com, Microsoft 365); () for any other reply."""
    lower = text.lower()
    if "5.7.139" not in lower:
        return ()
    if "smtpclientauthentication is disabled" in lower:
        return (
            "Authenticated SMTP is turned off for this mailbox or organisation: an admin must switch it on "
            "(Microsoft 365 admin center: Users > Active users > your user > Mail > Manage email apps > "
            "Authenticated SMTP; or in PowerShell: Set-CASMailbox -Identity <address> "
            "-SmtpClientAuthenticationDisabled $false)",
        )
    if "security defaults" in lower:
        return (
            "your organisation's security defaults block SMTP login with a password: set SMTP_AUTH=oauth2 and "
            "sign in with ",
            LOGIN,
            ' (README: "Sign in with Microsoft or Google"), or ask your admin',
        )
    if settings.uses_oauth:
        return ("Microsoft refused the sign-in for SMTP: sign in again with ", LOGIN, ", or ask your admin")
    return (
        "Microsoft no longer takes a password over SMTP for this account: set SMTP_AUTH=oauth2 and "
        "OAUTH_PROVIDER=microsoft with your OAUTH_CLIENT_ID, then sign in with ",
        LOGIN,
        ' (README: "Sign in with Microsoft or Google")',
    )


def no_oauth_login(settings: Settings, offered: str) -> Problem:
    return Problem(
        (f"{settings.server} offers no OAuth 2.0 login (XOAUTH2 or OAUTHBEARER; it offers {offered})",),
        ("this server wants a password: set SMTP_AUTH=password and store one with ", PASSWORD_SET),
    )


def no_login(settings: Settings) -> Problem:
    return Problem(
        (f"{settings.server} does not offer login (AUTH)",),
        (
            "check SMTP_HOST and SMTP_PORT: use your provider's submission port (587 with starttls, 465 with ssl), "
            "not 25",
        ),
    )


def no_login_method(settings: Settings, offered: str, ascii_only: bool) -> Problem:
    what = "jobmail can use" if ascii_only else "that can carry a user name or password with non-ASCII characters"
    return Problem(
        (f"{settings.server} offers no login method {what} (it offers {offered})",),
        ("make an app password with your provider and store it with ", PASSWORD_SET),
    )


def not_encrypted(settings: Settings) -> Problem:
    return Problem(
        (f"the connection to {settings.server} is not encrypted, so the password was not sent",),
        ("use SMTP_SECURITY=starttls (port 587) or ssl (port 465)",),
    )


def not_loopback(settings: Settings) -> Problem:
    return Problem(
        (f"SMTP_SECURITY=none, but {settings.smtp_host} does not resolve to loopback addresses only, so nothing "
         "was sent",),
        ("use SMTP_SECURITY=starttls or ssl, or SMTP_HOST=127.0.0.1 for a server on this machine",),
        exit_code=EXIT_BAD_INPUT,
    )


def plain_local_hint(settings: Settings) -> str:
    """For a server without STARTTLS on this machine (a test server): the setting that fits it."""
    return (
        " (for a test server on this machine without TLS: SMTP_SECURITY=none)"
        if is_loopback(settings.smtp_host)
        else ""
    )


def no_starttls(settings: Settings) -> Problem:
    return Problem(
        (f"{settings.server} does not offer STARTTLS, so nothing was sent (not even the password)",),
        (
            "check SMTP_HOST and SMTP_PORT (starttls is usually port 587; use SMTP_SECURITY=ssl for port 465): "
            "jobmail never sends in plain text to another machine" + plain_local_hint(settings),
        ),
    )


def starttls_unused(settings: Settings) -> Problem:
    """SMTP_SECURITY=none against a server that offers STARTTLS (the check refuses to call that working)."""
    return Problem(
        (f"{settings.server} offers STARTTLS, but SMTP_SECURITY=none would not use it",),
        ("set SMTP_SECURITY=starttls (and SMTP_CA_FILE for the server's own certificate)",),
        exit_code=EXIT_BAD_INPUT,
    )


def no_8bitmime(settings: Settings) -> Problem:
    return Problem(
        (f"the message has 8-bit content and {settings.server} does not accept it (no 8BITMIME), so nothing was sent",),
        ("remove the non-ASCII characters, or use another server",),
    )


def ca_file_unusable(ca_file: str, exc: BaseException) -> Problem:
    return Problem(
        (f"SMTP_CA_FILE={ca_file} is not a PEM certificate file ({_describe(exc)})",),
        ("export the server's or CA's certificate in PEM form",),
        exit_code=EXIT_BAD_INPUT,
    )


def lost_after_data(settings: Settings, detail: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"the connection to {settings.server} was lost after the message was sent and before the server "
        f"confirmed it ({detail}): it may have been delivered; check your mail account's Sent folder "
        "(with --bcc-self: your inbox), and only if it is not there send it again on purpose with the same "
        "command and --force"
    )


def certificate_problem(exc: ssl.SSLCertVerificationError, settings: Settings) -> Problem:
    """By OpenSSL's verify_code; by the message's text only when the code is missing (a hand-made error)."""
    server = settings.server
    reason = reply_text(getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc))
    code = getattr(exc, "verify_code", None)
    if not code:
        lowered = reason.lower()
        if "hostname mismatch" in lowered or "ip address mismatch" in lowered:
            code = _CERT_NAME_MISMATCH[0]
        elif "expired" in lowered:
            code = _CERT_EXPIRED
        elif "not yet valid" in lowered:
            code = _CERT_NOT_YET_VALID
    if code in _CERT_NAME_MISMATCH:
        return Problem(
            (f"the certificate of {server} is for another host name ({reason}), so nothing was sent",),
            (
                "set SMTP_HOST to the exact host name your provider gives (the name on its certificate), "
                "not an alias or IP address",
            ),
        )
    if code in (_CERT_EXPIRED, _CERT_NOT_YET_VALID):
        state = "has expired" if code == _CERT_EXPIRED else "is not valid yet"
        return Problem(
            (f"the certificate of {server} {state} ({reason}), so nothing was sent",),
            ("check this computer's date and time; otherwise the server must renew it",),
        )
    if settings.smtp_ca_file is not None:
        fix = (
            f"SMTP_CA_FILE={settings.smtp_ca_file} does not hold the certificate that signed this server's: "
            "export the right one (PEM) and point SMTP_CA_FILE at it"
        )
    else:
        fix = (
            "for a private server or a local bridge (Proton Mail Bridge), export its certificate (PEM) and "
            "set SMTP_CA_FILE to that file; for a public provider, check SMTP_HOST, and that nothing on this "
            "network intercepts the connection. Certificate checks are never turned off"
        )
    return Problem((f"the certificate of {server} is not trusted ({reason}), so nothing was sent",), (fix,))


def _tls_failed(exc: ssl.SSLError, settings: Settings) -> Problem:
    text = str(exc).upper().replace(" ", "_")
    if settings.smtp_security == "ssl" and any(mark in text for mark in _PLAIN_REPLY_MARKS):
        alternative = ", or SMTP_PORT=465 to keep ssl" if settings.smtp_port == DEFAULT_PORTS["starttls"] else ""
        return Problem(
            (f"TLS with {settings.server} failed: the server answered in plain text (wrong version number)",),
            (
                "this port starts in plain text and upgrades with STARTTLS: set SMTP_SECURITY=starttls "
                f"(usually port {DEFAULT_PORTS['starttls']}){alternative}",
            ),
        )
    return Problem(
        (f"TLS with {settings.server} failed ({exc.reason or _describe(exc)})",),
        (
            "check that SMTP_SECURITY matches the port (ssl with 465, starttls with 587); otherwise the server's "
            "TLS is too old or not compatible",
        ),
    )


def _unreachable(exc: BaseException, settings: Settings) -> Problem:
    server, port = settings.server, settings.smtp_port
    if isinstance(exc, ConnectionRefusedError):
        if is_loopback(settings.smtp_host):
            ports = "the port your local server listens on" if settings.smtp_security == "none" else "its port"
            fix = (
                "is the server on this machine (a test server, Proton Mail Bridge) running? "
                f"Then check SMTP_PORT: {ports}"
            )
        else:
            fix = (
                "check SMTP_PORT (587 for starttls, 465 for ssl) and SMTP_HOST; a firewall can also refuse connections"
            )
        return Problem(
            (f"{server} refused the connection (nothing is listening on port {port})",), (fix,), transient=True
        )
    if timed_out(exc):
        return Problem(
            (f"{server} did not answer within {settings.smtp_timeout:g}s while connecting",),
            (
                f"a firewall or this network may block port {port} (many networks block outgoing mail ports; try "
                "the provider's other port, 587 or 465), or SMTP_HOST is wrong; on a slow network, raise SMTP_TIMEOUT",
            ),
            transient=True,
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _describe(exc)
    return Problem(
        (f"cannot connect to {server}: {reason}",),
        ("check this computer's network connection, SMTP_HOST and SMTP_PORT",),
        transient=True,
    )


def _no_greeting(exc: OSError, settings: Settings) -> Problem:
    """The TCP connection is up but no SMTP greeting came: timed out, or closed by the server.

    Without implicit TLS, a timeout here means the client has asked the port whether it speaks TLS (see
    client._SteppedSMTP) and it did not: the greeting is merely slow, so a longer SMTP_TIMEOUT can help."""
    server = settings.server
    stalled = timed_out(exc) or "timed out" in str(exc)
    if stalled:
        what = f"{server} did not answer within {settings.smtp_timeout:g}s {STAGES['greeting']}"
    else:
        what = f"{server} closed the connection {STAGES['greeting']}, so nothing was sent"
    if settings.smtp_security == "ssl":
        fix = (
            "check SMTP_PORT and your network, or raise SMTP_TIMEOUT"
            if stalled
            else f"if it happens every time, {WRONG_MODE_HINT}"
        )
    elif stalled:
        fix = (
            "the port took the connection but sent nothing, nor does it answer TLS: check SMTP_PORT and your "
            "network, or raise SMTP_TIMEOUT for a slow server"
        )
    else:
        alternative = ", or SMTP_PORT=587 to keep starttls" if settings.smtp_port == DEFAULT_PORTS["ssl"] else ""
        fix = (
            "this port probably expects TLS from the first byte (implicit TLS): set SMTP_SECURITY=ssl "
            f"(usually port {DEFAULT_PORTS['ssl']}){alternative}"
        )
    return Problem((what,), (fix,), transient=True)


def implicit_tls_port(settings: Settings) -> Problem:
    """SMTP_SECURITY=starttls (or none) against a port that speaks TLS from the first byte: the greeting the
    client waits for comes only inside TLS. Permanent: no retry and no longer SMTP_TIMEOUT can help."""
    mode = settings.smtp_security
    keep = f", or SMTP_PORT={DEFAULT_PORTS['starttls']} to keep {mode}" if mode == "starttls" else ""
    keep = keep if settings.smtp_port == DEFAULT_PORTS["ssl"] else ""
    return Problem(
        (
            f"{settings.server} sent no SMTP greeting {STAGES['tcp']} but answered a TLS handshake, so nothing "
            f"was sent (SMTP_SECURITY={mode} waits for a greeting in plain text)",
        ),
        (f"this port speaks TLS from the first byte: set SMTP_SECURITY=ssl (port {DEFAULT_PORTS['ssl']}){keep}",),
    )
