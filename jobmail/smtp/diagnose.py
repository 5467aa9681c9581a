"""The account check: connect, TLS (certificate verified), keyring, login, quit. Nothing is ever sent.

Each step becomes a `Step` with its result; a failed step carries what happened (with the server's reply
when there was one) and a hint, both from jobmail.smtp.explain's table (the same entry the send's error is
built from). The connection is jobmail.smtp.client's, stage by stage, so the TLS rules are the send's own.
This module does not print: the CLI does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from jobmail.auth import credentials
from jobmail.auth.credentials import PLAINTEXT_BACKEND, keyring_guidance
from jobmail.errors import EXIT_BAD_INPUT, EXIT_OK, Command, CredentialError, SendError
from jobmail.settings import Settings
from jobmail.smtp import client
from jobmail.smtp import explain as why
from jobmail.smtp.explain import Failed, Problem, explain

__all__ = [
    "NO_BACKENDS",
    "PLAINTEXT_BACKEND",
    "CheckResult",
    "Failure",
    "Step",
    "backend_in_use",
    "backend_step",
    "check",
    "explain",
    "is_usable_backend",
    "keyring_guidance",
]

# keyring's stand-ins for "no backend": they store nothing.
NO_BACKENDS = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")
PASSWORD_COMMAND = str(why.PASSWORD_SET).strip("`")  # the text check_cmd passes today
Failure = Problem  # the older name of a failed step's cause


@dataclass(frozen=True)
class Step:
    name: str  # connect | tls | keyring | login
    title: str  # "connect smtp.example.com:587", "TLS", "keyring", "login as alex@example.com"
    ok: bool
    detail: str = ""  # on success: what was found (TLS version and certificate, the keyring backend)
    problem: str = ""  # on failure: what happened, with the server's reply when there was one
    reply: str = ""  # the server's reply to the failed step ("535 5.7.8 ..."), when it gave one
    hint: str = ""  # on failure: what to do (its commands rendered in their plain form)
    exit_code: int = EXIT_OK  # 1: the account does not work; 2: the configuration is unusable
    guidance: tuple[str, ...] = ()  # on failure: longer advice, one line each (the keyring's choices)
    mark: str = "ok"  # how a passed step is shown: "ok", or "off"/"skipped" for a step that did not apply
    commands: tuple[Command, ...] = ()  # on failure: the next steps that are our own commands, as data


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


def _failed(name: str, title: str, problem: Problem) -> Step:
    return Step(
        name,
        title,
        False,
        problem=problem.problem,
        reply=problem.server_reply,
        hint=problem.hint,
        exit_code=problem.exit_code,
        commands=problem.commands,
    )


def _error_step(name: str, title: str, exc: SendError | CredentialError, exit_code: int) -> Step:
    """A failed step from an error: its Problem when it has one, else its text."""
    if isinstance(exc, Failed):
        return _failed(name, title, exc.problem)
    return Step(name, title, False, problem=str(exc), exit_code=exit_code, commands=exc.commands)


# --- the keyring ---------------------------------------------------------------------------------


def backend_in_use(backend: str = "") -> str:
    """The keyring backend keyring would use (KEYRING_BACKEND when set). Raises CredentialError."""
    return credentials.backend_name(backend)


def is_usable_backend(name: str) -> bool:
    return name not in NO_BACKENDS


def backend_step(backend: str = "", environ: Mapping[str, str] | None = None) -> Step | None:
    """A failed keyring step when there is no usable backend (checked before anything else; asking keyring
    for its backend may probe the system, e.g. D-Bus, but reads no password); None when there is one."""
    try:
        name = backend_in_use(backend)
    except CredentialError as exc:
        return _error_step("keyring", "keyring", exc, EXIT_BAD_INPUT)
    if is_usable_backend(name):
        return None
    return Step(
        "keyring",
        "keyring",
        False,
        problem=f"no usable keyring backend ({name}): the password can be neither stored nor read",
        exit_code=EXIT_BAD_INPUT,
        guidance=tuple(keyring_guidance(sys.platform, environ)),
        commands=credentials.keyring_commands(),
    )


# --- the check -----------------------------------------------------------------------------------


def _ignore(step: Step) -> None:
    pass


def _unwatched(title: str) -> None:
    pass


class _Check:
    """One run of the check: its steps so far, each told to `on_step` as soon as it is known, and the title
    of each step that waits on the network told to `on_start` before it waits."""

    def __init__(
        self,
        settings: Settings,
        on_step: Callable[[Step], None],
        environ: Mapping[str, str] | None,
        on_start: Callable[[str], None] = _unwatched,
    ):
        self.settings = settings
        self.on_step = on_step
        self.on_start = on_start
        self.environ = environ
        self.result = CheckResult()
        self.connected = False  # the connect step has passed

    def add(self, step: Step) -> bool:
        self.result.steps.append(step)
        self.on_step(step)
        return step.ok

    def backend_ok(self) -> bool:
        failed = backend_step(self.settings.keyring_backend, self.environ)
        return failed is None or self.add(failed)

    def reached(self, stage: str) -> None:
        """client.connect's progress: the connect step passes once the server is there (for implicit TLS:
        the TCP connection; otherwise its greeting)."""
        implicit = self.settings.smtp_security == "ssl"
        if not self.connected and stage == ("tcp" if implicit else "greeting"):
            self.connected = True
            self.add(Step("connect", f"connect {self.settings.server}", True))
            self.on_start("TLS")  # the handshake (ssl), or EHLO and STARTTLS; for `none`, EHLO

    def connect(self) -> client.Session | None:
        """The connect and TLS steps; the open, greeted, encrypted session, or None after a failed step.
        A stored password is read first, quietly (its own step comes later), so that a server that quotes
        it, in its greeting even, has it hidden as a send has it."""
        settings = self.settings
        if settings.smtp_security != "none":
            try:
                client.ssl_context(settings)
            except SendError as exc:  # SMTP_CA_FILE is not a certificate
                self.add(_error_step("tls", "TLS", exc, EXIT_BAD_INPUT))
                return None
        self.on_start(f"connect {settings.server}")
        try:
            session = client.connect(settings, reached=self.reached, secrets=self.known_password())
        except SendError as exc:
            if self.connected:
                self.add(_error_step("tls", "TLS", exc, exc.exit_code))
            else:
                self.add(_error_step("connect", f"connect {settings.server}", exc, exc.exit_code))
            return None
        if settings.smtp_security == "none":
            if session.conn.has_extn("starttls"):
                session.close()
                self.add(_failed("tls", "TLS", why.starttls_unused(settings)))
                return None
            self.add(
                Step("tls", "TLS", True, "SMTP_SECURITY=none: allowed only for a server on this machine", mark="off")
            )
        else:
            self.add(Step("tls", "TLS", True, session.certificate or "not encrypted"))
        return session

    def password(self) -> str | None:
        return self.token() if self.settings.uses_oauth else self.stored_password()

    def token(self) -> str | None:
        """SMTP_AUTH=oauth2: a fresh access token (from the keyring's refresh token, or the token command)."""
        from jobmail.auth.oauth import TokenSource  # oauthlib: only on the OAuth path

        settings = self.settings
        source = TokenSource(settings)
        self.on_start("sign-in")
        try:
            token = source()
        except SendError as exc:
            self.add(_error_step("token", "sign-in", exc, exc.exit_code))
            return None
        except CredentialError as exc:
            self.add(_error_step("token", "sign-in", exc, EXIT_BAD_INPUT))
            return None
        minutes = max(source.expires_in() / 60, 0)
        if settings.oauth_token_command:
            detail = "access token from OAUTH_TOKEN_COMMAND"
        else:
            granted = source.current.scope if source.current is not None else ""
            detail = f"access token refreshed, expires in {minutes:.0f} min" + (
                f", scopes: {granted}" if granted else ""
            )
        self.add(Step("token", "sign-in", True, detail))
        return token

    def known_password(self) -> list[str]:
        """The stored password, if the keyring gives it without trouble; else nothing (the keyring step
        says why, in its turn)."""
        try:
            return credentials.login_password(self.settings)
        except Exception:  # told by the keyring step
            return []

    def stored_password(self) -> str | None:
        settings = self.settings
        host, username, backend = settings.smtp_host, settings.smtp_username, settings.keyring_backend
        try:
            name = backend_in_use(backend)
            if not credentials.has_password(host, username, backend):
                problem = Problem(
                    (f"no password is stored for {username} at {host} in {name}",),
                    ("store it with ", why.PASSWORD_SET, " (or run ", Command("setup"), " again)"),
                    exit_code=EXIT_BAD_INPUT,
                )
                self.add(_failed("keyring", "keyring", problem))
                return None
            password = credentials.get_password(host, username, backend)
        except CredentialError as exc:
            self.add(_error_step("keyring", "keyring", exc, EXIT_BAD_INPUT))
            return None
        self.add(Step("keyring", "keyring", True, f"password found in {name}"))
        return password

    def login(self, session: client.Session, password: str) -> None:
        title = f"login as {self.settings.smtp_username}"
        self.on_start(title)
        try:
            client.login(session, self.settings, _Given(password))  # errors come redacted
        except SendError as exc:
            self.add(_error_step("login", title, exc, exc.exit_code))
            return
        self.add(Step("login", title, True))


class _Given:
    """A password already read, as the callable client.login asks for."""

    def __init__(self, password: str):
        self._password = password

    def __call__(self) -> str:
        return self._password


def check(
    settings: Settings,
    *,
    password_command: str = PASSWORD_COMMAND,
    on_step: Callable[[Step], None] = _ignore,
    environ: Mapping[str, str] | None = None,
    on_start: Callable[[str], None] = _unwatched,
) -> CheckResult:
    """Connect, secure, look up the password, log in, and quit; one Step per stage, stopping at the first
    failure. `on_step` sees each step as soon as it is known (the CLI prints it); `on_start` sees the title
    of each step that waits on the server (connect, TLS, sign-in, login) before it waits, so that a slow
    step is on the screen while it waits; the Step with that title follows. `environ` only shapes the
    keyring advice (PYTHON_KEYRING_BACKEND).

    `password_command` is accepted for the CLI's call and not used: a hint's next steps are Commands
    (`Step.commands`), shown in the hint in their plain form.
    """
    del password_command
    run = _Check(settings, on_step, environ, on_start)
    # With TLS a login always follows, so a missing keyring is told first, before any connection. With
    # `none` (a server on this machine) a login happens only if the server asks: the keyring is checked then.
    if settings.needs_password and not run.backend_ok():
        return run.result
    session = run.connect()
    if session is None:
        return run.result
    try:
        if settings.smtp_security == "none" and not session.conn.has_extn("auth"):
            run.add(Step("login", "login", True, "the server on this machine asks for no login", mark="skipped"))
            return run.result
        if not settings.needs_password and not run.backend_ok():
            return run.result
        password = run.password()
        if password is not None:
            run.login(session, password)
    finally:
        session.close()
    return run.result
