"""The password lives only in the keyring: a real file backend in a temp dir, through the API and the CLI."""

from __future__ import annotations

import sys

import pytest

from jobmail.auth import credentials
from jobmail.errors import CredentialError


def test_set_get_delete_through_the_api(keyring_home, password):
    credentials.set_password("smtp.example.com", "alex@example.com", password)
    assert credentials.get_password("smtp.example.com", "alex@example.com") == password
    assert credentials.delete_password("smtp.example.com", "alex@example.com") is True
    assert credentials.delete_password("smtp.example.com", "alex@example.com") is False
    with pytest.raises(CredentialError, match="no password stored for alex@example.com at smtp.example.com"):
        credentials.get_password("smtp.example.com", "alex@example.com")


def test_accounts_never_collide(keyring_home):
    credentials.set_password("smtp.gmail.com", "alex@example.com", "first-secret")
    credentials.set_password("smtp.fastmail.com", "alex@example.com", "second-secret")
    credentials.set_password("smtp.gmail.com", "other@example.com", "third-secret")
    assert credentials.get_password("smtp.gmail.com", "alex@example.com") == "first-secret"
    assert credentials.get_password("smtp.fastmail.com", "alex@example.com") == "second-secret"
    assert credentials.get_password("smtp.gmail.com", "other@example.com") == "third-secret"


def test_the_keyring_file_lives_in_the_temp_dir(keyring_home, password):
    credentials.set_password("smtp.example.com", "alex@example.com", password)
    files = list((keyring_home / "data").rglob("*.cfg"))
    assert files, "the test keyring wrote nowhere under the temp dir"


def test_no_backend_explains_the_fix(keyring_home):
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    with pytest.raises(CredentialError) as caught:
        credentials.get_password("smtp.example.com", "alex@example.com")
    expected = {"linux": "keyrings.alt", "darwin": "Keychain"}.get(sys.platform, "Credential Manager")
    assert expected in str(caught.value)


def test_bad_backend_name_is_a_clear_error():
    with pytest.raises(CredentialError, match="KEYRING_BACKEND=nope.Nothing cannot be loaded"):
        credentials.get_password("smtp.example.com", "alex@example.com", backend="nope.Nothing")


def test_cli_password_set_from_stdin_then_delete(make_account, password):
    account = make_account("starttls")
    result = account.run("password", "set", "--stdin", "--env-file", str(account.env_file), input=password + "\n")
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    assert password not in account.env_file.read_text(encoding="utf-8")
    # the same backend, read back in-process
    import os

    os.environ["XDG_DATA_HOME"] = account.env["XDG_DATA_HOME"]
    try:
        from keyrings.alt.file import PlaintextKeyring

        assert PlaintextKeyring().get_password(credentials.service_name("127.0.0.1"), "alex@example.com") == password
    finally:
        del os.environ["XDG_DATA_HOME"]
    deleted = account.run("password", "delete", "--env-file", str(account.env_file))
    assert deleted.returncode == 0 and "Deleted" in deleted.stdout
    again = account.run("password", "delete", "--env-file", str(account.env_file))
    assert again.returncode == 0 and "No password was stored" in again.stdout


def test_cli_password_refuses_an_empty_pipe(make_account):
    account = make_account("starttls")
    result = account.run("password", "set", "--stdin", "--env-file", str(account.env_file), input="")
    assert result.returncode == 2 and "no password on standard input" in result.stderr


def test_cli_password_without_terminal_or_stdin_flag(make_account):
    account = make_account("starttls")
    result = account.run("password", "set", "--env-file", str(account.env_file), input="typed\n")
    assert result.returncode == 2 and "use --stdin" in result.stderr


def test_send_without_stored_password_says_how_to_store_it(make_account):
    from conftest import WITHDRAW_ARGS

    account = make_account("starttls")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2
    assert "no password stored" in result.stderr and "password set" in result.stderr
    assert account.server.messages == []
    assert account.records()[-1]["status"] == "failed"


def test_the_plaintext_file_backend_is_never_chosen_silently(make_account, password):
    """With keyrings.alt installed and nothing better, keyring would pick its file backend on its own."""
    account = make_account("starttls", KEYRING_BACKEND="")
    del account.env["PYTHON_KEYRING_BACKEND"]
    refused = account.run("password", "set", "--stdin", "--env-file", str(account.env_file), input=password + "\n")
    assert refused.returncode == 2
    assert "merely obscures the password" in refused.stderr and "KEYRING_BACKEND=keyrings.alt" in refused.stderr
    assert not list((account.home / "data").rglob("*.cfg"))  # nothing was written
    account.env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"  # named on purpose: used
    stored = account.run("password", "set", "--stdin", "--env-file", str(account.env_file), input=password + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "obscured but not encrypted" in stored.stdout
