"""The OAuth stand-ins of tests/oauthserver.py, driven with the standard library only: urllib over HTTPS for
the OAuth server, smtplib for the SMTP server that takes only OAuth logins."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import smtplib
import ssl
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from oauthserver import (
    DEVICE_GRANT,
    SMTP_SCOPE,
    OAuthServer,
    oauth_smtp_server,
    parse_oauthbearer,
    parse_xoauth2,
)

from jobmail.loopback import LOOPBACK, free_port

USER = "alex@example.com"
CLIENT = "jobmail-test-client"
DISABLED = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."


@pytest.fixture
def client_tls(ca_file) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture
def oauth(tls_context):
    with OAuthServer(tls_context) as server:
        yield server
    # refused handshakes are expected of some tests; anything else is a bug in the server
    assert [error for error in server.errors if not isinstance(error, ssl.SSLError)] == []


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def post(url: str, form: dict[str, str], tls: ssl.SSLContext, headers: dict[str, str] | None = None):
    """POST a form; (status, JSON body) whether it succeeded or not."""
    request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=tls, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def get(url: str, tls: ssl.SSLContext):
    """GET without following a redirect: (status, headers, body text)."""
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), _NoRedirect())
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def loopback_redirect(path: str = "/callback") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def authorize_query(redirect_uri: str, challenge: str, **extra: str) -> str:
    params = {
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": f"{SMTP_SCOPE} offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return urlencode({key: value for key, value in params.items() if value is not None})


def authorize(oauth: OAuthServer, tls, username: str = USER, state: str | None = "st-1", redirect_uri=None):
    """Run the browser's part: approved at once; (code, redirect parameters, redirect_uri, verifier)."""
    verifier, challenge = pkce()
    redirect_uri = redirect_uri or loopback_redirect()
    oauth.approve_next_authorization(username)
    extra = {"state": state} if state is not None else {}
    status, headers, _ = get(oauth.authorize_url + "?" + authorize_query(redirect_uri, challenge, **extra), tls)
    assert status == 302
    location = headers["Location"]
    assert location.startswith(redirect_uri + "?")
    params = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    return params["code"], params, redirect_uri, verifier


def exchange(oauth: OAuthServer, tls, code: str, redirect_uri: str, verifier: str, **extra: str):
    form = {
        "grant_type": "authorization_code",
        "client_id": CLIENT,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **extra,
    }
    return post(oauth.token_url, form, tls)


def refresh(oauth: OAuthServer, tls, refresh_token: str, **extra: str):
    form = {"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": refresh_token, **extra}
    return post(oauth.token_url, form, tls)


def tokens_for(oauth: OAuthServer, tls, username: str = USER) -> dict:
    code, _, redirect_uri, verifier = authorize(oauth, tls, username)
    status, body = exchange(oauth, tls, code, redirect_uri, verifier)
    assert status == 200, body
    return body


def device_start(oauth: OAuthServer, tls, **extra: str):
    return post(oauth.device_url, {"client_id": CLIENT, "scope": f"{SMTP_SCOPE} offline_access", **extra}, tls)


def poll(oauth: OAuthServer, tls, device_code: str, client_id: str = CLIENT):
    form = {"grant_type": DEVICE_GRANT, "client_id": client_id, "device_code": device_code}
    return post(oauth.token_url, form, tls)


def assert_token_response(body: dict) -> None:
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == {SMTP_SCOPE, "offline_access"}
    assert body["access_token"] and body["refresh_token"]
    assert 1700 <= len(body["refresh_token"]) <= 1900  # long, like Microsoft's


# --- the HTTPS server itself ----------------------------------------------------------------------------


def test_urls_and_tls(oauth, client_tls):
    assert oauth.base_url == f"https://localhost:{oauth.port}"
    assert oauth.authorize_url == oauth.base_url + "/authorize"
    assert oauth.device_url == oauth.base_url + "/devicecode"
    assert oauth.token_url == oauth.base_url + "/token"
    # the CA the tests trust is enough, by name and by address
    status, _, _ = get(f"https://127.0.0.1:{oauth.port}/devicelogin", client_tls)
    assert status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(oauth.token_url, context=ssl.create_default_context(), timeout=10)


def test_stop_closes_the_port(tls_context, client_tls):
    server = OAuthServer(tls_context).start()
    url = server.device_url
    server.stop()
    with pytest.raises(urllib.error.URLError):
        post(url, {"client_id": CLIENT}, client_tls)


def test_stop_ends_kept_alive_connections(tls_context, client_tls):
    server = OAuthServer(tls_context).start()
    conn = http.client.HTTPSConnection("localhost", server.port, context=client_tls, timeout=10)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/devicecode", urlencode({"client_id": CLIENT}), headers)
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") != "close"
        response.read()
        server.stop()
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.request("POST", "/devicecode", urlencode({"client_id": CLIENT}), headers)
            conn.getresponse()
    finally:
        conn.close()
        server.stop()


# --- device code flow (RFC 8628) ---------------------------------------------------------------------------


def test_device_flow_end_to_end(oauth, client_tls):
    status, started = device_start(oauth, client_tls)
    assert status == 200
    assert {"device_code", "user_code", "verification_uri", "expires_in", "interval"} <= set(started)
    assert started["interval"] == 1 and started["expires_in"] > 0
    assert started["verification_uri"].startswith(oauth.base_url)
    assert started["user_code"] in started["message"]
    assert oauth.pending_user_codes() == [started["user_code"]]

    status, body = poll(oauth, client_tls, started["device_code"])
    assert (status, body["error"]) == (400, "authorization_pending")
    status, body = poll(oauth, client_tls, started["device_code"])
    assert body["error"] == "authorization_pending"

    oauth.approve(started["user_code"], USER)
    assert oauth.pending_user_codes() == []
    status, body = poll(oauth, client_tls, started["device_code"])
    assert status == 200, body
    assert_token_response(body)
    assert oauth.user_for(body["access_token"]) == USER
    assert oauth.issued_refresh_tokens(USER) == [body["refresh_token"]]
    assert [form["grant_type"] for form in oauth.requests] == [DEVICE_GRANT] * 3

    # a device code is good for one token response
    status, body = poll(oauth, client_tls, started["device_code"])
    assert (status, body["error"]) == (400, "invalid_grant")


def test_device_slow_down_counts_down(oauth, client_tls):
    _, started = device_start(oauth, client_tls)
    oauth.slow_down = 2
    assert poll(oauth, client_tls, started["device_code"])[1]["error"] == "slow_down"
    assert poll(oauth, client_tls, started["device_code"])[1]["error"] == "slow_down"
    assert oauth.slow_down == 0
    assert poll(oauth, client_tls, started["device_code"])[1]["error"] == "authorization_pending"


def test_device_denied(oauth, client_tls):
    _, started = device_start(oauth, client_tls)
    oauth.deny(started["user_code"])
    assert oauth.pending_user_codes() == []
    status, body = poll(oauth, client_tls, started["device_code"])
    assert (status, body["error"]) == (400, "access_denied")
    with pytest.raises(ValueError):
        oauth.approve(started["user_code"], USER)


def test_device_expired(oauth, client_tls):
    _, started = device_start(oauth, client_tls)
    oauth.expire_device_codes()
    assert oauth.pending_user_codes() == []
    status, body = poll(oauth, client_tls, started["device_code"])
    assert (status, body["error"]) == (400, "expired_token")


def test_device_code_lifetime_zero_expires_at_once(tls_context, client_tls):
    with OAuthServer(tls_context, device_code_lifetime=0) as oauth:
        _, started = device_start(oauth, client_tls)
        assert poll(oauth, client_tls, started["device_code"])[1]["error"] == "expired_token"


def test_device_unknown_code_and_client(oauth, client_tls):
    _, started = device_start(oauth, client_tls)
    assert poll(oauth, client_tls, "not-a-device-code")[1]["error"] == "invalid_grant"
    status, body = poll(oauth, client_tls, started["device_code"], client_id="someone-else")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = post(oauth.device_url, {"client_id": "someone-else"}, client_tls)
    assert body["error"] == "invalid_client"
    with pytest.raises(KeyError):
        oauth.approve("NOPE-NOPE", USER)


def test_device_codes_are_distinct(oauth, client_tls):
    first = device_start(oauth, client_tls)[1]
    second = device_start(oauth, client_tls)[1]
    assert first["device_code"] != second["device_code"] and first["user_code"] != second["user_code"]
    assert oauth.pending_user_codes() == [first["user_code"], second["user_code"]]
    oauth.approve(second["user_code"], "sam@example.com")
    assert poll(oauth, client_tls, first["device_code"])[1]["error"] == "authorization_pending"
    status, body = poll(oauth, client_tls, second["device_code"])
    assert status == 200 and oauth.user_for(body["access_token"]) == "sam@example.com"


def test_device_scope_defaults_and_unknown_scope(oauth, client_tls):
    status, started = post(oauth.device_url, {"client_id": CLIENT}, client_tls)
    assert status == 200
    oauth.approve(started["user_code"], USER)
    status, body = poll(oauth, client_tls, started["device_code"])
    assert set(body["scope"].split()) == {SMTP_SCOPE, "offline_access"}
    status, body = device_start(oauth, client_tls, scope="https://graph.microsoft.com/Mail.ReadWrite")
    assert (status, body["error"]) == (400, "invalid_scope")


# --- authorization code with PKCE (RFC 6749, 7636, 8252) ---------------------------------------------------


def test_authorization_code_flow(oauth, client_tls):
    code, params, redirect_uri, verifier = authorize(oauth, client_tls, state="xyz-123")
    assert params["state"] == "xyz-123"
    status, body = exchange(oauth, client_tls, code, redirect_uri, verifier)
    assert status == 200, body
    assert_token_response(body)
    assert oauth.user_for(body["access_token"]) == USER
    assert oauth.requests[-1]["grant_type"] == "authorization_code"
    assert oauth.authorization_requests[-1]["code_challenge_method"] == "S256"


def test_missing_state_is_passed_through(oauth, client_tls):
    _, params, _, _ = authorize(oauth, client_tls, state=None)
    assert "state" not in params and "code" in params


@pytest.mark.parametrize("path", ["/", "/callback", "/deep/path"])
def test_any_loopback_port_and_path(oauth, client_tls, path):
    for redirect_uri in (loopback_redirect(path), f"http://localhost:{free_port()}{path}"):
        code, _, used, verifier = authorize(oauth, client_tls, redirect_uri=redirect_uri)
        assert used == redirect_uri
        assert exchange(oauth, client_tls, code, redirect_uri, verifier)[0] == 200


def test_wrong_code_verifier_refused(oauth, client_tls):
    code, _, redirect_uri, verifier = authorize(oauth, client_tls)
    status, body = exchange(oauth, client_tls, code, redirect_uri, pkce()[0])
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = post(
        oauth.token_url,
        {"grant_type": "authorization_code", "client_id": CLIENT, "code": code, "redirect_uri": redirect_uri},
        client_tls,
    )
    assert (status, body["error"]) == (400, "invalid_request")  # no code_verifier at all


def test_code_is_single_use(oauth, client_tls):
    code, _, redirect_uri, verifier = authorize(oauth, client_tls)
    assert exchange(oauth, client_tls, code, redirect_uri, verifier)[0] == 200
    status, body = exchange(oauth, client_tls, code, redirect_uri, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_redirect_uri_must_match_the_authorization(oauth, client_tls):
    code, _, redirect_uri, verifier = authorize(oauth, client_tls)
    status, body = exchange(oauth, client_tls, code, loopback_redirect(), verifier)
    assert status == 400 and body["error"] == "invalid_request"


def test_pkce_is_required_and_must_be_s256(oauth, client_tls):
    redirect_uri = loopback_redirect()
    oauth.approve_next_authorization(USER)
    query = authorize_query(redirect_uri, None, code_challenge_method=None, state="s")  # type: ignore[arg-type]
    status, headers, _ = get(oauth.authorize_url + "?" + query, client_tls)
    assert status == 302
    params = parse_qs(urlsplit(headers["Location"]).query)
    assert params["error"] == ["invalid_request"] and params["state"] == ["s"] and "code" not in params

    verifier, _ = pkce()
    query = authorize_query(redirect_uri, verifier, code_challenge_method="plain")
    status, headers, _ = get(oauth.authorize_url + "?" + query, client_tls)
    assert status == 302 and "error=invalid_request" in headers["Location"] and "code=" not in headers["Location"]
    # the approval was not spent on the refused requests
    code, _, _, _ = authorize(oauth, client_tls)
    assert code


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/cb",
        "http://example.com:8080/cb",
        "https://127.0.0.1:8443/cb",
        "urn:ietf:wg:oauth:2.0:oob",
    ],
)
def test_non_loopback_redirect_refused(oauth, client_tls, redirect_uri):
    oauth.approve_next_authorization(USER)
    status, headers, body = get(oauth.authorize_url + "?" + authorize_query(redirect_uri, pkce()[1]), client_tls)
    assert status == 400 and "Location" not in headers


def test_unknown_client_at_authorize(oauth, client_tls):
    query = authorize_query(loopback_redirect(), pkce()[1], client_id="someone-else")
    status, headers, body = get(oauth.authorize_url + "?" + query, client_tls)
    assert status == 400 and "invalid_client" in body and "Location" not in headers


def test_authorize_waits_for_approval(oauth, client_tls):
    query = authorize_query(loopback_redirect(), pkce()[1])
    status, headers, body = get(oauth.authorize_url + "?" + query, client_tls)
    assert status == 200 and "Sign in" in body and "Location" not in headers


def test_each_approval_is_for_one_request(oauth, client_tls):
    oauth.approve_next_authorization("sam@example.com")
    oauth.approve_next_authorization(USER)
    for expected in ("sam@example.com", USER):
        verifier, challenge = pkce()
        redirect_uri = loopback_redirect()
        status, headers, _ = get(oauth.authorize_url + "?" + authorize_query(redirect_uri, challenge), client_tls)
        code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
        token = exchange(oauth, client_tls, code, redirect_uri, verifier)[1]["access_token"]
        assert oauth.user_for(token) == expected
    assert get(oauth.authorize_url + "?" + authorize_query(loopback_redirect(), pkce()[1]), client_tls)[0] == 200


# --- refresh tokens -----------------------------------------------------------------------------------------


def test_refresh_rotates(oauth, client_tls):
    first = tokens_for(oauth, client_tls)
    status, second = refresh(oauth, client_tls, first["refresh_token"])
    assert status == 200, second
    assert_token_response(second)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert oauth.issued_refresh_tokens(USER) == [first["refresh_token"], second["refresh_token"]]
    assert oauth.user_for(second["access_token"]) == USER
    assert oauth.requests[-1]["grant_type"] == "refresh_token"

    # the old one is spent; the new one works, and rotates in turn
    status, body = refresh(oauth, client_tls, first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    status, third = refresh(oauth, client_tls, second["refresh_token"])
    assert status == 200
    assert oauth.issued_refresh_tokens(USER)[-1] == third["refresh_token"]
    assert not oauth.refresh_token_valid(second["refresh_token"])
    assert oauth.refresh_token_valid(third["refresh_token"])


def test_refresh_with_a_narrower_scope(oauth, client_tls):
    first = tokens_for(oauth, client_tls)
    status, body = refresh(oauth, client_tls, first["refresh_token"], scope=SMTP_SCOPE)
    assert status == 200 and body["scope"] == SMTP_SCOPE
    status, body = refresh(oauth, client_tls, body["refresh_token"], scope="https://graph.microsoft.com/Mail.Send")
    assert (status, body["error"]) == (400, "invalid_scope")


def test_revoke(oauth, client_tls):
    mine = tokens_for(oauth, client_tls)
    theirs = tokens_for(oauth, client_tls, "sam@example.com")
    rotated = refresh(oauth, client_tls, mine["refresh_token"])[1]
    oauth.revoke(USER)
    for token in (mine["refresh_token"], rotated["refresh_token"]):
        status, body = refresh(oauth, client_tls, token)
        assert (status, body["error"]) == (400, "invalid_grant")
    assert refresh(oauth, client_tls, theirs["refresh_token"])[0] == 200
    assert oauth.user_for(rotated["access_token"]) == USER  # access tokens live until they expire


def test_unknown_refresh_token(oauth, client_tls):
    status, body = refresh(oauth, client_tls, secrets.token_urlsafe(1350))
    assert (status, body["error"]) == (400, "invalid_grant")


def test_unknown_client_at_token(oauth, client_tls):
    tokens = tokens_for(oauth, client_tls)
    status, body = refresh(oauth, client_tls, tokens["refresh_token"], client_id="someone-else")
    assert (status, body["error"]) == (401, "invalid_client")
    code, _, redirect_uri, verifier = authorize(oauth, client_tls)
    status, body = exchange(oauth, client_tls, code, redirect_uri, verifier, client_id="someone-else")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = post(oauth.token_url, {"grant_type": "password", "client_id": CLIENT}, client_tls)
    assert body["error"] == "unsupported_grant_type"


def test_expire_access_tokens(oauth, client_tls):
    first = tokens_for(oauth, client_tls)
    assert oauth.user_for(first["access_token"]) == USER
    oauth.expire_access_tokens()
    assert oauth.user_for(first["access_token"]) is None
    # new ones are valid again
    status, second = refresh(oauth, client_tls, first["refresh_token"])
    assert oauth.user_for(second["access_token"]) == USER
    assert oauth.user_for("not-a-token") is None


def test_access_lifetime(tls_context, client_tls):
    with OAuthServer(tls_context, access_lifetime=0) as oauth:
        body = tokens_for(oauth, client_tls)
        assert body["expires_in"] == 0
        assert oauth.user_for(body["access_token"]) is None


# --- a confidential client ----------------------------------------------------------------------------------


def test_client_secret_required_when_set(tls_context, client_tls):
    secret = "s-" + secrets.token_urlsafe(16)
    with OAuthServer(tls_context, client_secret=secret) as oauth:
        code, _, redirect_uri, verifier = authorize(oauth, client_tls)
        status, body = exchange(oauth, client_tls, code, redirect_uri, verifier)
        assert (status, body["error"]) == (401, "invalid_client")
        status, body = exchange(oauth, client_tls, code, redirect_uri, verifier, client_secret="wrong")
        assert (status, body["error"]) == (401, "invalid_client")
        status, tokens = exchange(oauth, client_tls, code, redirect_uri, verifier, client_secret=secret)
        assert status == 200, tokens

        assert refresh(oauth, client_tls, tokens["refresh_token"])[1]["error"] == "invalid_client"
        status, rotated = refresh(oauth, client_tls, tokens["refresh_token"], client_secret=secret)
        assert status == 200
        # HTTP Basic (RFC 6749 section 2.3.1) does too
        basic = base64.b64encode(f"{CLIENT}:{secret}".encode()).decode()
        form = {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
        status, _ = post(oauth.token_url, form, client_tls, headers={"Authorization": "Basic " + basic})
        assert status == 200

        # the device endpoint takes the secret if given (and checks it); the token request needs it
        assert device_start(oauth, client_tls, client_secret="wrong")[1]["error"] == "invalid_client"
        status, started = device_start(oauth, client_tls)
        assert status == 200
        oauth.approve(started["user_code"], USER)
        assert poll(oauth, client_tls, started["device_code"])[1]["error"] == "invalid_client"
        form = {"grant_type": DEVICE_GRANT, "client_id": CLIENT, "device_code": started["device_code"]}
        status, body = post(oauth.token_url, {**form, "client_secret": secret}, client_tls)
        assert status == 200, body
        assert oauth.requests[-1]["client_secret"] == secret


# --- SASL payloads ------------------------------------------------------------------------------------------


def xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def oauthbearer(user: str, token: str) -> str:
    return base64.b64encode(f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()).decode()


def test_sasl_parsers():
    assert parse_xoauth2(b"user=a@b.c\x01auth=Bearer tok\x01\x01") == ("a@b.c", "tok")
    assert parse_xoauth2(b"user=a@b.c\x01auth=Basic tok\x01\x01") is None
    assert parse_xoauth2(b"auth=Bearer tok\x01\x01") is None
    assert parse_oauthbearer(b"n,a=a@b.c,\x01auth=Bearer tok\x01\x01") == ("a@b.c", "tok")
    assert parse_oauthbearer(b"n,a=a=2Cb=3D@c,\x01host=h\x01port=587\x01auth=Bearer tok\x01\x01") == ("a,b=@c", "tok")
    assert parse_oauthbearer(b"n,,\x01auth=Bearer tok\x01\x01") == (None, "tok")
    assert parse_oauthbearer(b"n,a=a@b.c,\x01auth=Bearer tok") is None
    assert parse_oauthbearer(b"p=x,,\x01auth=Bearer tok\x01\x01") is None


# --- SMTP that takes only OAuth -----------------------------------------------------------------------------


@pytest.fixture
def smtp_server(oauth, tls_context):
    servers = []

    def make(**options):
        server = oauth_smtp_server(oauth, tls_context, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def connect(server, client_tls) -> smtplib.SMTP:
    if server.implicit_tls:
        conn = smtplib.SMTP_SSL(LOOPBACK, server.port, context=client_tls, timeout=10)
    else:
        conn = smtplib.SMTP(LOOPBACK, server.port, timeout=10)
        conn.starttls(context=client_tls)
    conn.ehlo("client.example")
    return conn


def send_one(conn: smtplib.SMTP) -> None:
    conn.sendmail(USER, ["jordan@example.com"], b"Subject: hi\r\n\r\nhello\r\n")


@pytest.mark.parametrize("implicit_tls", [False, True])
def test_smtp_xoauth2_login_and_send(oauth, client_tls, smtp_server, implicit_tls):
    server = smtp_server(implicit_tls=implicit_tls)
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        assert conn.esmtp_features["auth"].split() == ["OAUTHBEARER", "XOAUTH2"]
        assert "pipelining" in conn.esmtp_features
        assert conn.mail(USER)[0] == 530  # AUTH before MAIL
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))[0] == 235
        send_one(conn)
    assert server.handler.logins == [("XOAUTH2", USER)]
    assert len(server.messages) == 1 and server.messages[0].mail_from == USER


def test_smtp_no_auth_offered_before_starttls(smtp_server):
    server = smtp_server()
    with smtplib.SMTP(LOOPBACK, server.port, timeout=10) as conn:
        conn.ehlo("client.example")
        assert "auth" not in conn.esmtp_features and "starttls" in conn.esmtp_features


def test_smtp_oauthbearer(oauth, client_tls, smtp_server):
    server = smtp_server()
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        assert conn.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, token))[0] == 235
        send_one(conn)
    assert server.handler.logins == [("OAUTHBEARER", USER)]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_response_after_challenge(oauth, client_tls, smtp_server, mechanism):
    server = smtp_server()
    token = tokens_for(oauth, client_tls)["access_token"]
    payload = xoauth2(USER, token) if mechanism == "XOAUTH2" else oauthbearer(USER, token)
    with connect(server, client_tls) as conn:
        code, message = conn.docmd("AUTH", mechanism)
        assert (code, message) == (334, b"")
        assert conn.docmd(payload)[0] == 235
    assert server.handler.logins == [(mechanism, USER)]


def test_smtp_login_with_smtplib_auth(oauth, client_tls, smtp_server):
    """smtplib's own auth() with an XOAUTH2 authobject, as a client library would do it."""
    server = smtp_server()
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        code, _ = conn.auth("XOAUTH2", lambda challenge=None: f"user={USER}\x01auth=Bearer {token}\x01\x01")
        assert code == 235


def test_smtp_refuses_bad_tokens(oauth, client_tls, smtp_server):
    server = smtp_server()
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, "not-a-token")) == (
            535,
            b"5.7.8 Authentication unsuccessful",
        )
        # another user's name with a good token
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2("sam@example.com", token))[0] == 535
        assert conn.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, "not-a-token"))[0] == 535
        assert conn.docmd("AUTH", "XOAUTH2 " + base64.b64encode(b"garbage").decode())[0] == 535
        assert conn.docmd("AUTH", "XOAUTH2 !!!")[0] == 501
        assert conn.mail(USER)[0] == 530
    assert server.handler.logins == []


def test_smtp_refuses_expired_tokens(oauth, client_tls, smtp_server):
    server = smtp_server()
    tokens = tokens_for(oauth, client_tls)
    oauth.expire_access_tokens()
    with connect(server, client_tls) as conn:
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, tokens["access_token"]))[0] == 535
        fresh = refresh(oauth, client_tls, tokens["refresh_token"])[1]["access_token"]
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, fresh))[0] == 235


def test_smtp_plain_and_login_not_offered(oauth, client_tls, smtp_server):
    server = smtp_server()
    with connect(server, client_tls) as conn:
        plain = base64.b64encode(f"\0{USER}\0password".encode()).decode()
        assert conn.docmd("AUTH", "PLAIN " + plain)[0] == 504
        assert conn.docmd("AUTH", "LOGIN")[0] == 504
        with pytest.raises(smtplib.SMTPException):
            conn.login(USER, "password")


def test_smtp_only_listed_mechanisms(oauth, client_tls, smtp_server):
    server = smtp_server(mechanisms=("XOAUTH2",))
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        assert conn.esmtp_features["auth"].split() == ["XOAUTH2"]
        assert conn.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, token))[0] == 504
        assert conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))[0] == 235


def test_smtp_disabled_for_the_tenant(oauth, client_tls, smtp_server):
    server = smtp_server(disabled_reply=DISABLED)
    token = tokens_for(oauth, client_tls)["access_token"]
    with connect(server, client_tls) as conn:
        code, message = conn.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))
        assert (code, message.decode()) == (535, DISABLED[4:])
        assert conn.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, token))[0] == 535
        assert conn.docmd("AUTH", "XOAUTH2")[0] == 334
        assert conn.docmd(xoauth2(USER, token)) == (535, DISABLED[4:].encode())
    assert server.handler.logins == []
