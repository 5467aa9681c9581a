"""A newcomer's first hour (#15), tried the way it was reported: the CLI as a subprocess against the
loopback server, with the usual mistakes."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import USERNAME, WITHDRAW_ARGS
from test_interrupts import read_until, rest_of, start_at_terminal

from jobmail.errors import InputError
from jobmail.loopback import LOOPBACK


def test_global_options_go_before_the_command_too(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run("--env-file", str(account.env_file), "--debug", *WITHDRAW_ARGS, env_file=False)
    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr and len(account.server.messages) == 1
    listed = account.run(f"--env-file={account.env_file}", "log", env_file=False)
    assert listed.returncode == 0 and "sent" in listed.stdout


def test_help_names_the_global_options_once(make_account):
    result = make_account("starttls").run("--help", env_file=False)
    assert result.stdout.count("--env-file PATH") == 1 and "before or after COMMAND" in result.stdout


def test_an_apostrophe_inside_single_quotes_says_how_to_quote_it(make_account):
    account = make_account("starttls")
    with open(account.env_file, "a", encoding="utf-8") as env:
        env.write("FROM_NAME='Seán O'Brien'\n")
    result = account.run("log")
    assert result.returncode == 2
    assert "unbalanced quote in the value of FROM_NAME: put double quotes around a value with an apostrophe" in (
        result.stderr
    )


def test_a_var_the_template_never_uses_is_named_with_the_nearest_one(make_account):
    account = make_account("starttls")
    result = account.run(*WITHDRAW_ARGS, "--var", "intervewer=Jo", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "warning: --var intervewer=... is not used by the template 'withdraw': did you mean --interviewer?" in (
        result.stdout
    )


def test_lint_without_values_shows_placeholders_and_checks_the_rest(make_account):
    result = make_account("starttls").run("lint", "withdraw")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: no value given for position, company: shown as [position], [company]" in result.stdout
    assert "0 error(s)" in result.stdout


def test_all_missing_variables_in_one_line_with_the_template_lines(make_account):
    result = make_account("starttls").run("send", "withdraw", "--to", "j@acme.example.com", "--dry-run")
    assert result.returncode == 2
    assert "needs the variables 'position' (line 1), 'company' (line 13)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- setup at a terminal ---------------------------------------------------------------------------------

pty_only = pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")


def answer(fd: int, prompt: str, text: str) -> str:
    shown = read_until(fd, prompt)
    os.write(fd, (text + "\n").encode())
    return shown


@pty_only
def test_setup_without_a_keyring_offers_the_choices_before_any_question(make_account, ca_file, password):
    account = make_account("starttls")
    new_env = account.home / "new.env"
    account.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # no usable keyring here
    process, fd = start_at_terminal(account, "setup", "--env-file", str(new_env))
    shown = answer(fd, "Which one?", "2")
    assert "Your email address" not in shown  # the keyring is settled first
    assert "1. A Secret Service" in shown and "2. A file in your home folder" in shown
    assert f"{sys.executable} " in shown  # commands name the interpreter actually running
    answer(fd, "Your email address", USERNAME)
    answer(fd, "Your name", "Alex Example")
    answer(fd, "SMTP server: ", LOOPBACK)
    answer(fd, "Port", str(account.server.port))
    answer(fd, "Security", "starttls")
    answer(fd, "SMTP_CA_FILE", str(ca_file))
    answer(fd, "Login name", "")
    answer(fd, "Password for", password)
    answer(fd, "Again", password)
    rest = rest_of(fd, process)
    assert process.returncode == 0, rest
    assert "The account works" in rest
    assert "KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring" in new_env.read_text(encoding="utf-8")


@pty_only
def test_setup_again_proposes_the_files_values_and_keeps_the_stored_password(make_account, ca_file, password):
    account = make_account("starttls")
    account.store_password(password)
    before = account.env_file.read_text(encoding="utf-8")
    process, fd = start_at_terminal(account, "setup", "--env-file", str(account.env_file))
    answer(fd, "Replace it?", "y")
    answer(fd, f"Your email address [{USERNAME}]", "")
    answer(fd, "Your name, as you sign your emails [Alex Example]", "")
    assert "SMTP server [" in answer(fd, f"[{LOOPBACK}]", "")
    answer(fd, f"Port [{account.server.port}]", "")
    answer(fd, "[starttls]", "")
    answer(fd, f"[{ca_file}]", "")
    answer(fd, "Login name", "")
    answer(fd, "Keep it? [Y/n]", "")
    rest = rest_of(fd, process)
    assert process.returncode == 0, rest
    assert "Kept the password already stored" in rest and "The account works" in rest
    assert "Password for" not in rest
    assert f"SMTP_PORT={account.server.port}" in account.env_file.read_text(encoding="utf-8") and before


# --- addresses ---------------------------------------------------------------------------------------


def test_test_domains_pass_with_a_server_on_this_machine_and_names_are_kept(make_account, password):
    account = make_account("starttls", FROM_ADDRESS="candidate@example.test", SMTP_USERNAME=USERNAME)
    account.store_password(password)
    args = [a if a != "jordan.lee@acme.example.com" else "Jordan Lee <hiring@acme.test>" for a in WITHDRAW_ARGS]
    result = account.run(*args)
    assert result.returncode == 0, result.stderr
    (received,) = account.server.messages
    assert received.rcpt_tos == ["hiring@acme.test"] and received.mail_from == "candidate@example.test"
    assert b"\r\nTo: Jordan Lee <hiring@acme.test>\r\n" in received.data


def test_a_test_domain_with_a_real_server_is_refused_saying_why():
    from jobmail import settings as config
    from jobmail.app.requests import SendRequest, envelope

    settings = config.from_values({"SMTP_HOST": "smtp.example.com", "FROM_ADDRESS": "a@example.com"})
    with pytest.raises(InputError, match=r"is at \.test, a name reserved for testing \(RFC 2606\)"):
        envelope(SendRequest("withdraw", to=("hiring@acme.test",)), settings)


def test_a_comma_typed_for_a_dot_is_reported_as_typed_with_a_guess(make_account):
    result = make_account("starttls").run(*WITHDRAW_ARGS[:2], "--to", "hiring@example,com", *WITHDRAW_ARGS[4:])
    assert result.returncode == 2
    assert "'hiring@example,com' is not a valid email address: did you mean hiring@example.com?" in result.stderr


def test_a_likely_misspelt_provider_domain_is_a_warning_not_a_refusal(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--cc", "jordan@gmial.com")
    assert result.returncode == 0, result.stderr
    assert "warning: jordan@gmial.com: did you mean @gmail.com?" in result.stdout
    assert account.server.messages[0].rcpt_tos == ["jordan.lee@acme.example.com", "jordan@gmial.com"]
