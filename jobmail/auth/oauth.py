"""OAuth 2.0 sign-in for SMTP, where the provider no longer takes a password (Outlook.com, Microsoft 365, Gmail).

Three ways to an access token:
- the device authorization grant (RFC 8628): the user opens a web page anywhere and types a short code;
- the authorization code flow with PKCE (RFC 7636) and a loopback redirect on 127.0.0.1 (RFC 8252): the
  browser on this machine signs in and hands the code back to a one-request web server here;
- a refresh token (RFC 6749 section 6), stored in the keyring after either flow, and rotated when the
  server issues a new one; or an outside helper's command (OAUTH_TOKEN_COMMAND) that prints a token.

oauthlib's clients write the requests (PKCE, the form bodies); urllib sends them over HTTPS with the
certificate and host name checked exactly as for SMTP (the system store plus SMTP_CA_FILE).

Secrets: refresh tokens and client secrets live only in the keyring; access tokens only in memory. No error,
log line or output holds one: a server's error text is shown through `_scrubbed`, which removes every
secret this module has seen and keeps one short line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shlex
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

from oauthlib.oauth2 import DeviceClient, WebApplicationClient

from jobmail.auth.credentials import get_secret, set_secret
from jobmail.errors import Command, CredentialError, SendError, SignInError
from jobmail.settings import Settings
from jobmail.tls import verified_context

logger = logging.getLogger(__name__)

REFRESH = "oauth2-refresh"  # the keyring entry kinds (auth.credentials.get_secret)
CLIENT_SECRET = "oauth2-client-secret"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_RESPONSE = 256 * 1024  # a token response is a few KB; a server that sends more is not read further
EARLY = 120  # seconds: an access token this close to its end is refreshed first
FRESH = 30  # seconds: a token refused this soon after it was fetched is not renewed (it would fail again)
DEFAULT_INTERVAL = 5  # RFC 8628 section 3.2: the poll interval when the server names none
BROWSER_WAIT = 300


@dataclass
class Tokens:
    """One token response: the access token (memory only), when it ends (time.time()), the refresh token
    (None: the server issued none, keep the old one) and the scopes granted."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(repr=False, default=None)
    scope: str = ""


@dataclass
class DeviceCode:
    """The device authorization response (RFC 8628 section 3.2): what the user must open and type."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float
    interval: float


# --- the secrets this module has handled: removed from every text it shows ---------------------------------

_seen: set[str] = set()


def _remember(*values: str | None) -> None:
    _seen.update(value for value in values if value and len(value) >= 6)


def _scrubbed(text: object, limit: int = 200) -> str:
    """A server's text as one short line with every secret we know removed."""
    line = " ".join(str(text).split())
    for secret in sorted(_seen, key=len, reverse=True):
        line = line.replace(secret, "[hidden]")
    return line[:limit]


# --- HTTPS ---------------------------------------------------------------------------------------------


def tls_context(settings: Settings) -> ssl.SSLContext:
    """SMTP's context (jobmail.tls): the system's trusted CAs plus SMTP_CA_FILE, always verified."""
    try:
        return verified_context(settings.smtp_ca_file)
    except (ssl.SSLError, OSError):
        raise SignInError(f"SMTP_CA_FILE={settings.smtp_ca_file} is not a PEM certificate file: fix it") from None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def post(settings: Settings, url: str, body: str) -> dict:
    """POST a form to an OAuth endpoint; the JSON answer, whether the status was 200 or an OAuth error (400).

    Raises SendError (transient) when the endpoint cannot be reached, SendError (permanent) for a
    certificate that does not verify, SignInError for an answer that is not OAuth JSON.
    """
    request = urllib.request.Request(
        url,
        data=body.encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    host = _host(url)
    status = 200
    try:
        with urllib.request.urlopen(request, timeout=settings.smtp_timeout, context=tls_context(settings)) as answer:
            payload = answer.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            payload = exc.read(MAX_RESPONSE)
        except OSError:
            payload = b""
        finally:
            exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise SendError(
                f"the certificate of {host} does not verify ({reason.verify_message}): check the OAUTH_*_URL "
                "settings; for a server with its own certificate, set SMTP_CA_FILE"
            ) from None
        raise SendError(
            f"cannot reach the sign-in server {host} ({_scrubbed(reason, 120) or type(exc).__name__}): check your "
            "internet connection and the OAUTH_*_URL settings, then try again",
            transient=True,
        ) from None
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        if status >= 500 or status == 429:
            raise SendError(
                f"the sign-in server {host} is unavailable (HTTP {status}): try again later", transient=True
            )
        raise SignInError(
            f"{host} did not answer as an OAuth server does (HTTP {status}, not JSON): check the OAUTH_*_URL settings"
        )
    return data


def _failure(settings: Settings, data: dict, during: str) -> SignInError | SendError:
    """The error for an OAuth error response (RFC 6749 section 5.2, RFC 8628 section 3.5), saying what to do."""
    code = _scrubbed(data.get("error", ""), 60)
    detail = _scrubbed(data.get("error_description", ""), 160)
    login = Command("login")
    account = settings.smtp_username
    if code == "invalid_grant":
        if during == "refresh":
            return SignInError(
                f"the sign-in for {account} has expired or was revoked (invalid_grant): run ",
                login,
                " to sign in again",
            )
        return SignInError("the sign-in code was refused (invalid_grant): run ", login, " again")
    if code in ("invalid_client", "unauthorized_client"):
        return SignInError(
            f"the server does not accept OAUTH_CLIENT_ID={settings.oauth_client_id} ({code}"
            + (f": {detail}" if detail else "")
            + "): check the client ID, and that the app registration allows public client flows "
            "(Microsoft: Authentication > Allow public client flows); see the README's \"Sign in with Microsoft "
            'or Google"'
        )
    if code in ("invalid_scope", "consent_required", "interaction_required") or "AADSTS65001" in detail:
        return SignInError(
            f"consent for sending mail (scope {settings.oauth_scope}) is missing ({code}): add the scope to the app "
            "registration (Microsoft: API permissions > SMTP.Send), or ask your admin to grant it, then run ",
            login,
        )
    if code == "access_denied":
        return SignInError("the sign-in was declined (access_denied): nothing was stored; run ", login, " to try again")
    if code == "expired_token":
        return SignInError(
            "the code expired before it was approved (expired_token): nothing was stored; run ", login, " again"
        )
    if code in ("temporarily_unavailable", "server_error"):
        return SendError(f"the sign-in server is unavailable ({code}): try again later", transient=True)
    return SignInError(
        f"the sign-in server refused ({code or 'no error code'}" + (f": {detail}" if detail else "") + "): run ",
        login,
        " again; if it persists, check the OAUTH_* settings",
    )


def _tokens(settings: Settings, data: dict, clock: Callable[[], float]) -> Tokens:
    access = data.get("access_token")
    if not isinstance(access, str) or not access or any(ch.isspace() for ch in access):
        raise SignInError(f"{_host(settings.oauth_token_url)} answered without an access token: run ", Command("login"))
    refresh = data.get("refresh_token")
    refresh = refresh if isinstance(refresh, str) and refresh and not any(ch.isspace() for ch in refresh) else None
    _remember(access, refresh)
    try:
        lifetime = float(data.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    scope = data.get("scope")
    return Tokens(access, clock() + max(lifetime, 0.0), refresh, scope if isinstance(scope, str) else "")


def _with_retries(settings: Settings, call: Callable[[], dict], sleep: Callable[[float], None]) -> dict:
    """An endpoint that cannot be reached is retried like a refused SMTP connection: SEND_ATTEMPTS in all."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except SendError as exc:
            if not exc.transient or attempt >= settings.send_attempts:
                raise
            delay = settings.send_retry_delay * (2 ** (attempt - 1))
            logger.info("sign-in server attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
            sleep(delay)


def _client_options(client_secret: str | None) -> dict[str, str]:
    return {"client_secret": client_secret} if client_secret else {}


# --- refresh -------------------------------------------------------------------------------------------


def refresh(
    settings: Settings,
    refresh_token: str,
    client_secret: str | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Tokens:
    """A new access token (and perhaps a new refresh token) from a refresh token."""
    _remember(refresh_token, client_secret)
    client = WebApplicationClient(settings.oauth_client_id)
    body = client.prepare_refresh_body(
        refresh_token=refresh_token,
        scope=settings.oauth_scope.split(),
        client_id=settings.oauth_client_id,
        **_client_options(client_secret),
    )
    data = _with_retries(settings, lambda: post(settings, settings.oauth_token_url, body), sleep)
    if "error" in data:
        raise _failure(settings, data, "refresh")
    return _tokens(settings, data, clock)


# --- the device authorization grant (RFC 8628) -----------------------------------------------------------


def start_device(settings: Settings, client_secret: str | None = None) -> DeviceCode:
    """Ask for a device code and the code the user types."""
    _remember(client_secret)
    form = {"client_id": settings.oauth_client_id, "scope": settings.oauth_scope, **_client_options(client_secret)}
    data = post(settings, settings.oauth_device_url, urllib.parse.urlencode(form))
    if "error" in data:
        raise _failure(settings, data, "device")
    try:
        code = DeviceCode(
            device_code=str(data["device_code"]),
            user_code=_scrubbed(data["user_code"], 40),
            verification_uri=_scrubbed(data.get("verification_uri") or data["verification_url"], 300),
            verification_uri_complete=_scrubbed(data.get("verification_uri_complete", ""), 400),
            expires_in=float(data.get("expires_in", 900)),
            interval=float(data.get("interval", DEFAULT_INTERVAL)),
        )
    except (KeyError, TypeError, ValueError):
        raise SignInError(
            f"{_host(settings.oauth_device_url)} answered without a device code: check OAUTH_DEVICE_URL"
        ) from None
    _remember(code.device_code)
    return code


def finish_device(
    settings: Settings,
    code: DeviceCode,
    client_secret: str | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> Tokens:
    """Poll the token endpoint at the server's interval until the user approves, declines or the code expires."""
    client = DeviceClient(settings.oauth_client_id)
    body = client.prepare_request_body(
        code.device_code, include_client_id=True, client_id=settings.oauth_client_id, **_client_options(client_secret)
    )
    interval = max(code.interval, 0.0)
    deadline = clock() + code.expires_in
    while True:
        sleep(interval)
        data = _with_retries(settings, lambda: post(settings, settings.oauth_token_url, body), sleep)
        error = data.get("error")
        if error == "authorization_pending":
            pass
        elif error == "slow_down":
            interval += 5  # RFC 8628 section 3.5
        elif error is not None:
            raise _failure(settings, data, "device")
        else:
            return _tokens(settings, data, wall)
        if clock() >= deadline:
            raise _failure(settings, {"error": "expired_token"}, "device")


# --- the authorization code flow with PKCE and a loopback redirect (RFC 7636, RFC 8252) --------------------


class _Answer:
    """What the browser brought back to the loopback redirect."""

    def __init__(self) -> None:
        self.query: dict[str, str] | None = None


def _handler(answer: _Answer, path: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        timeout = 10  # a connection that sends nothing cannot hold the sign-in
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path != path or not ({"code", "error"} & query.keys()):
                self.send_error(404)
                return
            answer.query = query
            text = (
                "Signed in. You can close this tab and go back to the terminal."
                if "code" in query
                else "The sign-in did not complete. Go back to the terminal for what to do."
            )
            body = f"<!doctype html><title>jobmail</title><p>{text}</p>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            pass  # the query holds the code: never logged

    return Redirect


def browser_url(settings: Settings, redirect_uri: str, state: str, verifier: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    client = WebApplicationClient(settings.oauth_client_id)
    return client.prepare_request_uri(
        settings.oauth_authorize_url,
        redirect_uri=redirect_uri,
        scope=settings.oauth_scope.split(),
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
    )


def browser_signin(
    settings: Settings,
    show: Callable[[str], None],
    client_secret: str | None = None,
    *,
    wait: float = BROWSER_WAIT,
    clock: Callable[[], float] = time.monotonic,
) -> Tokens:
    """Sign in through the browser: `show(url)` opens (or prints) the sign-in page; the page's answer comes
    back to a server on 127.0.0.1 at a random port, which takes one redirect and closes."""
    _remember(client_secret)
    answer = _Answer()
    path = "/"
    server = HTTPServer(("127.0.0.1", 0), _handler(answer, path))
    server.timeout = 0.5
    try:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{path}"
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(64)[:96]
        _remember(verifier)
        show(browser_url(settings, redirect_uri, state, verifier))
        deadline = clock() + wait
        while answer.query is None:
            if clock() >= deadline:
                raise SignInError(
                    f"no answer from the browser within {wait:.0f} s: nothing was stored; run ",
                    Command("login"),
                    " again (or ",
                    Command("login", "--device"),
                    " where the provider offers it)",
                )
            server.handle_request()
    finally:
        server.server_close()
    query = answer.query
    if query.get("state") != state:
        raise SignInError(
            "the browser came back with a different state than was sent (not this sign-in): nothing was stored; run ",
            Command("login"),
            " again",
        )
    if "code" not in query:
        raise _failure(settings, query, "browser")
    _remember(query["code"])
    body = WebApplicationClient(settings.oauth_client_id).prepare_request_body(
        code=query["code"],
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        client_id=settings.oauth_client_id,
        **_client_options(client_secret),
    )
    data = post(settings, settings.oauth_token_url, body)
    if "error" in data:
        raise _failure(settings, data, "browser")
    return _tokens(settings, data, time.time)


# --- an outside helper's command (oama, pizauth, mutt_oauth2.py ...) ------------------------------------------


def run_token_command(settings: Settings) -> str:
    """The first line of OAUTH_TOKEN_COMMAND's output, run without a shell; its output is never shown."""
    try:
        argv = shlex.split(settings.oauth_token_command, posix=os.name != "nt")
    except ValueError as exc:
        raise SignInError(f"OAUTH_TOKEN_COMMAND cannot be read as a command line ({exc}): fix its quotes") from None
    if not argv:
        raise SignInError("OAUTH_TOKEN_COMMAND is empty: set it to the command that prints an access token")
    try:
        done = subprocess.run(
            argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=max(settings.smtp_timeout, 30), check=False
        )
    except FileNotFoundError:
        raise SignInError(f"OAUTH_TOKEN_COMMAND: {argv[0]} not found: give its full path") from None
    except subprocess.TimeoutExpired:
        raise SignInError(f"OAUTH_TOKEN_COMMAND ({argv[0]}) did not finish within its time: check the helper") from None
    except OSError as exc:
        raise SignInError(f"OAUTH_TOKEN_COMMAND ({argv[0]}) cannot run: {exc.strerror or exc}") from None
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    token = lines[0].strip() if lines else ""
    _remember(token)
    if token and token in done.stderr.decode("utf-8", "replace"):
        raise SignInError(
            f"OAUTH_TOKEN_COMMAND ({argv[0]}) also prints the token on its error output, where it could be shown "
            "or logged: refused; make it print the token only on standard output"
        )
    if done.returncode != 0 or not token or any(ch.isspace() for ch in token):
        what = f"exit status {done.returncode}" if done.returncode != 0 else "no token on its first line"
        raise SignInError(f"OAUTH_TOKEN_COMMAND ({argv[0]}) gave no access token ({what}): run it yourself to see why")
    return token


# --- the access token of a send -------------------------------------------------------------------------


class TokenSource:
    """The access token for SMTP login, as a callable like the password's: fetched on first use, kept in
    memory, refreshed shortly before it ends (a long `outbox run` sends Monday's message with Monday's token),
    the rotated refresh token stored back in the keyring."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.current: Tokens | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self.current is None or self.current.expires_at - EARLY <= self.clock():
                self.current = self._fetch()
            return self.current.access_token

    @property
    def fetched_at(self) -> float:
        return self._fetched_at

    def renew(self) -> str | None:
        """A new access token after the server refused the current one, unless that one was itself just
        fetched (then a new one would fare no better): None."""
        with self._lock:
            if self.current is None or self.clock() - self.fetched_at < FRESH:
                return None
            self.current = self._fetch()
            return self.current.access_token

    def _fetch(self) -> Tokens:
        settings = self.settings
        self._fetched_at = self.clock()
        if settings.oauth_token_command:
            return Tokens(run_token_command(settings), self.clock() + 300)
        stored = get_secret(settings.smtp_host, settings.smtp_username, REFRESH, settings.keyring_backend)
        if not stored:
            raise CredentialError(
                f"{settings.smtp_username} is not signed in at {settings.smtp_host} (SMTP_AUTH=oauth2): run ",
                Command("login"),
            )
        secret = get_secret(settings.smtp_host, settings.smtp_username, CLIENT_SECRET, settings.keyring_backend)
        tokens = refresh(settings, stored, secret or None, sleep=self.sleep, clock=self.clock)
        if tokens.refresh_token and tokens.refresh_token != stored:
            store(settings, tokens)
        logger.debug(
            "access token refreshed for %s (expires in %.0f s)", settings.smtp_username, self.expires_in(tokens)
        )
        return tokens

    def expires_in(self, tokens: Tokens | None = None) -> float:
        tokens = tokens or self.current
        return 0.0 if tokens is None else tokens.expires_at - self.clock()


def store(settings: Settings, tokens: Tokens) -> None:
    """Keep the refresh token in the keyring (the access token stays in memory)."""
    if not tokens.refresh_token:
        raise SignInError(
            "the server issued no refresh token, so the sign-in would not last: add offline_access to OAUTH_SCOPE "
            "(Microsoft) and run ",
            Command("login"),
            " again",
        )
    set_secret(settings.smtp_host, settings.smtp_username, REFRESH, tokens.refresh_token, settings.keyring_backend)
