"""Asking the user: a secret (the password, from a pipe or typed twice at a terminal, never echoed), or a
choice at a terminal."""

from __future__ import annotations

import sys

from jobmail.errors import InputError


def read_password(from_stdin: bool, prompt: str) -> str:
    """One line from standard input, or the password typed twice at the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InputError("no password on standard input: pipe one line, e.g. from your password manager")
        return password
    import getpass

    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password: use --stdin to read it from a pipe")
    first = getpass.getpass(prompt)
    if not first:
        raise InputError("the password is empty: nothing stored")
    if getpass.getpass("Again, to confirm: ") != first:
        raise InputError("the two passwords differ: nothing stored; run the command again")
    return first


def can_ask() -> bool:
    """Is someone at a terminal to answer a question (both input and output are one)?"""
    return sys.stdin is not None and sys.stdin.isatty() and sys.stdout is not None and sys.stdout.isatty()


def choose(question: str, choices: dict[str, str], default: str) -> str:
    """One of `choices` (a letter -> its meaning), typed at the terminal; `default` on Enter, end of input
    or Ctrl-C (a second Ctrl-C at the question means "just stop")."""
    letters = "/".join(f"[{key}]{word[1:]}" if key == word[:1] else f"{word} [{key}]" for key, word in choices.items())
    while True:
        try:
            answer = input(f"{question} {letters} (Enter: {choices[default]}) ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            print()
            return default
        if not answer:
            return default
        for key, word in choices.items():
            if answer in (key, word):
                return key
        print(f"Please type one of: {', '.join(choices)}.")
