"""The entry point: help, version, start-up imports, and the fast paths matching the full parser."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import PROJECT, SEND_PY

from jobmail.cli import COMMANDS, build_parser


def run(*args: str, **kwargs):
    return subprocess.run(
        [sys.executable, str(SEND_PY), *args], capture_output=True, text=True, cwd=PROJECT, timeout=60, **kwargs
    )


def test_help_lists_every_command_and_the_exit_codes():
    result = run("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"    {name} " in result.stdout
    assert "exit codes: 0 sent or queued, 1 the send failed, 2 bad input or config" in result.stdout


def test_fast_help_matches_the_full_parser():
    """--help lists the commands without importing them: it must say what the full parser says."""
    assert build_parser(listing_only=True).format_help() == build_parser().format_help()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_alone_parses_as_in_the_full_parser(name):
    alone = build_parser(only=name)._subparsers._group_actions[0].choices[name]
    full = build_parser()._subparsers._group_actions[0].choices[name]
    assert alone.format_help() == full.format_help()


def test_unknown_command_is_exit_2_with_the_choices():
    result = run("sned")
    assert result.returncode == 2
    assert "invalid choice: 'sned'" in result.stderr and "send" in result.stderr
    assert "Traceback" not in result.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("send.py ")


def test_runs_as_a_module_file_from_another_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SEND_PY), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0 and "usage: send.py" in result.stdout


def test_a_log_dir_that_is_a_file_is_one_clear_line(make_account):
    account = make_account("starttls")
    not_a_folder = account.home / "afile"
    not_a_folder.write_text("x", encoding="utf-8")
    account.write_env(
        SMTP_HOST="127.0.0.1", FROM_ADDRESS="alex@example.com", FROM_NAME="Alex Example", LOG_DIR=str(not_a_folder)
    )
    for args in (("log",), ("outbox",)):
        result = account.run(*args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and "LOG_DIR" in lines[0], result.stderr


def test_a_missing_package_says_which_python_to_use(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "log"))
    for name in ("aiosmtpd", "aiosmtpd.controller", "aiosmtpd.smtp"):  # as if this Python lacked the package
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "jobmail.loopback", raising=False)  # imports aiosmtpd at its top
    from jobmail.cli import main

    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "the package 'aiosmtpd' is not installed for this Python" in err and ".venv/bin/python send.py" in err
    assert "Traceback" not in err


def test_an_old_python_is_told_what_it_needs():
    import shutil

    def runs(path):
        return path and subprocess.run([path, "-c", "pass"], capture_output=True, timeout=30).returncode == 0

    import glob
    import os

    candidates = [shutil.which("python3.10"), shutil.which("python3.9")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0]*/bin/python")))
    old = next((p for p in candidates if runs(p)), None)
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine")
    result = subprocess.run([old, str(SEND_PY), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "jobmail needs Python 3.11 or newer" in result.stderr and "Traceback" not in result.stderr


def one_error(result) -> str:
    """The single `error:` line of a failed command (and no traceback)."""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_mistakes_a_newcomer_made_get_the_right_hint(make_account):
    from conftest import WITHDRAW_ARGS

    account = make_account("starttls")
    empty_at = account.run(*WITHDRAW_ARGS, "--dry-run", "--at", "")
    assert empty_at.returncode == 2 and "--at needs a time" in one_error(empty_at)
    negative = account.run(*WITHDRAW_ARGS, "--dry-run", "--at", "-1h")
    assert negative.returncode == 2 and 'cannot understand the time "-1h": use now, +45m' in one_error(negative)

    queued = account.run(*WITHDRAW_ARGS, "--dry-run", "--at", "+2d")
    assert queued.returncode == 0, queued.stderr
    assert "without --dry-run to queue it for that time." in queued.stdout
    now = account.run(*WITHDRAW_ARGS, "--dry-run")
    assert "without --dry-run to send it." in now.stdout

    values = {"SMTP_HOST": "127.0.0.1", "FROM_ADDRESS": "alex@example.com", "FROM_NAME": "Alex Example"}
    account.write_env(**values, TEMPLATES_DIR=str(account.home / "no-such-folder"))
    missing = account.run(*WITHDRAW_ARGS, "--dry-run")
    assert missing.returncode == 2
    assert f"templates folder {account.home / 'no-such-folder'} does not exist" in one_error(missing)

    account.write_env(**{**values, "FROM_ADDRESS": "alex@"})
    bad = one_error(account.run("log"))
    assert bad.startswith(f"error: {account.env_file}, line 2: FROM_ADDRESS: 'alex@' is not a valid email address")
    assert "the environment" not in bad and not bad.endswith(".")

    account.env_file.unlink()
    no_account = account.run("password", "set", "--stdin", env_file=False, input="x\n")
    assert no_account.returncode != 0 and "python send.py setup" in one_error(no_account)


def test_suggested_commands_carry_the_env_file_that_was_given(make_account, password):
    import re
    import shlex

    from conftest import WITHDRAW_ARGS

    account = make_account("starttls")
    account.store_password(password)
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    hint = re.search(r"`(python send\.py log show \w+ --env-file [^`]+)`", sent.stdout)
    assert hint is not None, sent.stdout
    again = account.run(*shlex.split(hint.group(1))[2:], env_file=False)  # exactly as suggested
    assert again.returncode == 0 and "Message " in again.stdout, again.stderr


def test_with_env_file_adds_it_to_each_suggested_command():
    import os
    import shlex

    from jobmail.cli.output import Console, shell_quoted
    from jobmail.errors import Command

    console = Console(env_file="my $work [1].env")
    given = shell_quoted(os.path.abspath("my $work [1].env"))  # absolute: right from cron's folder too
    parts = (
        "see ",
        Command("log", "show", "ab12"),
        ", or ",
        Command("log", "show", "ab12", "--raw", ">", "copy.eml"),
    )
    assert console.render(parts) == (
        f"see `python send.py log show ab12 --env-file {given}`, "
        f"or `python send.py log show ab12 --raw --env-file {given} > copy.eml`"
    )
    if os.name != "nt":  # one word to a POSIX shell, whatever the path holds
        assert shlex.split(given) == [os.path.abspath("my $work [1].env")]
    kept = (Command("setup", "--env-file", "other.env"), ", ", Command("..."), ", `ls`")
    assert console.render(kept) == "`python send.py setup --env-file other.env`, `python send.py ...`, `ls`"
    assert Console(env_file=None).render(parts) == (
        "see `python send.py log show ab12`, or `python send.py log show ab12 --raw > copy.eml`"
    )


def test_the_message_shown_is_never_rewritten_by_the_env_file_hints(make_account, password):
    """Suggested commands get --env-file; the user's own data (the message, its records) never does."""
    from conftest import WITHDRAW_ARGS

    account = make_account("starttls")
    account.store_password(password)
    odd = "Acme `python send.py log show` Labs"  # a company name that looks like one of our hints
    preview = account.run(*WITHDRAW_ARGS[:-1], odd, "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert odd in preview.stdout and "--env-file" not in preview.stdout.split("--- the message")[1].split(">>>")[0]
    sent = account.run(*WITHDRAW_ARGS[:-1], odd)
    assert sent.returncode == 0, sent.stderr
    short = account.records()[-1]["id"][:8]
    shown = account.run("log", "show", short).stdout
    rule = "-" * 72
    stored = shown.split(rule)[1]
    assert odd in stored and "--env-file" not in stored, shown


# A program that ends the way send.py does. Its module-level object says so when the interpreter tears the
# module down (Python's own exit); an atexit handler registered after install() says it ran; a line left
# in stdout's buffer must still arrive.
ENDING = """
import atexit, os, sys
from jobmail.cli import exiting

class TornDown:
    def __del__(self):
        os.write(2, b"torn down\\n")

KEPT = TornDown()
exiting.install()
atexit.register(lambda: os.write(2, b"later handler ran\\n"))
sys.stdout.write("buffered line")
{end}
"""
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as by default


@pytest.mark.parametrize("end", ["exiting.end(3)", "sys.exit(3)", "exiting.end(True)"])
def test_a_run_ends_with_its_code_and_its_output_without_the_teardown(end):
    """exiting.end(code): every atexit handler runs and the buffered output arrives, with the exit code,
    and the interpreter's teardown is skipped; any other way out is Python's own exit (the teardown runs)."""
    program = ENDING.format(end=end)
    argv = [sys.executable, "-c", program]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=PROJECT, env=BUFFERED, timeout=60)
    assert result.returncode == (1 if "True" in end else 3)
    assert result.stdout == "buffered line"
    assert "later handler ran" in result.stderr
    assert ("torn down" in result.stderr) == (end != "exiting.end(3)")


def test_a_run_whose_stdout_reader_is_gone_keeps_pythons_own_exit():
    """A flush that fails at the end (the reader closed the pipe) is left to Python's own exit."""
    program = ENDING.format(end="exiting.end(0)")  # the buffered line is flushed only at the end
    argv = [sys.executable, "-c", program]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT, env=BUFFERED)
    proc.stdout.close()  # type: ignore[union-attr]  # before the program can have written anything
    _, err = proc.communicate(timeout=60)
    assert b"torn down" in err  # the normal exit ran
    assert proc.returncode == 120  # and says the output was lost, as Python does


def test_send_py_ends_without_the_teardown(tmp_path):
    """send.py itself takes that way out: here a command that returns its code (2: no such .env)."""
    program = f"""
import os, runpy, sys
class TornDown:
    def __del__(self):
        os.write(2, b"torn down\\n")
KEPT = TornDown()
sys.path.insert(0, {str(PROJECT)!r})
sys.argv = [{str(SEND_PY)!r}, "log", "--env-file", {str(tmp_path / "missing.env")!r}]
runpy.run_path({str(SEND_PY)!r}, run_name="__main__")
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "missing.env" in result.stderr, result.stderr
    assert "torn down" not in result.stderr


def test_nothing_send_py_imports_before_the_end_handler_registers_one_of_its_own():
    """The end handler must be the first registered (it runs last): an earlier one would never run."""
    program = "import atexit, jobmail.interrupts, jobmail.cli.exiting; print(atexit._ncallbacks())"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=PROJECT, timeout=60)
    assert result.stdout.strip() == "0", result.stderr
