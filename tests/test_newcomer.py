"""A newcomer's first hour (#15), tried the way it was reported: the CLI as a subprocess against the
loopback server, with the usual mistakes."""

from __future__ import annotations

from conftest import WITHDRAW_ARGS


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
