"""Setting up an account, without a terminal: the answers checked with the settings file's own rules, the
settings file rendered and written (never the password), and the password stored in the OS keyring.

No printing and no prompting here: `cli/setup_cmd.py` asks the questions and says what happened.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from jobmail.auth.credentials import backend_name, set_password
from jobmail.errors import InputError, SendError
from jobmail.settings import PROJECT_DIR, Settings, from_values
from jobmail.smtp.client import ssl_context

EXAMPLE_FILE = PROJECT_DIR / "config.example.env"
# The keys setup decides; any other key keeps config.example.env's line (a default) untouched.
OWNED_KEYS = (
    "SMTP_HOST",
    "SMTP_SECURITY",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_CA_FILE",
    "FROM_ADDRESS",
    "FROM_NAME",
    "KEYRING_BACKEND",
    "SMTP_AUTH",
    "OAUTH_PROVIDER",
    "OAUTH_CLIENT_ID",
    "OAUTH_TENANT",
    "IMAP_HOST",
    "IMAP_PORT",
    "IMAP_SECURITY",
)
_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
_NEEDS_QUOTES = re.compile(r"[#\"'\\$`]|^\s|\s$")


# --- the answers ---------------------------------------------------------------------------------


def check_values(values: dict[str, str]) -> Settings:
    """Check some values with the same rules (and messages) as the .env file; raises ConfigError."""
    return from_values(values)


def parse_port(text: str) -> str:
    check_values({"SMTP_PORT": text})
    return str(int(text.strip()))


def parse_security(text: str, host: str) -> str:
    security = text.strip().lower()
    check_values({"SMTP_SECURITY": security, "SMTP_HOST": host})
    return security


def parse_ca_file(text: str) -> str:
    """An absolute path to a PEM certificate file that loads, or "" for none."""
    text = text.strip()
    if not text:
        return ""
    path = str(Path(text).expanduser().resolve())
    settings = check_values({"SMTP_CA_FILE": path})
    try:
        ssl_context(settings)
    except SendError as exc:
        raise InputError(str(exc)) from None
    return path


def validated(values: dict[str, str], env_path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """The account's Settings as the file at `env_path` will give them; raises when one is unusable.

    OAUTH_* keys set in the environment (`environ`) count, as they will when the file is read: a custom
    sign-in server's URLs may come from there."""
    extra = {key: value for key, value in (environ or {}).items() if key.startswith("OAUTH_") and key not in values}
    settings = from_values({**extra, **values}, base=env_path.resolve().parent)
    settings.require_account()
    return settings


# --- the password --------------------------------------------------------------------------------


def store_password(settings: Settings, password: str, keyring_backend: str = "") -> str:
    """Store the password in the keyring for the account's host and username; returns the backend's name."""
    set_password(settings.smtp_host, settings.smtp_username, password, keyring_backend)
    return backend_name(keyring_backend)


# --- the .env file -------------------------------------------------------------------------------


def quote(value: str) -> str:
    """A value as python-dotenv reads it back unchanged."""
    if not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_env(values: dict[str, str], example: str | None = None, today: date | None = None) -> str:
    """The settings file: config.example.env's keys, order and comments, with `values` filled in.

    A key setup owns but has no value for is left commented out; keys the example lacks go at the end.
    """
    if example is None:
        try:
            example = EXAMPLE_FILE.read_text(encoding="utf-8")
        except OSError:
            example = ""
    lines = example.splitlines()
    while lines and lines[0].startswith("#"):  # the example's own header
        lines.pop(0)
    header = [
        f"# jobmail settings for {values.get('FROM_ADDRESS', 'your account')}, written by "
        f"`python send.py setup` on {(today or date.today()).isoformat()}.",
        "# Every key is explained in config.example.env. Real environment variables override this file.",
        "# There is NO password key, on purpose: the password lives only in your OS keyring.",
    ]
    body: list[str] = []
    done: set[str] = set()
    for line in lines:
        match = _ASSIGNMENT.match(line)
        key = match.group(2) if match else None
        if key is not None and key in values and key not in done:
            body.append(f"{key}={quote(values[key])}")
            done.add(key)
        elif match and key in OWNED_KEYS and not match.group(1):
            body.append(f"# {line}")
        else:
            body.append(line)
    rest = [key for key in values if key not in done]
    if rest:
        body += ["", "# --- Added by setup ---"] + [f"{key}={quote(values[key])}" for key in rest]
    return "\n".join(header + body).rstrip("\n") + "\n"


def write_env(path: Path, values: dict[str, str], *, replace: bool) -> None:
    """Write the settings file: a new one only if none exists (nor appeared meanwhile); a replacement
    atomically."""
    text = render_env(values)
    try:
        if not replace:
            with open(path, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            return
        fd, temp = tempfile.mkstemp(prefix=".env-", dir=path.resolve().parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise InputError(f"{path} appeared while setup ran: nothing written; run setup again") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
