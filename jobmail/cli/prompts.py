"""Asking the user for a secret: the password, from a pipe or typed twice at a terminal (never echoed)."""

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
