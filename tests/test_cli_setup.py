"""`setup` and `check`: from nothing to a verified account, and a hint for every way it can fail.

Everything runs against the loopback server (STARTTLS, implicit TLS, AUTH, trustme certificates) and
the file keyring in a temp folder. No outside name is ever looked up.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from conftest import KEYRING_BACKEND, USERNAME, WITHDRAW_ARGS

from jobmail import providers
from jobmail import settings as config
from jobmail.app.account import quote, render_env
from jobmail.auth.credentials import service_name
from jobmail.loopback import LOOPBACK, free_port
from jobmail.smtp.diagnose import explain, keyring_guidance


def stored_password(account, host: str, username: str, monkeypatch) -> str | None:
    """Read the subprocess's keyring file back with keyring's own API (same XDG_DATA_HOME)."""
    from keyring.core import load_keyring

    monkeypatch.setenv("XDG_DATA_HOME", account.env["XDG_DATA_HOME"])
    monkeypatch.setenv("LOCALAPPDATA", account.env["LOCALAPPDATA"])
    return load_keyring(KEYRING_BACKEND).get_password(service_name(host), username)


def env_values(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path, interpolate=False))


def setup_flags(account, env_file: Path, ca_file: Path, security: str = "starttls", *extra: str) -> list[str]:
    return [
        "setup",
        "--address",
        USERNAME,
        "--name",
        "Alex Example",
        "--host",
        LOOPBACK,
        "--port",
        str(account.server.port),
        "--security",
        security,
        "--ca-file",
        str(ca_file),
        "--password-stdin",
        "--env-file",
        str(env_file),
        *extra,
    ]


def assert_steps_ok(stdout: str, port: int) -> None:
    assert f"connect {LOOPBACK}:{port} ... ok" in stdout
    assert "TLS ... ok (TLSv1." in stdout and "certificate: " in stdout
    assert f"keyring: password found in {KEYRING_BACKEND}" in stdout
    assert f"login as {USERNAME} ... ok" in stdout
    assert "The account works" in stdout


# --- setup, then check ---------------------------------------------------------------------------


def test_setup_through_flags_writes_an_env_that_check_accepts(make_account, password, ca_file, tmp_path, monkeypatch):
    account = make_account("starttls")
    new_env = tmp_path / "fresh.env"
    result = account.run(*setup_flags(account, new_env, ca_file), input=password + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_steps_ok(result.stdout, account.server.port)
    assert password not in result.stdout + result.stderr
    text = new_env.read_text(encoding="utf-8")
    assert password not in text and not re.search(r"(?mi)^[#\s]*\w*PASS\w*\s*=", text)
    expected = {
        "SMTP_HOST": LOOPBACK,
        "SMTP_PORT": str(account.server.port),
        "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": USERNAME,
        "SMTP_CA_FILE": str(ca_file.resolve()),
        "FROM_ADDRESS": USERNAME,
        "FROM_NAME": "Alex Example",
        "KEYRING_BACKEND": KEYRING_BACKEND,
    }
    values = env_values(new_env)
    assert {key: values.get(key) for key in expected} == expected
    # the keys come in config.example.env's order, with its comments
    keys = [line.split("=")[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert keys[:4] == ["SMTP_HOST", "SMTP_SECURITY", "SMTP_PORT", "SMTP_USERNAME"]
    assert "# The server's certificate and host name are always verified" in text
    assert stored_password(account, LOOPBACK, USERNAME, monkeypatch) == password

    check = account.run("check", "--env-file", str(new_env))
    assert check.returncode == 0, check.stdout + check.stderr
    assert_steps_ok(check.stdout, account.server.port)
    assert account.server.auth_attempts == [USERNAME, USERNAME]
    assert account.server.messages == []  # a check sends nothing


def test_setup_scripted_prompts_for_an_unknown_domain(make_account, password, ca_file, tmp_path, monkeypatch):
    account = make_account("starttls")
    new_env = tmp_path / "asked.env"
    answers = [
        USERNAME,  # address: example.com is in no provider table
        "Alex Example",
        LOOPBACK,  # SMTP server
        str(account.server.port),
        "starttls",
        str(ca_file),
        "",  # login name: Enter takes the address
        password,
    ]
    result = account.run("setup", "--env-file", str(new_env), input="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "No built-in settings for example.com" in out
    for prompt in ("Your email address:", "SMTP server:", "Port [587]:", "Security (starttls, ssl, none) [starttls]:"):
        assert prompt in out
    assert f"Login name [{USERNAME}]:" in out
    assert_steps_ok(out, account.server.port)
    assert password not in out + result.stderr
    values = env_values(new_env)
    assert values["SMTP_HOST"] == LOOPBACK and values["SMTP_PORT"] == str(account.server.port)
    assert values["SMTP_USERNAME"] == USERNAME and values["KEYRING_BACKEND"] == KEYRING_BACKEND
    assert stored_password(account, LOOPBACK, USERNAME, monkeypatch) == password


def test_setup_answered_none_asks_no_certificate_and_no_password(make_account, tmp_path):
    account = make_account("none", auth=False)
    no_keyring = "keyring.backends.fail.Keyring"  # none usable: a local server without login needs none
    account.env = {**account.env, "LOG_DIR": str(account.log_dir), "PYTHON_KEYRING_BACKEND": no_keyring}
    new_env = tmp_path / "local.env"
    answers = [USERNAME, "Alex Example", LOOPBACK, str(account.server.port), "none", ""]  # "": login name
    result = account.run("setup", "--env-file", str(new_env), input="\n".join(answers) + "\n", env_file=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SMTP_CA_FILE" not in result.stdout and "Password for" not in result.stdout
    assert "No password stored" in result.stdout and "login ... skipped" in result.stdout
    assert env_values(new_env)["SMTP_SECURITY"] == "none"

    # the same machine, answering starttls: told there is no keyring once the answers say a login follows
    other_env = tmp_path / "tls.env"
    answers[-2] = "starttls"
    refused = account.run("setup", "--env-file", str(other_env), input="\n".join(answers) + "\n", env_file=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no usable keyring backend" in refused.stdout + refused.stderr
    assert "Nothing was written." in refused.stdout and not other_env.exists()


def test_setup_scripted_prompts_for_a_known_provider(make_account, password, ca_file, tmp_path):
    account = make_account("ssl")  # implicit TLS, port-465 style
    new_env = tmp_path / "gmail.env"
    answers = [
        "alex@gmail.com",
        "Alex Example",
        LOOPBACK,  # not the proposed smtp.gmail.com: point it at the local server
        str(account.server.port),
        "ssl",
        str(ca_file),
        USERNAME,
        password,
    ]
    result = account.run("setup", "--env-file", str(new_env), input="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Gmail / Google Workspace: smtp.gmail.com, port 587, starttls." in out
    assert "SMTP server [smtp.gmail.com]:" in out
    assert "Security (starttls, ssl, none) [starttls]:" in out
    assert_steps_ok(out, account.server.port)
    values = env_values(new_env)
    assert values["FROM_ADDRESS"] == "alex@gmail.com" and values["SMTP_USERNAME"] == USERNAME
    assert values["SMTP_SECURITY"] == "ssl"


@pytest.mark.parametrize(
    ("address", "host", "port", "security", "note"),
    [
        ("alex@gmail.com", "smtp.gmail.com", "587", "starttls", "app password"),
        ("alex@icloud.com", "smtp.mail.me.com", "587", "starttls", "app-specific password"),
        ("alex@yahoo.com", "smtp.mail.yahoo.com", "465", "ssl", "app password"),
        ("alex@proton.me", "127.0.0.1", "1025", "starttls", "SMTP_CA_FILE"),
    ],
)
def test_setup_proposes_the_providers_settings_and_note(
    make_account, password, tmp_path, address, host, port, security, note
):
    account = make_account("starttls")
    new_env = tmp_path / "provider.env"
    argv = ["setup", "--address", address, "--name", "Alex Example", "--password-stdin", "--no-check"]
    result = account.run(*argv, "--env-file", str(new_env), input=password + "\n")  # no connection is made
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{host}, port {port}, {security}" in result.stdout
    assert note in result.stdout
    values = env_values(new_env)
    assert (values["SMTP_HOST"], values["SMTP_PORT"], values["SMTP_SECURITY"]) == (host, port, security)
    assert values["SMTP_USERNAME"] == address


def test_two_env_files_are_two_accounts_whose_passwords_never_collide(make_account, password, ca_file, tmp_path):
    account = make_account("starttls")
    work, other = tmp_path / "work.env", tmp_path / "other.env"
    first = account.run(*setup_flags(account, work, ca_file), input=password + "\n")
    assert first.returncode == 0, first.stdout + first.stderr
    # same host, another username, another (wrong for this server) password
    argv = setup_flags(account, other, ca_file)
    argv[argv.index("--address") + 1] = "sam@example.com"
    second = account.run(*argv, input="another-password\n")
    assert second.returncode == 1  # the server knows only alex
    assert "535" in second.stderr
    assert account.run("check", "--env-file", str(work)).returncode == 0  # alex's password is untouched
    again = account.run("check", "--env-file", str(other))
    assert again.returncode == 1 and "login as sam@example.com ... FAILED (535" in again.stdout


def test_an_existing_env_is_not_replaced_without_yes(make_account, password, ca_file):
    account = make_account("starttls")
    before = account.env_file.read_text(encoding="utf-8") + "# my own note\n"
    account.env_file.write_text(before, encoding="utf-8")
    result = account.run(*setup_flags(account, account.env_file, ca_file), input=password + "\n")
    assert result.returncode == 2
    assert "exists" in result.stderr and "--yes" in result.stderr
    assert account.env_file.read_text(encoding="utf-8") == before
    replaced = account.run(*setup_flags(account, account.env_file, ca_file, "starttls", "--yes"), input=password + "\n")
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert "# my own note" not in account.env_file.read_text(encoding="utf-8")


def test_setup_with_stdin_reserved_for_the_password_asks_nothing(make_account, password, tmp_path):
    account = make_account("starttls")
    new_env = tmp_path / "missing.env"
    result = account.run(
        "setup", "--address", "alex@example.org", "--password-stdin", "--env-file", str(new_env), input=password + "\n"
    )
    assert result.returncode == 2
    assert "give --name" in result.stderr
    assert password not in result.stdout + result.stderr
    assert not new_env.exists()


def test_setup_scripted_input_that_ends_early_is_an_error(make_account, tmp_path):
    account = make_account("starttls")
    new_env = tmp_path / "short.env"
    result = account.run("setup", "--env-file", str(new_env), input="alex@example.org\nAlex Example\n")
    assert result.returncode == 2
    assert "no answer for smtp server" in result.stderr and "--host" in result.stderr
    assert not new_env.exists()


def test_setup_refuses_a_bad_port(make_account, password, ca_file, tmp_path):
    account = make_account("starttls")
    argv = setup_flags(account, tmp_path / "bad.env", ca_file)
    argv[argv.index("--port") + 1] = "99999"
    result = account.run(*argv, input=password + "\n")
    assert result.returncode == 2 and "SMTP_PORT=99999 is out of range" in result.stderr
    assert not (tmp_path / "bad.env").exists()


# --- check: each failure has its hint and exit code ----------------------------------------------


def test_check_wrong_password_hints_at_an_app_password(make_account):
    account = make_account("starttls")
    account.store_password("not-the-password")
    result = account.run("check")
    assert result.returncode == 1
    assert f"login as {USERNAME} ... FAILED (535" in result.stdout
    assert "535" in result.stderr and "app password" in result.stderr and "password set" in result.stderr
    assert "The account does not work yet" in result.stdout


def test_check_ssl_against_a_starttls_port_says_wrong_version(make_account, password):
    account = make_account("starttls", SMTP_SECURITY="ssl")
    account.store_password(password)
    result = account.run("check")
    assert result.returncode == 1
    assert f"connect {LOOPBACK}:{account.server.port} ... ok" in result.stdout
    assert "TLS ... FAILED" in result.stdout
    assert "wrong version number" in result.stderr and "SMTP_SECURITY=starttls" in result.stderr
    assert account.server.auth_attempts == []


IMPLICIT_TLS_FIX = "this port speaks TLS from the first byte: set SMTP_SECURITY=ssl (port 465)"


def test_check_starttls_against_an_implicit_tls_port_says_use_ssl(make_account, password):
    # SMTP_TIMEOUT=30: a check that waited for the greeting would run into pytest's timeout
    account = make_account("ssl", SMTP_SECURITY="starttls", SMTP_TIMEOUT="30")
    account.store_password(password)
    result = account.run("check")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"connect {LOOPBACK}:{account.server.port} ... FAILED"
    assert "TLS ..." not in result.stdout and "The account does not work yet: the connect step" in result.stdout
    error = result.stderr.strip()
    assert error.startswith(f"error: {LOOPBACK}:{account.server.port} sent no SMTP greeting while connecting")
    assert error.endswith(IMPLICIT_TLS_FIX) and "SMTP_TIMEOUT" not in error
    assert account.server.auth_attempts == []


def test_setup_with_starttls_for_an_implicit_tls_port_says_so_in_its_check(make_account, password, ca_file, tmp_path):
    account = make_account("ssl")
    new_env = tmp_path / "fresh.env"
    result = account.run(*setup_flags(account, new_env, ca_file, "starttls"), input=password + "\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert env_values(new_env).get("SMTP_TIMEOUT", "") in ("", "30")  # the default: a wait would be 30 s
    assert f"connect {LOOPBACK}:{account.server.port} ... FAILED" in result.stdout
    assert "saved all the same" in result.stdout
    assert IMPLICIT_TLS_FIX in result.stderr and "SMTP_TIMEOUT" not in result.stderr
    assert account.server.auth_attempts == []


def test_check_untrusted_certificate_points_to_smtp_ca_file(make_account, password):
    account = make_account("starttls", ca=False)
    account.store_password(password)
    result = account.run("check")
    assert result.returncode == 1
    assert "TLS ... FAILED" in result.stdout
    assert "not trusted" in result.stderr and "SMTP_CA_FILE" in result.stderr
    assert account.server.auth_attempts == []


def test_check_connection_refused(make_account, password):
    account = make_account("starttls", SMTP_PORT=str(free_port()))
    account.store_password(password)
    result = account.run("check")
    assert result.returncode == 1
    assert "refused the connection" in result.stderr and "SMTP_PORT" in result.stderr


def test_host_not_found_hint():
    settings = config.from_values({"SMTP_HOST": "smtp.nowhere.invalid", "SMTP_PORT": "587"})
    failure = explain(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), settings, "connect")
    assert failure.problem == "the host smtp.nowhere.invalid was not found (Name or service not known)"
    assert "SMTP_HOST" in failure.hint and failure.exit_code == 1


def test_timeout_on_connect_hints_at_a_firewall():
    settings = config.from_values({"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "465", "SMTP_SECURITY": "ssl"})
    failure = explain(TimeoutError("timed out"), settings, "connect")
    assert "smtp.example.com:465 did not answer within 30s while connecting" in failure.problem
    assert "firewall" in failure.hint


def test_check_a_local_server_without_tls_or_login(make_account):
    account = make_account("none", auth=False)
    result = account.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TLS ... off (SMTP_SECURITY=none" in result.stdout
    assert "login ... skipped" in result.stdout and "keyring:" not in result.stdout
    assert account.server.messages == []


def test_a_local_server_without_login_needs_no_keyring(make_account):
    """SMTP_SECURITY=none to a server that asks for no login: no password is involved, so a machine
    without a keyring can still check and send (as the send itself never reads the keyring then)."""
    account = make_account("none", auth=False, KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = account.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "login ... skipped" in result.stdout and "keyring" not in result.stdout
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    assert len(account.server.messages) == 1


def test_a_local_server_that_asks_for_login_needs_the_keyring(make_account):
    account = make_account("none", auth=True, KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = account.run("check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no usable keyring backend" in result.stdout + result.stderr


def test_setup_for_a_local_test_server_stores_no_password(make_account, tmp_path):
    """README, "A test server on this machine": --security none to a server that asks for no login
    writes the settings and checks them without a password or a keyring (none is usable here)."""
    account = make_account("none", auth=False)
    no_keyring = "keyring.backends.fail.Keyring"
    account.env = {**account.env, "PYTHON_KEYRING_BACKEND": no_keyring, "LOG_DIR": str(account.log_dir)}
    new_env = tmp_path / "test.env"
    argv = ["setup", "--env-file", str(new_env), "--address", USERNAME, "--name", "Alex Example"]
    argv += ["--host", LOOPBACK, "--port", str(account.server.port), "--security", "none", "--yes"]
    result = account.run(*argv, env_file=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No password stored" in result.stdout and "login ... skipped" in result.stdout
    values = env_values(new_env)
    assert values["SMTP_SECURITY"] == "none" and "KEYRING_BACKEND" not in values
    sent = account.run(*WITHDRAW_ARGS, "--env-file", str(new_env), env_file=False)
    assert sent.returncode == 0, sent.stderr
    assert len(account.server.messages) == 1


def test_setup_none_keeps_a_named_keyring_backend_for_a_later_password(make_account, password, tmp_path):
    account = make_account("none", auth=True)  # a local server that does ask for a login
    account.env = {**account.env, "LOG_DIR": str(account.log_dir)}
    new_env = tmp_path / "local.env"
    argv = ["setup", "--env-file", str(new_env), "--address", USERNAME, "--name", "Alex Example"]
    argv += ["--host", LOOPBACK, "--port", str(account.server.port), "--security", "none", "--yes"]
    bad = account.run(*argv, "--keyring-backend", "no.such.Backend", env_file=False)
    assert bad.returncode == 2 and "Nothing was written." in bad.stdout and not new_env.exists()
    result = account.run(*argv, "--keyring-backend", KEYRING_BACKEND, env_file=False)
    assert result.returncode == 2, result.stdout + result.stderr  # the check: no password stored yet
    assert env_values(new_env)["KEYRING_BACKEND"] == KEYRING_BACKEND
    assert "`python send.py password set --env-file " in result.stdout + result.stderr
    stored = account.run("password", "set", "--stdin", "--env-file", str(new_env), input=password + "\n")
    assert stored.returncode == 0, stored.stderr
    check = account.run("check", "--env-file", str(new_env), env_file=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"login as {USERNAME} ... ok" in check.stdout


def test_guided_setup_without_a_keyring_stops_once_a_remote_server_is_named(make_account, tmp_path):
    account = make_account("starttls")
    account.env = {**account.env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    new_env = tmp_path / "remote.env"
    answers = [USERNAME, "Alex Example", "smtp.example.org", "587", "starttls"]
    result = account.run("setup", "--env-file", str(new_env), input="\n".join(answers) + "\n", env_file=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no usable keyring backend" in result.stdout + result.stderr
    assert "Port" not in result.stdout  # stopped at the server's name, before more questions
    assert "Nothing was written." in result.stdout and not new_env.exists()


def test_check_without_a_stored_password_exits_2(make_account):
    account = make_account("starttls")
    result = account.run("check")
    assert result.returncode == 2
    assert "TLS ... ok" in result.stdout  # it got that far
    assert "no password is stored" in result.stderr and "password set" in result.stderr
    assert account.server.auth_attempts == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("SMTP_PASS=x", "looks like a password"),
        ("COLOUR=blue", "unknown key COLOUR"),
        ("SMTP_PORT=x", "SMTP_PORT"),
    ],
)
def test_check_with_bad_config_exits_2(make_account, line, message):
    account = make_account("starttls")
    account.env_file.write_text(account.env_file.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    result = account.run("check")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert account.server.auth_attempts == []


def test_no_keyring_backend_explains_the_choices(make_account, password, ca_file, tmp_path):
    account = make_account("starttls", without=("KEYRING_BACKEND",))
    account.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    result = account.run("check")
    assert result.returncode == 2
    assert "no usable keyring backend" in result.stderr
    assert "keyrings.alt" in result.stderr and "only obscures" in result.stderr
    assert "PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring" in result.stderr
    new_env = tmp_path / "nokeyring.env"
    setup = account.run(*setup_flags(account, new_env, ca_file), input=password + "\n")
    assert setup.returncode == 2
    assert "no usable keyring backend" in setup.stderr and "--keyring-backend" in setup.stderr
    assert not new_env.exists()
    assert account.server.auth_attempts == []


def test_keyring_guidance_names_each_platforms_choices():
    assert any("Secret Service" in line for line in keyring_guidance("linux", {}))
    assert any("Keychain" in line for line in keyring_guidance("darwin", {}))
    assert any("Credential Manager" in line for line in keyring_guidance("win32", {}))
    assert all(any("keyrings.alt" in line for line in keyring_guidance(p, {})) for p in ("linux", "darwin", "win32"))


# --- the provider table and the .env writer --------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("a@gmail.com", "gmail"),
        ("a@googlemail.com", "gmail"),
        ("a@hotmail.com", "outlook"),
        ("a@live.com", "outlook"),
        ("a@outlook.com", "outlook"),
        ("a@contoso.onmicrosoft.com", "office365"),
        ("a@yahoo.com", "yahoo"),
        ("a@icloud.com", "icloud"),
        ("a@me.com", "icloud"),
        ("a@mac.com", "icloud"),
        ("a@fastmail.com", "fastmail"),
        ("a@zohomail.com", "zoho"),
        ("a@proton.me", "proton"),
        ("a@protonmail.com", "proton"),
        ("a@gmx.de", "gmx"),
        ("a@gmx.com", "gmx-com"),
        ("A@GMAIL.COM", "gmail"),
    ],
)
def test_provider_table_matches_the_domain(address, key):
    assert providers.for_address(address).key == key


def test_provider_table_leaves_other_domains_and_hosts_alone():
    assert providers.for_address("a@example.com") is None
    assert providers.for_address("a@notgmail.com") is None
    assert providers.for_host("smtp.gmail.com").key == "gmail"  # Google Workspace on your own domain
    assert providers.for_host("office365").host == "smtp.office365.com"
    assert providers.for_host("127.0.0.1") is None  # could be any local server, not only Proton's Bridge


def test_env_values_survive_a_round_trip(tmp_path):
    odd = {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_SECURITY": "ssl",
        "SMTP_PORT": "465",
        "SMTP_USERNAME": "alex@example.com",
        "FROM_ADDRESS": "alex@example.com",
        "FROM_NAME": 'Zoë "Z" O\'Brien #1 $HOME \\o/',
    }
    path = tmp_path / "odd.env"
    path.write_text(render_env(odd), encoding="utf-8")
    settings = config.load(path, environ={})
    assert settings.from_name == odd["FROM_NAME"]
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("smtp.example.com", 465, "ssl")
    assert settings.smtp_ca_file is None  # left commented out, as in config.example.env
    assert quote("C:\\certs\\bridge.pem") == '"C:\\\\certs\\\\bridge.pem"'


def test_a_misplaced_scripted_answer_is_never_shown(make_account, tmp_path):
    """A password piped where the server name was expected is neither echoed nor quoted in the error."""
    account = make_account("starttls")
    new_env = tmp_path / "misplaced.env"
    secret = "my secret app pass"
    result = account.run("setup", "--env-file", str(new_env), input=f"{USERNAME}\nAlex Example\n{secret}\n")
    assert result.returncode == 2
    assert secret not in result.stdout + result.stderr
    assert "SMTP server: the answer read from standard input was refused" in result.stderr
    assert not new_env.exists()


def test_none_against_a_server_that_offers_starttls_is_not_called_working(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    env_text = account.env_file.read_text(encoding="utf-8").replace("SMTP_SECURITY=starttls", "SMTP_SECURITY=none")
    account.env_file.write_text(env_text, encoding="utf-8")
    check = account.run("check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert "offers STARTTLS" in check.stdout + check.stderr and "SMTP_SECURITY=starttls" in check.stdout + check.stderr
    send = account.run("send", "withdraw", "--to", "j@acme.example.com", "--position", "Analyst", "--company", "Acme")
    assert send.returncode == 1
    assert "530" in send.stderr and "set SMTP_SECURITY=starttls" in send.stderr
    assert account.server.messages == [] and account.server.auth_attempts == []
