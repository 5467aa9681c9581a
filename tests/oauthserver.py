"""Stand-ins for Microsoft's OAuth 2.0 server and for an SMTP server that takes only OAuth tokens, on 127.0.0.1.

`OAuthServer` is oauthlib's own server side (the RFC 8628 device code grant, the authorization code grant
with PKCE S256, the refresh token grant with rotation) behind `http.server`, over HTTPS, with every grant,
code and token kept in memory and a few controls for the tests (approve or deny a device code, approve the
next browser sign-in, revoke a user, expire the access tokens, answer `slow_down`).

`oauth_smtp_server()` is jobmail's aiosmtpd loopback server that requires AUTH XOAUTH2 or OAUTHBEARER
(RFC 7628) before MAIL, and checks the bearer token against an `OAuthServer`.

Nothing is mocked: clients speak HTTP and SMTP to real sockets. Nothing is logged to stderr.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import http.server
import json
import logging
import secrets
import socket
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiosmtpd.smtp import MISSING, AuthResult
from oauthlib.common import Request
from oauthlib.oauth2 import (
    AuthorizationCodeGrant,
    AuthorizationEndpoint,
    BearerToken,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    FatalClientError,
    InvalidClientIdError,
    OAuth2Error,
    RefreshTokenGrant,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.errors import UnsupportedCodeChallengeMethodError
from oauthlib.oauth2.rfc8628.request_validator import RequestValidator

from jobmail.loopback import LOOPBACK, LoopbackServer, Recorder

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
# Asked for by many clients beside the resource's scopes; Microsoft accepts them with any resource.
OIDC_SCOPES = frozenset({"openid", "profile", "email"})
REFRESH_TOKEN_BYTES = 1350  # token_urlsafe(1350) is 1,800 characters: Microsoft's are about that long
ACCESS_TOKEN_BYTES = 32
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels, no look-alikes (RFC 8628 section 6.1)
UNSUCCESSFUL = "535 5.7.8 Authentication unsuccessful"


@dataclass
class _DeviceAuth:
    client_id: str
    user_code: str
    scopes: list[str]
    expires_at: float
    status: str = DeviceCodeGrant.DEVICE_CODE_PENDING  # or "authorized", "access_denied", "used"
    username: str | None = None


@dataclass
class _AuthCode:
    client_id: str
    username: str
    scopes: list[str]
    redirect_uri: str | None
    challenge: str | None
    challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class _Access:
    username: str
    client_id: str
    scopes: list[str]
    expires_at: float


@dataclass
class _Refresh:
    username: str
    client_id: str
    scopes: list[str]
    valid: bool = True


@dataclass
class _State:
    devices: dict[str, _DeviceAuth] = field(default_factory=dict)
    codes: dict[str, _AuthCode] = field(default_factory=dict)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    refresh_by_user: dict[str, list[str]] = field(default_factory=dict)


def _is_loopback_redirect(uri: str) -> bool:
    """RFC 8252 section 7.3: http on a loopback address, any port (the client picks one when it runs)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1") and not parts.fragment


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(client_id), unquote(secret)


class _Validator(RequestValidator):
    """oauthlib's hooks, answered from the OAuthServer's in-memory state (callers hold its lock)."""

    def __init__(self, server: OAuthServer):
        self.server = server

    @property
    def state(self) -> _State:
        return self.server._state

    def _client(self, client_id: str | None) -> SimpleNamespace:
        return SimpleNamespace(client_id=client_id)

    # --- clients
    def client_authentication_required(self, request, *args, **kwargs):
        if self.server.client_secret is None:
            return False
        if urlsplit(request.uri).path == "/devicecode":
            # The device authorization endpoint takes a secret if one is given, and checks it then.
            return bool(request.client_secret) or _basic_credentials(request) is not None
        return True

    def authenticate_client(self, request, *args, **kwargs):
        basic = _basic_credentials(request)
        client_id, secret = basic if basic is not None else (request.client_id, request.client_secret)
        expected = self.server.client_secret
        if client_id != self.server.client_id or expected is None or not secret:
            return False
        if not hmac.compare_digest(secret.encode(), expected.encode()):
            return False
        request.client = self._client(client_id)
        request.client_id = client_id
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        if client_id != self.server.client_id:
            return False
        request.client = self._client(client_id)
        return True

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return client_id == self.server.client_id

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type in ("authorization_code", "refresh_token", DEVICE_GRANT)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code"

    # --- scopes
    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return list(self.server.scopes)

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return set(scopes) <= set(self.server.scopes) | OIDC_SCOPES

    # --- redirect URIs (RFC 8252: loopback, any port)
    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        return _is_loopback_redirect(redirect_uri)

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        return None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        grant = self.state.codes.get(code)
        return grant is not None and grant.redirect_uri == redirect_uri

    # --- authorization codes and PKCE
    def is_pkce_required(self, client_id, request):
        return True

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        self.state.codes[code["code"]] = _AuthCode(
            client_id=client_id,
            username=request.user,
            scopes=list(request.scopes or ()),
            redirect_uri=request.redirect_uri,
            challenge=request.code_challenge,
            challenge_method=request.code_challenge_method,
            expires_at=time.monotonic() + 600,
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = self.state.codes.get(code)
        if grant is None or grant.used or grant.client_id != client_id or time.monotonic() > grant.expires_at:
            return False
        request.user = grant.username
        request.scopes = list(grant.scopes)
        return True

    def get_code_challenge(self, code, request):
        grant = self.state.codes.get(code)
        return grant.challenge if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = self.state.codes.get(code)
        return grant.challenge_method if grant is not None else None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        grant = self.state.codes.get(code)
        if grant is not None:
            grant.used = True

    # --- device codes (RFC 8628)
    def validate_device_code(self, client_id, code, request, *args, **kwargs):
        device = self.state.devices.get(code)
        if device is None or device.client_id != client_id or device.status == "used":
            return None  # unknown, another client's, or already exchanged: invalid_grant
        if time.monotonic() >= device.expires_at:
            return DeviceCodeGrant.DEVICE_CODE_EXPIRED
        if self.server.slow_down > 0:
            self.server.slow_down -= 1
            return DeviceCodeGrant.DEVICE_CODE_SLOW_DOWN
        if device.status != DeviceCodeGrant.DEVICE_CODE_AUTHORIZED:
            return device.status  # pending or denied
        device.status = "used"  # a device code is good for one token response
        request.user = device.username
        request.scopes = list(device.scopes)
        return DeviceCodeGrant.DEVICE_CODE_AUTHORIZED

    # --- refresh tokens
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        record = self.state.refresh.get(refresh_token)
        if record is None or not record.valid or client is None or record.client_id != client.client_id:
            return False
        request.user = record.username
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return list(self.state.refresh[refresh_token].scopes)

    def rotate_refresh_token(self, request):
        return True

    # --- tokens
    def save_bearer_token(self, token, request, *args, **kwargs):
        state = self.state
        username = request.user
        scopes = list(request.scopes or ())
        client_id = request.client_id or self.server.client_id
        state.access[token["access_token"]] = _Access(
            username, client_id, scopes, time.monotonic() + float(token["expires_in"])
        )
        new_refresh = token.get("refresh_token")
        old_refresh = request.refresh_token if request.grant_type == "refresh_token" else None
        if old_refresh and old_refresh != new_refresh and old_refresh in state.refresh:
            state.refresh[old_refresh].valid = False  # rotation: the old one is spent
        if new_refresh and new_refresh not in state.refresh:
            state.refresh[new_refresh] = _Refresh(username, client_id, scopes)
            state.refresh_by_user.setdefault(username, []).append(new_refresh)

    def validate_bearer_token(self, token, scopes, request):
        record = self.state.access.get(token)
        return record is not None and time.monotonic() < record.expires_at


def _require_s256(request) -> dict:
    """Only PKCE with S256: "plain" (or no method, which means plain) is refused."""
    if request.code_challenge_method != "S256":
        raise UnsupportedCodeChallengeMethodError(request=request)
    return {}


def _error_code(error: OAuth2Error) -> str:
    # oauthlib calls an unknown client_id "invalid_request" at the authorization and device endpoints
    return "invalid_client" if isinstance(error, InvalidClientIdError) else str(error.error)


def _error_json(error: OAuth2Error) -> str:
    body = json.loads(error.json)
    body["error"] = _error_code(error)
    return json.dumps(body)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, oauth: OAuthServer, tls: ssl.SSLContext):
        self.oauth = oauth
        self.tls = tls
        self.connections: set[ssl.SSLSocket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((LOOPBACK, 0), _Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a slow or failing client cannot
        # hold up the accept loop.
        request.settimeout(_Handler.timeout)
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except OSError as exc:  # ssl.SSLError is one
            self.oauth.errors.append(exc)
            return
        with self.connections_lock:
            self.connections.add(tls_socket)
        try:
            self.RequestHandlerClass(tls_socket, client_address, self)
        finally:
            with self.connections_lock:
                self.connections.discard(tls_socket)
            try:
                tls_socket.close()
            except OSError:
                pass

    def close_connections(self) -> None:
        """End the kept-alive connections too: a stopped server answers nothing."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.oauth.errors.append(sys.exc_info()[1])  # not printed: the tests' stderr is the CLI's business


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "oauthserver/1"
    sys_version = ""
    timeout = 30  # an idle kept-alive connection is closed after this

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except OSError:
            raise
        except Exception as exc:  # a bug here: say so to the client, keep it for the tests
            self.server.oauth.errors.append(exc)
            self.close_connection = True
            try:
                self._send_json(500, {"error": "server_error", "error_description": repr(exc)})
            except OSError:
                pass

    def log_message(self, format, *args):  # noqa: A002  (http.server's own signature)
        pass

    @property
    def oauth(self) -> OAuthServer:
        return self.server.oauth

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None, ctype: str = "") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        sent = {key.lower() for key in (headers or {})}
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if ctype and "content-type" not in sent:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        merged = {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}
        self._send(status, text, merged)

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8", "replace") if length else ""

    def _uri(self) -> str:
        return self.oauth.base_url + self.path

    def do_GET(self):  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/authorize":
            self._authorize()
        elif path == "/devicelogin":
            self._send(
                200,
                "<!doctype html><title>Enter code</title><p>Enter the code shown on your device.",
                ctype="text/html; charset=utf-8",
            )
        else:
            self._send_json(404, {"error": "not_found"})

    def do_POST(self):  # noqa: N802
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/devicecode":
            self._device_authorization(body)
        elif path == "/token":
            self._token(body)
        else:
            self._send_json(404, {"error": "not_found"})

    def _device_authorization(self, body: str) -> None:
        oauth = self.oauth
        headers = dict(self.headers.items())
        form = dict(parse_qsl(body, keep_blank_values=True))
        with oauth.lock:
            try:
                _, data, status = oauth._device_endpoint.create_device_authorization_response(
                    self._uri(), "POST", body, headers
                )
            except OAuth2Error as exc:
                self._send_json(exc.status_code, _error_json(exc), dict(exc.headers))
                return
            if status != 200 or isinstance(data, str):
                self._send_json(status, data)
                return
            basic = _basic_credentials(Request(self._uri(), "POST", body, headers))
            client_id = form.get("client_id") or (basic[0] if basic else "")
            scopes = (data.get("scope") or " ".join(oauth.scopes)).split()
            oauth._state.devices[data["device_code"]] = _DeviceAuth(
                client_id=client_id,
                user_code=data["user_code"],
                scopes=scopes,
                expires_at=time.monotonic() + oauth.device_code_lifetime,
            )
        data["message"] = (
            f"To sign in, use a web browser to open the page {data['verification_uri']} "
            f"and enter the code {data['user_code']} to authenticate."
        )
        self._send_json(200, data)

    def _token(self, body: str) -> None:
        oauth = self.oauth
        with oauth.lock:
            oauth.requests.append(dict(parse_qsl(body, keep_blank_values=True)))
            try:
                headers, text, status = oauth._token_endpoint.create_token_response(
                    self._uri(), "POST", body, dict(self.headers.items())
                )
            except OAuth2Error as exc:
                self._send_json(exc.status_code, _error_json(exc), dict(exc.headers))
                return
        self._send_json(status, text, headers)

    def _authorize(self) -> None:
        oauth = self.oauth
        uri = self._uri()
        with oauth.lock:
            oauth.authorization_requests.append(dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))
            try:
                try:
                    oauth._authorization_endpoint.validate_authorization_request(uri)
                    valid = True
                except FatalClientError:
                    raise
                except OAuth2Error:
                    valid = False  # told to the client through its redirect URI, below
                if valid and not oauth._approvals:
                    page = "<!doctype html><title>Sign in to your account</title><p>Sign in to your account."
                    self._send(200, page, ctype="text/html; charset=utf-8")
                    return
                credentials = {"user": oauth._approvals.popleft()} if valid else {}
                headers, _, status = oauth._authorization_endpoint.create_authorization_response(
                    uri, credentials=credentials
                )
            except FatalClientError as exc:
                # No trusted redirect URI to go back to: an error page, as Microsoft shows one.
                page = f"<!doctype html><title>Sign-in error</title><p>{html.escape(_error_code(exc))}: " + html.escape(
                    exc.description or ""
                )
                self._send(400, page, ctype="text/html; charset=utf-8")
                return
        self._send(status, "", headers)


class OAuthServer:
    """Microsoft's identity platform in miniature, over HTTPS at `base_url` ("https://localhost:PORT").

    Endpoints: `device_url` (POST, RFC 8628), `authorize_url` (GET, authorization code with PKCE S256 and
    a loopback redirect URI, RFC 8252), `token_url` (POST: device_code, authorization_code, refresh_token).
    Start with `with OAuthServer(tls) as oauth:`.
    """

    def __init__(
        self,
        tls: ssl.SSLContext,
        *,
        client_id: str = "jobmail-test-client",
        client_secret: str | None = None,
        access_lifetime: int = 3600,
        interval: int = 1,
        scopes: tuple[str, ...] = (SMTP_SCOPE, "offline_access"),
        device_code_lifetime: int = 900,
    ):
        self.tls = tls
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_lifetime = access_lifetime
        self.interval = interval
        self.scopes = tuple(scopes)
        self.device_code_lifetime = device_code_lifetime
        self.slow_down = 0
        self.requests: list[dict] = []  # every token request's form, in order
        self.authorization_requests: list[dict] = []  # every GET /authorize's query, in order
        self.errors: list[BaseException | None] = []  # what went wrong in the server (failed handshakes...)
        self.lock = threading.RLock()
        self.port = 0
        self.base_url = ""
        self._state = _State()
        self._approvals: deque[str] = deque()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._validator = _Validator(self)
        self._build_endpoints()

    def _build_endpoints(self) -> None:
        validator = self._validator
        bearer = BearerToken(
            validator,
            token_generator=lambda request: secrets.token_urlsafe(ACCESS_TOKEN_BYTES),
            refresh_token_generator=lambda request: secrets.token_urlsafe(REFRESH_TOKEN_BYTES),
            expires_in=lambda request: self.access_lifetime,
        )
        code_grant = AuthorizationCodeGrant(validator, post_auth=[_require_s256])
        self._authorization_endpoint = AuthorizationEndpoint(
            default_response_type="code", default_token_type=bearer, response_types={"code": code_grant}
        )
        self._token_endpoint = TokenEndpoint(
            default_grant_type="authorization_code",
            default_token_type=bearer,
            grant_types={
                "authorization_code": code_grant,
                "refresh_token": RefreshTokenGrant(validator, issue_new_refresh_tokens=True),
                DEVICE_GRANT: DeviceCodeGrant(validator),
            },
        )

    def _make_device_endpoint(self) -> DeviceAuthorizationEndpoint:
        return DeviceAuthorizationEndpoint(
            self._validator,
            verification_uri=self.base_url + "/devicelogin",
            expires_in=self.device_code_lifetime,
            interval=self.interval,
            user_code_generator=self._user_code,
        )

    def _user_code(self) -> str:
        issued = {device.user_code for device in self._state.devices.values()}
        while True:
            letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            code = letters[:4] + "-" + letters[4:]
            if code not in issued:
                return code

    # --- URLs
    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def device_url(self) -> str:
        return self.base_url + "/devicecode"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    # --- life cycle
    def start(self) -> OAuthServer:
        self._httpd = _HTTPServer(self, self.tls)
        self.port = self._httpd.server_address[1]
        self.base_url = f"https://localhost:{self.port}"
        self._device_endpoint = self._make_device_endpoint()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="oauthserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the user's side, and the tests' controls
    def _device_by_user_code(self, user_code: str) -> _DeviceAuth:
        for device in self._state.devices.values():
            if device.user_code == user_code:
                return device
        raise KeyError(f"no device code was issued with user code {user_code!r}")

    def approve(self, user_code: str, username: str) -> None:
        """The user signs in as `username` and approves the device that shows `user_code`."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            if device.status != DeviceCodeGrant.DEVICE_CODE_PENDING:
                raise ValueError(f"user code {user_code!r} is {device.status}, not pending")
            device.status, device.username = DeviceCodeGrant.DEVICE_CODE_AUTHORIZED, username

    def deny(self, user_code: str) -> None:
        """The user refuses: the next poll of that device code gets access_denied."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            if device.status != DeviceCodeGrant.DEVICE_CODE_PENDING:
                raise ValueError(f"user code {user_code!r} is {device.status}, not pending")
            device.status = DeviceCodeGrant.DEVICE_CODE_DENIED

    def pending_user_codes(self) -> list[str]:
        """The user codes issued and still waiting for the user (not approved, denied or expired)."""
        now = time.monotonic()
        with self.lock:
            return [
                device.user_code
                for device in self._state.devices.values()
                if device.status == DeviceCodeGrant.DEVICE_CODE_PENDING and now < device.expires_at
            ]

    def expire_device_codes(self) -> None:
        """Every device code issued so far expires: its polls get expired_token."""
        with self.lock:
            for device in self._state.devices.values():
                device.expires_at = float("-inf")

    def approve_next_authorization(self, username: str) -> None:
        """The next valid GET /authorize signs `username` in at once: 302 to redirect_uri?code=..&state=..
        (without it, /authorize shows a sign-in page and waits). Each call approves one more request."""
        with self.lock:
            self._approvals.append(username)

    def revoke(self, username: str) -> None:
        """Every refresh token of `username` is revoked (invalid_grant); access tokens live on."""
        with self.lock:
            for token in self._state.refresh_by_user.get(username, []):
                self._state.refresh[token].valid = False

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops being valid (the SMTP server refuses it)."""
        with self.lock:
            for record in self._state.access.values():
                record.expires_at = float("-inf")

    def user_for(self, access_token: str) -> str | None:
        """The username of a live access token, else None."""
        with self.lock:
            record = self._state.access.get(access_token)
            if record is None or time.monotonic() >= record.expires_at:
                return None
            return record.username

    def issued_refresh_tokens(self, username: str) -> list[str]:
        """Every refresh token issued to `username`, oldest first (the last is the newest rotation)."""
        with self.lock:
            return list(self._state.refresh_by_user.get(username, []))

    def refresh_token_valid(self, refresh_token: str) -> bool:
        with self.lock:
            record = self._state.refresh.get(refresh_token)
            return record is not None and record.valid


# --- SMTP with OAuth only ------------------------------------------------------------------------------


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """`user=USER\\x01auth=Bearer TOKEN\\x01\\x01` -> (user, token), or None when malformed."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = dict(part.partition("=")[::2] for part in text.split("\x01") if part)
    user, token = fields.get("user"), _bearer(fields.get("auth", ""))
    return (user, token) if user and token else None


def _gs2_name(value: str) -> str:
    return value.replace("=2C", ",").replace("=3D", "=")


def parse_oauthbearer(blob: bytes) -> tuple[str | None, str] | None:
    """RFC 7628: `n,a=USER,\\x01auth=Bearer TOKEN\\x01\\x01` -> (user or None, token), or None when malformed."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    header, sep, rest = text.partition("\x01")
    if not sep or not rest.endswith("\x01\x01"):
        return None
    gs2 = header.split(",")
    if len(gs2) < 3 or gs2[0] not in ("n", "y"):
        return None
    user = _gs2_name(gs2[1][2:]) if gs2[1].startswith("a=") else None
    if gs2[1] and user is None:
        return None
    fields = dict(part.partition("=")[::2] for part in rest.split("\x01") if part)
    token = _bearer(fields.get("auth", ""))
    return (user, token) if token else None


class OAuthRecorder(Recorder):
    """An aiosmtpd handler that records messages (as Recorder does) and logs users in with OAuth 2.0 bearer
    tokens: AUTH XOAUTH2 (Google's and Microsoft's) and AUTH OAUTHBEARER (RFC 7628), each with the initial
    response on the AUTH line or after a `334 ` challenge. A login succeeds when `oauth.user_for(token)`
    is the user named. `disabled_reply`: the reply to every AUTH, whatever it carries (e.g. Microsoft's
    "535 5.7.139 ... SmtpClientAuthentication is disabled for the Tenant.")."""

    def __init__(
        self,
        oauth: OAuthServer,
        mechanisms: tuple[str, ...] = ("XOAUTH2", "OAUTHBEARER"),
        disabled_reply: str | None = None,
    ):
        super().__init__()
        self.oauth = oauth
        self.mechanisms = tuple(mechanism.upper() for mechanism in mechanisms)
        self.disabled_reply = disabled_reply
        self.logins: list[tuple[str, str]] = []  # (mechanism, username) of each successful login
        self.failures: list[tuple[str, str | None]] = []  # (mechanism, username given) of each refusal

    async def auth_XOAUTH2(self, server, args):  # noqa: N802  (aiosmtpd finds auth_<MECHANISM>)
        return await self._login(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server, args):  # noqa: N802
        return await self._login(server, args, "OAUTHBEARER")

    async def _login(self, server, args: list[str], mechanism: str) -> AuthResult:
        if mechanism not in self.mechanisms:
            return AuthResult(success=False, handled=False, message="504 5.5.4 Unrecognized authentication type")
        if len(args) == 1:
            blob = await server.challenge_auth("", encode_to_b64=False)  # a bare "334 "
            if blob is MISSING:
                return AuthResult(success=False, handled=True)  # challenge_auth has answered already
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        if self.disabled_reply is not None:
            return AuthResult(success=False, handled=False, message=self.disabled_reply)
        parsed = parse_xoauth2(blob) if mechanism == "XOAUTH2" else parse_oauthbearer(blob)
        if parsed is None:
            self.failures.append((mechanism, None))
            return AuthResult(success=False, handled=False, message=UNSUCCESSFUL)
        user, token = parsed
        owner = self.oauth.user_for(token)
        if owner is None or (user is not None and user != owner):
            self.failures.append((mechanism, user))
            return AuthResult(success=False, handled=False, message=UNSUCCESSFUL)
        self.logins.append((mechanism, owner))
        return AuthResult(success=True, auth_data=owner)


def _refuse(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """aiosmtpd's own PLAIN and LOGIN (were they offered) never succeed here."""
    return AuthResult(success=False, handled=False)


class OAuthLoopbackServer(LoopbackServer):
    """jobmail's loopback server, requiring AUTH with one of the handler's OAuth mechanisms before MAIL."""

    handler: OAuthRecorder

    def _auth_options(self) -> dict[str, Any]:
        offered = set(self.handler.mechanisms)
        return dict(
            authenticator=_refuse,
            auth_required=True,
            auth_require_tls=self.tls is not None and not self.implicit_tls,
            auth_exclude_mechanism=["PLAIN", "LOGIN", *(m for m in ("XOAUTH2", "OAUTHBEARER") if m not in offered)],
        )


class _NoLoginDataWarning(logging.Filter):
    """aiosmtpd logs warnings (to stderr, through logging's last resort) that are no news here: on every
    successful login, since its own smtp_AUTH sets Session.login_data, and on every connection to an
    implicit-TLS server that requires AUTH (auth_require_tls is off there: the whole connection is TLS)."""

    NOISE = ("Session.login_data is deprecated", "auth_required == True but auth_require_tls == False")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOISE)


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(existing, _NoLoginDataWarning) for existing in logger.filters):
        logger.addFilter(_NoLoginDataWarning())


def oauth_smtp_server(
    oauth: OAuthServer,
    tls: ssl.SSLContext,
    *,
    implicit_tls: bool = False,
    mechanisms: tuple[str, ...] = ("XOAUTH2", "OAUTHBEARER"),
    disabled_reply: str | None = None,
) -> OAuthLoopbackServer:
    """A started SMTP server on 127.0.0.1 (STARTTLS, or TLS from the first byte with implicit_tls) that
    takes only OAuth logins checked against `oauth`; `server.handler.logins`, `server.messages`. Stop it."""
    _quiet_aiosmtpd()
    handler = OAuthRecorder(oauth, mechanisms=mechanisms, disabled_reply=disabled_reply)
    server = OAuthLoopbackServer(handler, tls=tls, implicit_tls=implicit_tls)
    return server.start()  # type: ignore[return-value]


__all__ = [
    "OAuthLoopbackServer",
    "OAuthRecorder",
    "OAuthServer",
    "oauth_smtp_server",
    "parse_oauthbearer",
    "parse_xoauth2",
]
