"""The account check: connect, TLS (certificate verified), keyring, login, quit. Nothing is ever sent.

Each step becomes a `Step` with its result; a failed step carries what happened (with the server's reply
when there was one) and a hint matched to the cause. This module does not print: the CLI does.
The TLS rules are jobmail.smtp.client's (its ssl_context: certificate and host name always verified).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobmail import providers
from jobmail.auth import credentials
from jobmail.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_SEND_FAILED, CredentialError, SendError
from jobmail.settings import DEFAULT_PORTS, Settings, is_loopback
from jobmail.smtp.client import (
    authenticate,
    classify,
    local_hostname,
    plain_local_hint,
    redact,
    reply_text,
    ssl_context,
)

# keyring's stand-ins for "no backend": they store nothing.
NO_BACKENDS = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")
PLAINTEXT_BACKEND = "keyrings.alt.file.PlaintextKeyring"
_PLAIN_REPLY_MARKS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")


@dataclass(frozen=True)
class Step:
    name: str  # connect | tls | keyring | login
    title: str  # "connect smtp.example.com:587", "TLS", "keyring", "login as alex@example.com"
    ok: bool
    detail: str = ""  # on success: what was found (TLS version and certificate, the keyring backend)
    problem: str = ""  # on failure: what happened, with the server's reply when there was one
    reply: str = ""  # the server's reply to the failed step ("535 5.7.8 ..."), when it gave one
    hint: str = ""  # on failure: what to do
    exit_code: int = EXIT_OK  # 1: the account does not work; 2: the configuration is unusable
    guidance: tuple[str, ...] = ()  # on failure: longer advice, one line each (the keyring's choices)
    mark: str = "ok"  # how a passed step is shown: "ok", or "off"/"skipped" for a step that did not apply


@dataclass
class CheckResult:
    steps: list[Step] = field(default_factory=list)

    @property
    def failed(self) -> Step | None:
        return next((step for step in self.steps if not step.ok), None)

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def exit_code(self) -> int:
        failed = self.failed
        return failed.exit_code if failed else EXIT_OK


@dataclass(frozen=True)
class Failure:
    problem: str
    hint: str = ""
    reply: str = ""
    exit_code: int = EXIT_SEND_FAILED


class _StepFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.problem)
        self.failure = failure


# --- the keyring ---------------------------------------------------------------------------------


def backend_in_use(backend: str = "") -> str:
    """The keyring backend keyring would use (KEYRING_BACKEND when set). Raises CredentialError."""
    return credentials.backend_name(backend)


def is_usable_backend(name: str) -> bool:
    return name not in NO_BACKENDS


def keyring_guidance(platform: str = sys.platform, environ: Mapping[str, str] | None = None) -> list[str]:
    """What to do when keyring has no usable backend, for this platform: a few lines, choices numbered."""
    lines = []
    selected = (environ or {}).get("PYTHON_KEYRING_BACKEND", "")
    if selected:
        lines.append(
            f"PYTHON_KEYRING_BACKEND={selected} is set in your environment and chooses this: "
            "unset it to let keyring find the system keyring."
        )
    lines.append("The password needs a keyring. Choose one:")
    if platform == "darwin":
        lines.append(
            "  1. The macOS Keychain: run from your logged-in user session (over SSH, unlock it first with "
            "`security unlock-keychain`)."
        )
    elif platform.startswith("win"):
        lines.append(
            "  1. The Windows Credential Manager: reinstall keyring in this virtual environment "
            "(`pip install --force-reinstall keyring`), which brings its Windows support (pywin32-ctypes)."
        )
    else:
        lines.append(
            "  1. A Secret Service: GNOME Keyring or KWallet, running and unlocked in your desktop session "
            '(without a desktop: see "Using Keyring on headless Linux systems" in keyring\'s documentation).'
        )
    lines += [
        f"  2. The file backend of keyrings.alt: `pip install keyrings.alt`, then run "
        f"`python send.py setup --keyring-backend {PLAINTEXT_BACKEND}` (or add "
        f"KEYRING_BACKEND={PLAINTEXT_BACKEND} to your .env and run `python send.py password set`).",
        "     That file only obscures the password, it does not encrypt it: keep your home folder private.",
    ]
    return lines


# --- the check -----------------------------------------------------------------------------------


def check(
    settings: Settings,
    *,
    password_command: str = "python send.py password set",
    on_step: Callable[[Step], None] = lambda step: None,
    environ: Mapping[str, str] | None = None,
) -> CheckResult:
    """Connect, secure, look up the password, log in, and quit; one Step per stage, stopping at the first
    failure. `on_step` sees each step as soon as it is known (the CLI prints it). `environ` only shapes
    the keyring advice (PYTHON_KEYRING_BACKEND)."""
    result = CheckResult()

    def add(step: Step) -> bool:
        result.steps.append(step)
        on_step(step)
        return step.ok

    # With TLS a login always follows, so a missing keyring is told first, before any connection. With
    # `none` (a server on this machine) a login happens only if the server asks: the keyring is checked then.
    if settings.needs_password and not _backend_ok(settings, environ, add):
        return result
    conn = _connect(settings, add)
    if conn is None:
        return result
    try:
        if settings.smtp_security == "none" and conn.has_extn("starttls"):
            add(
                Step(
                    "tls",
                    "TLS",
                    False,
                    problem=f"{settings.server} offers STARTTLS, but SMTP_SECURITY=none would not use it",
                    hint="set SMTP_SECURITY=starttls (and SMTP_CA_FILE for the server's own certificate)",
                    exit_code=EXIT_BAD_INPUT,
                )
            )
            return result
        if not _needs_login(conn, settings):
            add(Step("login", "login", True, "the server on this machine asks for no login", mark="skipped"))
            return result
        if not settings.needs_password and not _backend_ok(settings, environ, add):
            return result
        password = _password(settings, password_command, add)
        if password is not None:
            _login(conn, settings, password, password_command, add)
    finally:
        _close(conn)
    return result


def _backend_ok(settings: Settings, environ: Mapping[str, str] | None, add: Callable[[Step], bool]) -> bool:
    failed = backend_step(settings.keyring_backend, environ)
    return failed is None or add(failed)


def backend_step(backend: str = "", environ: Mapping[str, str] | None = None) -> Step | None:
    """A failed keyring step when there is no usable backend (checked before anything else; asking keyring
    for its backend may probe the system, e.g. D-Bus, but reads no password); None when there is one."""
    try:
        name = backend_in_use(backend)
    except CredentialError as exc:
        return Step("keyring", "keyring", False, problem=str(exc), exit_code=EXIT_BAD_INPUT)
    if is_usable_backend(name):
        return None
    return Step(
        "keyring",
        "keyring",
        False,
        problem=f"no usable keyring backend ({name}): the password can be neither stored nor read",
        exit_code=EXIT_BAD_INPUT,
        guidance=tuple(keyring_guidance(sys.platform, environ)),
    )


def _connect(settings: Settings, add: Callable[[Step], bool]) -> smtplib.SMTP | None:
    """The connect and TLS steps; the open, greeted, encrypted connection, or None after a failed step."""
    title = f"connect {settings.server}"
    implicit = settings.smtp_security == "ssl"
    progress = _Progress()
    try:
        context = ssl_context(settings) if settings.smtp_security != "none" else None
    except SendError as exc:  # SMTP_CA_FILE is not a certificate
        add(Step("tls", "TLS", False, problem=str(exc), exit_code=EXIT_BAD_INPUT))
        return None
    try:
        conn = _SteppedSMTP(settings, progress, context if implicit else None)
    except Exception as exc:
        stage = "connect" if not progress.tcp else ("tls" if implicit else "greeting")
        failure = explain(exc, settings, stage)
        if stage == "tls":
            add(Step("connect", title, True))
        add(_failed("tls" if stage == "tls" else "connect", "TLS" if stage == "tls" else title, failure))
        return None
    add(Step("connect", title, True))
    try:
        conn.ehlo()
        if settings.smtp_security == "starttls":
            _starttls(conn, settings, context)
    except _StepFailed as exc:
        _close(conn)
        add(_failed("tls", "TLS", exc.failure))
        return None
    except Exception as exc:
        _close(conn)
        add(_failed("tls", "TLS", explain(exc, settings, "tls")))
        return None
    if settings.smtp_security == "none":
        add(Step("tls", "TLS", True, "SMTP_SECURITY=none: allowed only for a server on this machine", mark="off"))
    else:
        add(Step("tls", "TLS", True, _tls_detail(conn.sock)))
    return conn


class _Progress:
    tcp = False


class _SteppedSMTP(smtplib.SMTP):
    """smtplib.SMTP that notes when the TCP connection is up, and wraps it in TLS at once for implicit TLS,
    so that a failure can be put on the right step (connect, greeting, TLS)."""

    def __init__(self, settings: Settings, progress: _Progress, implicit_tls: ssl.SSLContext | None):
        self._progress = progress
        self._implicit_tls = implicit_tls
        super().__init__(
            settings.smtp_host, settings.smtp_port, local_hostname=local_hostname(), timeout=settings.smtp_timeout
        )

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        self._progress.tcp = True
        if self._implicit_tls is None:
            return sock
        try:
            return self._implicit_tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def _starttls(conn: smtplib.SMTP, settings: Settings, context: ssl.SSLContext) -> None:
    if not conn.has_extn("starttls"):
        raise _StepFailed(
            Failure(
                f"{settings.server} does not offer STARTTLS, so nothing can be sent there encrypted",
                "check SMTP_HOST and SMTP_PORT (starttls is usually port 587); if the port is 465, set "
                "SMTP_SECURITY=ssl. jobmail never sends in plain text to another machine" + plain_local_hint(settings),
            )
        )
    conn.starttls(context=context)
    conn.ehlo()


def _needs_login(conn: smtplib.SMTP, settings: Settings) -> bool:
    return settings.smtp_security != "none" or conn.has_extn("auth")


def _password(settings: Settings, password_command: str, add: Callable[[Step], bool]) -> str | None:
    host, username, backend = settings.smtp_host, settings.smtp_username, settings.keyring_backend
    try:
        name = backend_in_use(backend)
        if not credentials.has_password(host, username, backend):
            add(
                Step(
                    "keyring",
                    "keyring",
                    False,
                    problem=f"no password is stored for {username} at {host} in {name}",
                    hint=f"store it with `{password_command}` (or run `python send.py setup` again)",
                    exit_code=EXIT_BAD_INPUT,
                )
            )
            return None
        password = credentials.get_password(host, username, backend)
    except CredentialError as exc:
        add(Step("keyring", "keyring", False, problem=str(exc), exit_code=EXIT_BAD_INPUT))
        return None
    add(Step("keyring", "keyring", True, f"password found in {name}"))
    return password


def _login(conn, settings: Settings, password: str, password_command: str, add: Callable[[Step], bool]) -> None:
    title = f"login as {settings.smtp_username}"
    try:
        authenticate(conn, settings.smtp_username, password)
    except Exception as exc:
        failure = explain(exc, settings, "login", password_command)
        user = settings.smtp_username
        failure = Failure(  # a server may quote the credentials back: never show them
            redact(failure.problem, user, password),
            redact(failure.hint, user, password),
            redact(failure.reply, user, password),
            failure.exit_code,
        )
        add(_failed("login", title, failure))
        return
    add(Step("login", title, True))


def _failed(name: str, title: str, failure: Failure) -> Step:
    return Step(
        name,
        title,
        False,
        problem=failure.problem,
        reply=failure.reply,
        hint=failure.hint,
        exit_code=failure.exit_code,
    )


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _tls_detail(sock) -> str:
    if not isinstance(sock, ssl.SSLSocket):
        return "not encrypted"
    cert = sock.getpeercert() or {}
    subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn) or "(no subject)"
    issuer = dict(pair for rdn in cert.get("issuer", ()) for pair in rdn)
    text = f"{sock.version()}, certificate: {subject}"
    by = issuer.get("organizationName") or issuer.get("commonName")
    if by:
        text += f", issued by {by}"
    if cert.get("notAfter"):
        until = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
        text += f", valid until {until:%Y-%m-%d}"
    return text


# --- hints ---------------------------------------------------------------------------------------


def explain(
    exc: BaseException, settings: Settings, stage: str, password_command: str = "python send.py password set"
) -> Failure:
    """What went wrong at `stage` (connect, greeting, tls, login) and what to do about it.

    "greeting" is the wait for the server's first line after the TCP connection is up (starttls/none).
    Causes without a specific hint fall back to jobmail.smtp.client.classify's wording.
    """
    server, port = settings.server, settings.smtp_port
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _login_refused(exc, settings, password_command)
    if isinstance(exc, smtplib.SMTPNotSupportedError) and stage == "login":
        return Failure(
            f"{server} does not offer login (AUTH)",
            "check SMTP_HOST and SMTP_PORT: use your provider's submission port (587 with starttls, "
            "465 with ssl), not 25",
        )
    if isinstance(exc, smtplib.SMTPConnectError):
        reply = f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
        return Failure(
            f"{server} turned the connection away: {reply}",
            "read the server's reply: this network (or its address) may be refused, or SMTP_PORT is wrong",
            reply,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
        hint = "a temporary refusal: try again in a few minutes" if 400 <= exc.smtp_code < 500 else ""
        if exc.smtp_code == 530 and stage == "login":
            hint = "the server wants encryption first: set SMTP_SECURITY=starttls (port 587) or ssl (port 465)"
        return Failure(f"{server} answered {reply} during {stage}", hint, reply)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _untrusted(exc, settings)
    if isinstance(exc, ssl.SSLError):
        return _tls_failed(exc, settings)
    if isinstance(exc, socket.gaierror):
        return Failure(
            f"the host {settings.smtp_host} was not found ({exc.strerror or exc})",
            "check SMTP_HOST for a typo (it looks like smtp.example.com) and that this computer is online",
        )
    if stage == "connect":
        return _unreachable(exc, settings)
    if stage == "greeting" and isinstance(exc, OSError):  # smtplib's SMTPServerDisconnected is an OSError
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            problem = f"connected to {server}, but no SMTP greeting came within {settings.smtp_timeout:g}s"
        else:
            problem = f"connected to {server}, but it closed the connection without an SMTP greeting"
        alternative = ", or SMTP_PORT=587 to keep starttls" if port == 465 else ""
        return Failure(
            problem,
            "this port probably expects TLS from the first byte (implicit TLS): set SMTP_SECURITY=ssl "
            f"(usually port {DEFAULT_PORTS['ssl']}){alternative}",
        )
    if isinstance(exc, TimeoutError):
        return Failure(
            f"{server} stopped answering within {settings.smtp_timeout:g}s during {stage}",
            "check SMTP_SECURITY against the port (ssl with 465, starttls with 587), or raise SMTP_TIMEOUT "
            "on a slow network",
        )
    return Failure(str(classify(exc, settings, stage)))


def _login_refused(exc: smtplib.SMTPAuthenticationError, settings: Settings, password_command: str) -> Failure:
    reply = f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
    problem = f"{settings.server} refused the login for {settings.smtp_username}: {reply}"
    if 400 <= exc.smtp_code < 500:
        return Failure(problem, "a temporary failure at the server: try again in a few minutes", reply)
    provider = providers.for_host(settings.smtp_host)
    if provider is None:  # Proton Mail Bridge: a loopback host, known only with the address
        guess = providers.for_address(settings.smtp_username)
        provider = guess if guess is not None and guess.host == settings.smtp_host.lower() else None
    store = f"store the right one with `{password_command}`"
    if provider is not None:
        return Failure(problem, f"{provider.note} Then {store}", reply)
    return Failure(
        problem,
        "wrong username or password, or an app password is needed: check the username (usually your full "
        "address); many providers (Gmail, Yahoo, iCloud, Fastmail) refuse your normal password over SMTP "
        f"and want an app password made in your account's security settings; {store}",
        reply,
    )


def _untrusted(exc: ssl.SSLCertVerificationError, settings: Settings) -> Failure:
    why = exc.verify_message or exc.reason or "verification failed"
    problem = f"the certificate of {settings.server} is not trusted ({why})"
    lowered = why.lower()
    if "hostname mismatch" in lowered or "ip address mismatch" in lowered:
        hint = (
            f"the certificate is not for {settings.smtp_host}: set SMTP_HOST to the host name your provider "
            "gives (the name on its certificate), not an alias or IP address"
        )
    elif "expired" in lowered or "not yet valid" in lowered:
        hint = "the certificate is out of date, or this computer's clock is wrong: check the date and time"
    elif settings.smtp_ca_file is not None:
        hint = (
            f"SMTP_CA_FILE={settings.smtp_ca_file} does not hold the certificate that signed this server's: "
            "export the right one (PEM) and point SMTP_CA_FILE at it"
        )
    else:
        hint = (
            "for a private server or a local bridge (Proton Mail Bridge), export its certificate (PEM) and "
            "set SMTP_CA_FILE to that file; for a public provider, check SMTP_HOST, and that nothing on this "
            "network intercepts the connection. Certificate checks are never turned off"
        )
    return Failure(problem, hint)


def _tls_failed(exc: ssl.SSLError, settings: Settings) -> Failure:
    text = str(exc).upper().replace(" ", "_")
    if settings.smtp_security == "ssl" and any(mark in text for mark in _PLAIN_REPLY_MARKS):
        alternative = ", or SMTP_PORT=465 to keep ssl" if settings.smtp_port == 587 else ""
        return Failure(
            f"TLS with {settings.server} failed: the server answered in plain text (wrong version number)",
            "this port starts in plain text and upgrades with STARTTLS: set SMTP_SECURITY=starttls "
            f"(usually port {DEFAULT_PORTS['starttls']}){alternative}",
        )
    return Failure(
        f"TLS with {settings.server} failed ({exc.reason or exc})",
        "check that SMTP_SECURITY matches the port (ssl with 465, starttls with 587); otherwise the server's "
        "TLS is too old or not compatible",
    )


def _unreachable(exc: BaseException, settings: Settings) -> Failure:
    server, port = settings.server, settings.smtp_port
    local = is_loopback(settings.smtp_host)
    if isinstance(exc, ConnectionRefusedError):
        if local:
            ports = "the port your local server listens on" if settings.smtp_security == "none" else "its port"
            hint = (
                "is the server on this machine (a test server, Proton Mail Bridge) running? "
                f"Then check SMTP_PORT: {ports}"
            )
        else:
            hint = (
                "check SMTP_PORT (587 for starttls, 465 for ssl) and SMTP_HOST; a firewall can also refuse connections"
            )
        return Failure(f"{server} refused the connection (nothing is listening on port {port})", hint)
    if isinstance(exc, TimeoutError):
        return Failure(
            f"no answer from {server} within {settings.smtp_timeout:g}s",
            f"a firewall or this network may block port {port} (many networks block outgoing mail ports; try "
            "the provider's other port, 587 or 465), or SMTP_HOST is wrong",
        )
    return Failure(
        f"cannot connect to {server}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}",
        "check this computer's network connection, SMTP_HOST and SMTP_PORT",
    )
