"""The Console: each Command shown for the command line the user typed (with the --env-file given)."""

from __future__ import annotations

import io
import os
import shlex

import pytest

from jobmail.cli.output import Console, commands_in, shell_quoted
from jobmail.errors import Command, InputError


def test_without_an_env_file_a_command_is_its_plain_form():
    console = Console()
    assert console.command(Command("log", "show", "3f2a1b9c")) == "`python send.py log show 3f2a1b9c`"
    assert console.command(Command("log", "show", "ab", "--raw", ">", "copy.eml")) == str(
        Command("log", "show", "ab", "--raw", ">", "copy.eml")
    )


def test_with_an_env_file_it_is_added_absolute_and_before_a_redirect(tmp_path):
    path = tmp_path / "work.env"
    console = Console(env_file=str(path))
    given = shell_quoted(os.path.abspath(path))
    assert console.command(Command("outbox", "run")) == f"`python send.py outbox run --env-file {given}`"
    assert console.command(Command("log", "show", "ab", "--raw", ">", "copy.eml")) == (
        f"`python send.py log show ab --raw --env-file {given} > copy.eml`"
    )
    assert console.command(Command("send", "...")) == "`python send.py send ...`"  # a placeholder gets none
    assert console.command(Command("setup", "--env-file", "x.env")) == "`python send.py setup --env-file x.env`"


@pytest.mark.skipif(os.name == "nt", reason="POSIX quoting")
@pytest.mark.parametrize("name", ["my work.env", "it's.env", 'say "hi".env', "$HOME [1].env"])
def test_a_path_with_spaces_or_quotes_is_one_shell_word(tmp_path, name):
    path = str(tmp_path / name)
    rendered = Console(env_file=path).command(Command("check"))
    words = shlex.split(rendered.strip("`"))
    assert words == ["python", "send.py", "check", "--env-file", os.path.abspath(path)]


def test_an_errors_parts_are_rendered_for_this_command_line(tmp_path):
    exc = InputError("no message with the id X: see ", Command("outbox"))
    path = str(tmp_path / "a.env")
    assert Console().render(exc.parts) == str(exc) == "no message with the id X: see `python send.py outbox`"
    assert Console(env_file=path).render(exc.parts) == (
        f"no message with the id X: see `python send.py outbox --env-file {shell_quoted(path)}`"
    )


def test_two_consoles_in_one_process_keep_their_own_env_file(tmp_path):
    one, two = io.StringIO(), io.StringIO()
    first = Console(env_file=str(tmp_path / "one.env"), stdout=one)
    second = Console(env_file=str(tmp_path / "two.env"), stdout=two)
    first.out("run ", Command("check"))
    second.out("run ", Command("check"))
    Console(stdout=one).out("run ", Command("check"))
    assert "one.env" in one.getvalue() and "two.env" not in one.getvalue()
    assert "two.env" in two.getvalue() and "one.env" not in two.getvalue()
    assert one.getvalue().splitlines()[-1] == "run `python send.py check`"


def test_verbatim_never_rewrites_the_users_data(tmp_path):
    out = io.StringIO()
    console = Console(env_file=str(tmp_path / "a.env"), stdout=out)
    console.verbatim("a body that quotes `python send.py log`")
    assert out.getvalue() == "a body that quotes `python send.py log`\n"


def test_commands_spelled_out_in_text_become_commands():
    parts = commands_in("store it with `python send.py password set` (or `python send.py setup`).")
    assert parts == ("store it with ", Command("password", "set"), " (or ", Command("setup"), ").")
    assert commands_in("no command here") == ("no command here",)
