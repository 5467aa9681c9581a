"""Signing in with OAuth 2.0 (SMTP_AUTH=oauth2), tried as a user does: the CLI as a subprocess against a
local authorization server over HTTPS (tests/oauthserver.py, oauthlib's server endpoints) standing in for
Microsoft's, and an SMTP server that takes only the access tokens that server issued (XOAUTH2, OAUTHBEARER).

Nothing is mocked: the tokens cross real HTTPS and SMTP connections, and are kept in a real keyring
backend (keyrings.alt's file backend) in a temp dir.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import USERNAME, WITHDRAW_ARGS, Account, account_values, clean_environ, imports_package
from oauthserver import OAuthServer, oauth_smtp_server

from jobmail import settings as config
from jobmail.auth import credentials, oauth
from jobmail.errors import SignInError

DISABLED = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
BROWSER = Path(__file__).with_name("browser_stand_in.py")


@pytest.fixture
def auth_server(tls_context):
    with OAuthServer(tls_context, interval=0) as server:
        yield server


@pytest.fixture
def make_oauth_account(tmp_path, tls_context, ca_file, auth_server):
    """An account whose provider takes no password: SMTP_AUTH=oauth2 with the local OAuth server's URLs."""
    servers = []

    def make(*, mechanisms=("XOAUTH2", "OAUTHBEARER"), disabled_reply=None, implicit_tls=False, **settings):
        smtp = oauth_smtp_server(
            auth_server, tls_context, implicit_tls=implicit_tls, mechanisms=mechanisms, disabled_reply=disabled_reply
        )
        servers.append(smtp)
        home = tmp_path / f"user{len(servers)}"
        home.mkdir()
        values = account_values(smtp.port, "ssl" if implicit_tls else "starttls", home)
        values.update(
            SMTP_CA_FILE=str(ca_file),
            SMTP_AUTH="oauth2",
            OAUTH_PROVIDER="microsoft",
            OAUTH_CLIENT_ID=auth_server.client_id,
            OAUTH_AUTHORIZE_URL=auth_server.authorize_url,
            OAUTH_DEVICE_URL=auth_server.device_url,
            OAUTH_TOKEN_URL=auth_server.token_url,
        )
        values.update({key: str(value) for key, value in settings.items()})
        account = Account(smtp, home / ".env", home, home / "log", clean_environ(home))
        account.write_env(**values)
        return account

    yield make
    for smtp in servers:
        smtp.stop()


def login_by_device(account: Account, auth_server: OAuthServer, *extra: str, approve: bool = True):
    """`send.py login`, approved (or declined) at the server once it shows the code, as the user would."""
    process = account.start("login", *extra)
    assert process.stdout is not None
    shown = []
    for line in process.stdout:
        shown.append(line)
        found = re.search(r"enter the code (\S+)", line)
        if found:
            if approve:
                auth_server.approve(found.group(1), USERNAME)
            else:
                auth_server.deny(found.group(1))
            break
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(shown) + out, err)


def secrets_of(auth_server: OAuthServer) -> list[str]:
    """Every token the server issued."""
    state = auth_server._state
    return [*state.access, *state.refresh, *state.devices, *state.codes]


def assert_no_token_in(account: Account, auth_server: OAuthServer, *outputs: str) -> None:
    """No token in any output, nor in any file of the account's folder except the keyring's own file."""
    from jobmail.smtp.client import sasl_response

    tokens = secrets_of(auth_server)
    assert tokens
    tokens += [sasl_response(kind, USERNAME, token) for token in tokens for kind in ("XOAUTH2", "OAUTHBEARER")]
    files = [p for p in account.home.rglob("*") if p.is_file() and "python_keyring" not in p.parts]
    texts = [*outputs, *(p.read_text("utf-8", "replace") for p in files)]
    for token in tokens:
        for text in texts:
            assert token[:24] not in text


def stored_refresh(account: Account) -> str:
    """The refresh token in the account's keyring, as jobmail reads it back."""
    settings = config.load(account.env_file, environ={})
    with keyring_of(account):
        return credentials.get_secret(settings.smtp_host, USERNAME, oauth.REFRESH, settings.keyring_backend)


# --- sign in, send, check ---------------------------------------------------------------------------


def test_login_by_device_code_then_send_and_check_with_a_refreshed_token(make_oauth_account, auth_server):
    account = make_oauth_account()
    signed = login_by_device(account, auth_server)
    assert signed.returncode == 0, signed.stderr
    assert f"open {auth_server.base_url}/devicelogin and enter the code" in signed.stdout
    assert "Signed in." in signed.stdout
    first_refresh = auth_server.issued_refresh_tokens(USERNAME)[-1]
    assert stored_refresh(account) == first_refresh  # kept in the keyring (in pieces: it is long)

    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    (message,) = account.server.messages
    assert b"Subject: Withdrawing my application" in message.data
    assert account.server.handler.logins == [("XOAUTH2", USERNAME)]
    assert [r["status"] for r in account.records()] == ["sending", "sent"]
    grants = [r["grant_type"] for r in auth_server.requests]
    assert grants[-1] == "refresh_token"  # the send refreshed the access token itself
    newest = auth_server.issued_refresh_tokens(USERNAME)[-1]
    assert newest != first_refresh and stored_refresh(account) == newest  # rotated, and stored back

    checked = account.run("check")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert re.search(r"sign-in \.\.\. ok \(access token refreshed, expires in (59|60) min, scopes: ", checked.stdout)
    assert f"login as {USERNAME}" in checked.stdout
    assert checked.stdout.index("sign-in") < checked.stdout.index("login as")
    assert_no_token_in(account, auth_server, signed.stdout, signed.stderr, sent.stdout, sent.stderr, checked.stdout)


def test_oauthbearer_where_the_server_offers_only_that(make_oauth_account, auth_server):
    account = make_oauth_account(mechanisms=("OAUTHBEARER",))
    assert login_by_device(account, auth_server).returncode == 0
    sent = account.run(*WITHDRAW_ARGS, "--debug")
    assert sent.returncode == 0, sent.stderr
    assert account.server.handler.logins == [("OAUTHBEARER", USERNAME)]
    assert_no_token_in(account, auth_server, sent.stdout, sent.stderr)


def send_when_due(make_oauth_account, auth_server, later: timedelta, meanwhile):
    """Sign in; queue a withdrawal `later` on a clock the test moves, in one long-running Outbox; take its
    token at once (as `send --at` checks the sign-in up front); let `meanwhile()` happen at the server;
    then run the outbox once it is due. Returns the account, the TokenSource and the first token."""
    from test_app_outbox import Clock

    from jobmail.app.outbox import Outbox
    from jobmail.app.requests import SendRequest
    from jobmail.app.sending import prepare

    account = make_oauth_account()
    assert login_by_device(account, auth_server).returncode == 0
    settings = config.load(account.env_file, environ={})
    clock = Clock(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday
    tokens = oauth.TokenSource(settings, clock=lambda: clock().timestamp())
    with keyring_of(account):
        outbox = Outbox(settings, clock=clock, password=tokens)
        request = SendRequest(
            "withdraw", to=("jordan.lee@acme.example.com",), interviewer="Jordan Lee", position="Data Analyst",
            company="Acme",
        )
        outbox.schedule(prepare(settings, request, clock()), clock() + later, "")
        outbox.check_password()
        first = tokens.current.access_token
        meanwhile()
        clock.set(clock() + later + timedelta(seconds=1))
        outbox.run_due()
    return account, tokens, first


def test_a_scheduled_send_uses_a_token_refreshed_when_it_is_due(make_oauth_account, auth_server):
    # two days later the Saturday token is long dead at the server
    account, tokens, saturday_token = send_when_due(
        make_oauth_account, auth_server, timedelta(days=2), auth_server.expire_access_tokens
    )
    assert len(account.server.messages) == 1
    assert tokens.current.access_token != saturday_token
    assert auth_server.user_for(tokens.current.access_token) == USERNAME


def test_a_token_the_server_ended_early_is_renewed_once_by_a_long_outbox_run(make_oauth_account, auth_server):
    # revoked at the server, though its own expiry is 50 minutes away
    account, tokens, first = send_when_due(
        make_oauth_account, auth_server, timedelta(minutes=10), auth_server.expire_access_tokens
    )
    assert len(account.server.messages) == 1
    assert tokens.current.access_token != first
    assert [login[0] for login in account.server.handler.logins] == ["XOAUTH2"]
    assert account.server.handler.failures  # the early-ended token was refused once, then a new one passed


def test_an_ended_token_whose_sign_in_was_revoked_too_fails_saying_sign_in_again(make_oauth_account, auth_server):
    def ended_and_revoked() -> None:
        auth_server.expire_access_tokens()
        auth_server.revoke(USERNAME)

    account, _, _ = send_when_due(make_oauth_account, auth_server, timedelta(minutes=10), ended_and_revoked)
    assert account.server.messages == []
    last = account.records()[-1]
    assert last["status"] == "failed" and "sign in again with" in last["error"]


def test_run_once_of_a_due_message_refreshes_the_token_in_that_process(make_oauth_account, auth_server):
    account = make_oauth_account()
    assert login_by_device(account, auth_server).returncode == 0
    queued = account.run(*WITHDRAW_ARGS, "--at", "+2d", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    auth_server.expire_access_tokens()
    (scheduled,) = account.records()
    sent = account.run("outbox", "send-now", scheduled["id"][:8])
    assert sent.returncode == 0, sent.stderr
    assert len(account.server.messages) == 1


# --- what goes wrong, and what the user is told ----------------------------------------------------


def test_a_revoked_sign_in_says_run_login_and_sends_nothing(make_oauth_account, auth_server):
    account = make_oauth_account()
    assert login_by_device(account, auth_server).returncode == 0
    auth_server.revoke(USERNAME)
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 2
    assert "has expired or was revoked (invalid_grant): run `python send.py login --env-file" in sent.stderr
    assert "Traceback" not in sent.stderr
    assert account.server.messages == []
    assert [r["status"] for r in account.records()] == ["failed"]
    assert_no_token_in(account, auth_server, sent.stdout, sent.stderr)


def test_not_signed_in_yet_says_run_login(make_oauth_account):
    account = make_oauth_account()
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 2
    assert "is not signed in" in sent.stderr and "send.py login" in sent.stderr
    checked = account.run("check")
    assert checked.returncode == 2 and "sign-in ... FAILED" in checked.stdout and "not signed in" in checked.stderr


def test_a_declined_device_code_stores_nothing(make_oauth_account, auth_server):
    account = make_oauth_account()
    declined = login_by_device(account, auth_server, approve=False)
    assert declined.returncode == 2
    assert "the sign-in was declined (access_denied): nothing was stored" in declined.stderr
    assert stored_refresh(account) == ""


def test_slow_down_makes_the_poll_wait_longer(settings_for, auth_server):
    settings = settings_for()
    auth_server.slow_down = 1
    code = oauth.start_device(settings)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            auth_server.approve(code.user_code, USERNAME)

    tokens = oauth.finish_device(settings, code, sleep=sleep)
    assert auth_server.user_for(tokens.access_token) == USERNAME
    assert waits[:2] == [code.interval, code.interval + 5]


def test_an_expired_device_code_says_run_login_again(settings_for, auth_server):
    settings = settings_for()
    code = oauth.start_device(settings)
    auth_server.expire_device_codes()
    with pytest.raises(SignInError, match=r"the code expired before it was approved \(expired_token\)"):
        oauth.finish_device(settings, code, sleep=lambda seconds: None)


def test_a_wrong_client_id_is_named(make_oauth_account, auth_server):
    account = make_oauth_account(OAUTH_CLIENT_ID="not-registered")
    result = account.run("login")
    assert result.returncode == 2
    assert "does not accept OAUTH_CLIENT_ID=not-registered (invalid_client" in result.stderr


def test_microsoft_365_with_smtp_auth_disabled_says_what_the_admin_must_switch_on(make_oauth_account, auth_server):
    account = make_oauth_account(disabled_reply=DISABLED)
    assert login_by_device(account, auth_server).returncode == 0
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 1
    assert "5.7.139" in sent.stderr and "Authenticated SMTP" in sent.stderr
    assert "SmtpClientAuthenticationDisabled $false" in sent.stderr
    assert account.server.messages == []


def test_a_password_refused_by_microsoft_points_to_oauth(make_account):
    from jobmail.smtp.explain import login_refused

    settings = config.from_values(account_values(587, "starttls", Path("/tmp")))
    problem = login_refused(535, "5.7.139 Authentication unsuccessful, basic authentication is disabled.", settings)
    assert "set SMTP_AUTH=oauth2" in str(problem.error())
    assert "python send.py login" in str(problem.error())


def test_an_unreachable_sign_in_server_is_retried_then_fails_with_exit_1(make_oauth_account, auth_server):
    account = make_oauth_account()
    assert login_by_device(account, auth_server).returncode == 0
    auth_server.stop()
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 1
    assert "cannot reach the sign-in server localhost:" in sent.stderr
    assert account.server.messages == []


def test_a_server_whose_certificate_does_not_verify_is_refused(make_oauth_account, auth_server, tmp_path):
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    account = make_oauth_account(SMTP_CA_FILE=str(other))
    result = account.run("login")
    assert result.returncode == 1
    assert "does not verify" in result.stderr


# --- the browser flow (authorization code with PKCE, loopback redirect) ------------------------------


def test_login_in_the_browser_with_pkce(make_oauth_account, auth_server, ca_file):
    account = make_oauth_account()
    auth_server.approve_next_authorization(USERNAME)
    account.env["BROWSER"] = f"{sys.executable} {BROWSER} %s"
    account.env["STAND_IN_CA_FILE"] = str(ca_file)
    result = account.run("login", "--browser")
    assert result.returncode == 0, result.stderr
    assert "Opening the sign-in page in your browser" in result.stdout
    (asked,) = auth_server.authorization_requests
    assert asked["code_challenge_method"] == "S256" and asked["redirect_uri"].startswith("http://127.0.0.1:")
    assert [r["grant_type"] for r in auth_server.requests] == ["authorization_code"]
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    assert len(account.server.messages) == 1
    assert_no_token_in(account, auth_server, result.stdout, result.stderr)


def test_a_redirect_with_another_state_is_refused(settings_for, auth_server):
    settings = settings_for()

    def forged_browser(url: str) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        forged = f"{query['redirect_uri']}?code=stolen&state=not-{query['state']}"
        threading.Thread(target=lambda: urllib.request.urlopen(forged, timeout=10).read(), daemon=True).start()

    with pytest.raises(SignInError, match="different state"):
        oauth.browser_signin(settings, forged_browser, wait=30)
    assert auth_server.requests == []  # the code was never exchanged


def test_google_has_no_device_flow_so_login_says_browser(make_oauth_account):
    account = make_oauth_account(OAUTH_PROVIDER="google", OAUTH_DEVICE_URL="")
    result = account.run("login", "--device")
    assert result.returncode == 2
    assert "no device sign-in" in result.stderr and "login --browser" in result.stderr


# --- an outside token helper ------------------------------------------------------------------------


def test_a_token_command_gives_the_token(make_oauth_account, auth_server, tmp_path):
    account = make_oauth_account()
    assert login_by_device(account, auth_server).returncode == 0
    settings = config.load(account.env_file, environ={})
    with keyring_of(account):
        token = oauth.TokenSource(settings)()
    helper = tmp_path / "helper.py"
    helper.write_text(f"print({token!r})\n", encoding="utf-8")
    account.write_env(
        **{**env_values(account), "OAUTH_TOKEN_COMMAND": f"{sys.executable} {helper}", "OAUTH_CLIENT_ID": ""}
    )
    requests_before = len(auth_server.requests)
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    assert len(auth_server.requests) == requests_before  # the helper's token, no refresh of ours
    assert len(account.server.messages) == 1
    assert token not in sent.stdout + sent.stderr


def test_a_token_command_that_prints_the_token_on_stderr_is_refused(settings_for, tmp_path):
    helper = tmp_path / "leaky.py"
    helper.write_text("import sys\nprint('tok-123456789')\nprint('got tok-123456789', file=sys.stderr)\n")
    settings = settings_for(OAUTH_TOKEN_COMMAND=f"{sys.executable} {helper}")
    with pytest.raises(SignInError, match="also prints the token on its error output") as caught:
        oauth.run_token_command(settings)
    assert "tok-123456789" not in str(caught.value)


# --- the keyring: long secrets in pieces -------------------------------------------------------------


def test_a_long_refresh_token_is_stored_in_pieces_each_small_enough_for_windows(keyring_home):
    long_token = "r" * 1500 + "s" * 1500
    credentials.set_secret("smtp.example.com", USERNAME, oauth.REFRESH, long_token)
    assert credentials.get_secret("smtp.example.com", USERNAME, oauth.REFRESH) == long_token
    import keyring

    service = credentials.service_name("smtp.example.com")
    pieces = [keyring.get_password(service, f"{USERNAME} {oauth.REFRESH} #{n}") for n in (1, 2, 3, 4)]
    assert [len(piece or "") for piece in pieces] == [1000, 1000, 1000, 0]
    credentials.set_secret("smtp.example.com", USERNAME, oauth.REFRESH, "short-token")
    assert credentials.get_secret("smtp.example.com", USERNAME, oauth.REFRESH) == "short-token"
    assert keyring.get_password(service, f"{USERNAME} {oauth.REFRESH} #1") is None  # the old pieces are gone
    assert credentials.delete_secret("smtp.example.com", USERNAME, oauth.REFRESH)
    assert credentials.get_secret("smtp.example.com", USERNAME, oauth.REFRESH) == ""


def test_each_piece_fits_the_windows_credential_limit():
    assert oauth_piece_bytes() <= 2560


def oauth_piece_bytes() -> int:
    return len(("x" * credentials.CHUNK).encode("utf-16-le"))


# --- settings ---------------------------------------------------------------------------------------


def test_oauth_settings_from_the_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "SMTP_HOST=smtp-mail.outlook.com\nFROM_ADDRESS=a@outlook.com\nFROM_NAME=A\nSMTP_AUTH=oauth2\n"
        "OAUTH_PROVIDER=microsoft\nOAUTH_CLIENT_ID=abc\nOAUTH_TENANT=consumers\n",
        encoding="utf-8",
    )
    settings = config.load(env, environ={})
    assert settings.oauth_device_url == "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode"
    assert settings.oauth_scope == "https://outlook.office.com/SMTP.Send offline_access"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SMTP_AUTH": "token"}, "SMTP_AUTH='token' is not one of password, oauth2"),
        ({"SMTP_AUTH": "oauth2", "OAUTH_PROVIDER": "microsoft"}, "needs OAUTH_CLIENT_ID"),
        ({"SMTP_AUTH": "oauth2", "OAUTH_PROVIDER": "yahoo", "OAUTH_CLIENT_ID": "x"}, "OAUTH_PROVIDER='yahoo'"),
        (
            {"SMTP_AUTH": "oauth2", "OAUTH_PROVIDER": "custom", "OAUTH_CLIENT_ID": "x", "OAUTH_TOKEN_URL": "http://x"},
            "OAUTH_TOKEN_URL='http://x' is not an https:// address",
        ),
        ({"SMTP_AUTH": "oauth2", "OAUTH_PROVIDER": "custom", "OAUTH_CLIENT_ID": "x"}, "needs OAUTH_TOKEN_URL"),
    ],
)
def test_unusable_oauth_settings_say_what_to_set(values, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.from_values(values)


# --- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def settings_for(auth_server, ca_file):
    def make(**values):
        return config.from_values(
            {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_USERNAME": USERNAME,
                "SMTP_CA_FILE": str(ca_file),
                "SMTP_AUTH": "oauth2",
                "OAUTH_PROVIDER": "custom",
                "OAUTH_CLIENT_ID": auth_server.client_id,
                "OAUTH_AUTHORIZE_URL": auth_server.authorize_url,
                "OAUTH_DEVICE_URL": auth_server.device_url,
                "OAUTH_TOKEN_URL": auth_server.token_url,
                "OAUTH_SCOPE": "https://outlook.office.com/SMTP.Send offline_access",
                "SEND_RETRY_DELAY": "0",
                **values,
            }
        )

    return make


def env_values(account: Account) -> dict[str, str]:
    lines = account.env_file.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


class keyring_of:  # noqa: N801 (used as a context manager, like a function)
    """The account's keyring (its keyrings.alt file) for in-process code."""

    def __init__(self, account: Account):
        self.account = account

    def __enter__(self):
        import os

        import keyring
        from keyrings.alt.file import PlaintextKeyring

        self.saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME", "LOCALAPPDATA")}
        os.environ["XDG_DATA_HOME"] = os.environ["LOCALAPPDATA"] = str(self.account.home / "data")
        self.previous = keyring.get_keyring()
        keyring.set_keyring(PlaintextKeyring())
        return self

    def __exit__(self, *exc):
        import os

        import keyring

        keyring.set_keyring(self.previous)
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the whole first hour, as the "Done when" reads ----------------------------------------------


def test_setup_login_check_send_and_a_scheduled_send_as_a_new_user(make_oauth_account, auth_server, ca_file):
    account = make_oauth_account()
    account.env_file.unlink()
    account.env.update(  # the stand-in for Microsoft's endpoints (a real user's preset has them)
        OAUTH_AUTHORIZE_URL=auth_server.authorize_url,
        OAUTH_DEVICE_URL=auth_server.device_url,
        OAUTH_TOKEN_URL=auth_server.token_url,
    )
    setup = account.run(
        "setup", "--address", USERNAME, "--name", "Alex Example", "--host", "127.0.0.1",
        "--port", str(account.server.port), "--security", "starttls", "--ca-file", str(ca_file),
        "--auth", "oauth2", "--oauth-provider", "microsoft", "--client-id", auth_server.client_id,
        "--keyring-backend", "keyrings.alt.file.PlaintextKeyring", "--env-file", str(account.env_file),
    )
    assert setup.returncode == 0, setup.stderr
    assert "Next, sign in" in setup.stdout and "send.py login" in setup.stdout
    written = env_values(account)
    assert written["SMTP_AUTH"] == "oauth2" and written["OAUTH_PROVIDER"] == "microsoft"
    assert written["OAUTH_CLIENT_ID"] == auth_server.client_id
    with open(account.env_file, "a", encoding="utf-8") as env:  # keep the run's own log in its temp folder
        env.write(f"LOG_DIR={account.log_dir}\nSEND_RETRY_DELAY=0\n")

    assert login_by_device(account, auth_server).returncode == 0
    checked = account.run("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    auth_server.expire_access_tokens()
    later = account.run(*WITHDRAW_ARGS[:-1], "Globex", "--at", "+2s")
    assert later.returncode == 0, later.stderr
    assert len(account.server.messages) == 2
    assert [login[0] for login in account.server.handler.logins] == ["XOAUTH2", "XOAUTH2", "XOAUTH2"]
    assert_no_token_in(account, auth_server, setup.stdout, checked.stdout, sent.stdout, later.stdout, later.stderr)


def test_setup_for_an_outlook_address_proposes_oauth2(tmp_path, make_oauth_account):
    account = make_oauth_account()
    env = tmp_path / "outlook.env"
    result = account.run(
        "setup", "--address", "alex@outlook.com", "--name", "Alex Example", "--client-id", "my-client-id",
        "--keyring-backend", "keyrings.alt.file.PlaintextKeyring", "--env-file", str(env),
    )
    assert result.returncode == 0, result.stderr
    assert "Log in with (password, oauth2): oauth2 (the default" in result.stdout
    assert "take no password or app password over SMTP since September 2024" in result.stdout
    text = env.read_text(encoding="utf-8")
    assert "SMTP_AUTH=oauth2" in text and "OAUTH_PROVIDER=microsoft" in text and "OAUTH_TENANT=common" in text
    assert "SMTP_HOST=smtp-mail.outlook.com" in text
    assert "IMAP_HOST=outlook.office365.com" in text  # the preset's IMAP server: track and the Sent folder


def test_the_provider_follows_from_a_known_smtp_host():
    settings = config.from_values({"SMTP_HOST": "smtp.gmail.com", "SMTP_AUTH": "oauth2", "OAUTH_CLIENT_ID": "x"})
    assert settings.oauth_provider == "google"
    assert settings.oauth_device_url == ""  # Google's device flow refuses the Gmail scope
    assert settings.oauth_scope == "https://mail.google.com/"


@pytest.mark.parametrize("args", [WITHDRAW_ARGS, ("check",), ("log",)], ids=["send", "check", "log"])
def test_the_password_path_never_imports_oauthlib(make_account, password, args):
    account = make_account("starttls")
    account.store_password(password)
    imported, code, stderr = imports_package(account, args, "oauthlib")
    assert not imported and code == 0, stderr
