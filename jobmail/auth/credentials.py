"""The SMTP password, kept only in the OS keyring (the keyring package).

The service name includes the SMTP host, and the entry is keyed by the username, so that two
accounts (two .env files) never share or overwrite a password.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from jobmail.errors import Command, CredentialError, render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.settings import Settings

logger = logging.getLogger(__name__)

SERVICE_PREFIX = "jobmail-smtp"
PLAINTEXT_BACKEND = "keyrings.alt.file.PlaintextKeyring"


def service_name(host: str) -> str:
    return f"{SERVICE_PREFIX}:{host.lower()}"


def keyring_commands() -> tuple[Command, ...]:
    """The commands the keyring advice names (the file backend's set-up)."""
    return (Command("setup", "--keyring-backend", PLAINTEXT_BACKEND), Command("password", "set"))


def _platform_choice(platform: str) -> str:
    if platform == "darwin":
        return (
            "The macOS Keychain: run from your logged-in user session (over SSH, unlock it first with "
            "`security unlock-keychain`)."
        )
    if platform.startswith("win"):
        return (
            "The Windows Credential Manager: reinstall keyring in this virtual environment "
            "(`pip install --force-reinstall keyring`), which brings its Windows support (pywin32-ctypes)."
        )
    return (
        "A Secret Service: GNOME Keyring or KWallet, running and unlocked in your desktop session "
        '(without a desktop: see "Using Keyring on headless Linux systems" in keyring\'s documentation).'
    )


KEYRINGS_ALT = "keyrings.alt==5.0.2"  # the release the tests run with (requirements-dev.txt)


def this_python() -> str:
    """The interpreter running now, as a command line names it: a bare `pip` or `python` may be another
    Python's (a virtual environment not activated)."""
    path = sys.executable or "python"
    if os.name == "nt":
        return f'"{path}"' if " " in path else path
    import shlex

    return shlex.quote(path)


def send_py() -> str:
    """`<this python> <path of send.py>`: the command that runs this program with this interpreter."""
    import shlex

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "send.py")
    return f"{this_python()} {script if os.name == 'nt' else shlex.quote(script)}"


def install_file_backend_command() -> str:
    return f"{this_python()} -m pip install {KEYRINGS_ALT}"


def _file_choice() -> tuple[str | Command, ...]:
    return (
        f"The file backend of keyrings.alt: `{install_file_backend_command()}`, then run "
        f"`{send_py()} setup --keyring-backend {PLAINTEXT_BACKEND}` (or add KEYRING_BACKEND={PLAINTEXT_BACKEND} "
        f"to your .env and run `{send_py()} password set`).",
    )


FILE_CAVEAT = "That file only obscures the password, it does not encrypt it: keep your home folder private."


def keyring_guidance(platform: str = sys.platform, environ: Mapping[str, str] | None = None) -> list[str]:
    """What to do when keyring has no usable backend, for this platform: a few lines, choices numbered."""
    lines = []
    selected = (environ or {}).get("PYTHON_KEYRING_BACKEND", "")
    if selected:
        lines.append(
            f"PYTHON_KEYRING_BACKEND={selected} is set in your environment and chooses this: "
            "unset it to let keyring find the system keyring."
        )
    lines += [
        "The password needs a keyring. Choose one:",
        f"  1. {_platform_choice(platform)}",
        "  2. " + render(_file_choice()),
        f"     {FILE_CAVEAT}",
    ]
    return lines


def no_backend_parts(platform: str = sys.platform) -> tuple[str | Command, ...]:
    """The same advice as keyring_guidance, as the parts of one line (for an error's text)."""
    return (
        f"no usable keyring backend on this machine; the password needs a keyring: 1. {_platform_choice(platform)} 2. ",
        *_file_choice(),
        f" {FILE_CAVEAT}",
    )


def no_backend_help(platform: str = sys.platform) -> str:
    """keyring_guidance's advice in one line."""
    return render(no_backend_parts(platform))


def _keyring(backend: str = ""):  # -> the keyring module
    """Import keyring, select the backend named in settings if any, and return the module.

    PYTHON_KEYRING_BACKEND in the environment is honoured by keyring itself. Naming the backend
    (KEYRING_BACKEND in .env) also skips keyring's slower auto-detection.
    """
    import keyring  # imported when first needed: it costs commands that never touch the password ~30 ms

    if backend:
        from keyring.core import load_keyring

        try:
            keyring.set_keyring(load_keyring(backend))
        except Exception as exc:  # the backend's own import or init failed: say which, not why in full
            raise CredentialError(
                f"KEYRING_BACKEND={backend} cannot be loaded ({type(exc).__name__}): "
                "fix the name, or unset it (in .env or the environment) to use the system keyring"
            ) from None
    elif not os.environ.get("PYTHON_KEYRING_BACKEND"):
        _refuse_plaintext_by_accident(keyring)
    return keyring


def _refuse_plaintext_by_accident(keyring) -> None:
    """keyring auto-selects keyrings.alt's file backend when it is installed and nothing better is found
    (as after installing the test tools): a password in a file, chosen silently. Use it only when named."""
    chosen = keyring.get_keyring()
    name = f"{type(chosen).__module__}.{type(chosen).__name__}"
    if name.startswith("keyrings.alt."):
        raise CredentialError(
            f"the only keyring found is {name}, a file that merely obscures the password: to use it on purpose, "
            f"set KEYRING_BACKEND={name} in your settings file (or ",
            Command("setup", "--keyring-backend", name),
            "); otherwise run a Secret Service (GNOME Keyring, KWallet)",
        )


def _guard(action):
    """Run a keyring call, turning its failures into one-line CredentialErrors."""
    import keyring.errors

    try:
        return action()
    except keyring.errors.NoKeyringError:
        raise CredentialError(*no_backend_parts()) from None
    except keyring.errors.KeyringLocked:
        raise CredentialError("the keyring is locked: unlock it (log in to your desktop session) and retry") from None
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"the keyring failed ({type(exc).__name__}): ", *no_backend_parts()) from None


def backend_name(backend: str = "") -> str:
    kr = _keyring(backend)
    chosen = kr.get_keyring()
    return f"{type(chosen).__module__}.{type(chosen).__name__}"


def storage_note(backend: str = "") -> str:
    """Where the password sits when that is a plain file (keyrings.alt), to say so; "" for a real keyring."""
    chosen = _keyring(backend).get_keyring()
    path = getattr(chosen, "file_path", None)
    if not type(chosen).__module__.startswith("keyrings.alt") or not path:
        return ""
    return f"note: the password is in the file {path}, obscured but not encrypted: keep that folder private"


def get_password(host: str, username: str, backend: str = "") -> str:
    kr = _keyring(backend)
    password = _guard(lambda: kr.get_password(service_name(host), username))
    if not password:
        raise CredentialError(f"no password stored for {username} at {host}: run ", Command("password", "set"))
    return password


def login_password(settings: Settings) -> list[str]:
    """The stored password of an account that logs in with one, as the secrets a connection hides from its
    first reply on; none for no login or OAuth (its access token is fetched later, new). Raises
    CredentialError as get_password does."""
    if not settings.needs_password or settings.uses_oauth:
        return []
    return [get_password(settings.smtp_host, settings.smtp_username, settings.keyring_backend)]


def set_password(host: str, username: str, password: str, backend: str = "") -> None:
    if not password:
        raise CredentialError("the password is empty: nothing stored")
    if "\n" in password or "\r" in password:
        raise CredentialError("the password contains a line break: nothing stored")
    kr = _keyring(backend)
    _guard(lambda: kr.set_password(service_name(host), username, password))
    logger.debug("password stored for %s at %s", username, host)


def delete_password(host: str, username: str, backend: str = "") -> bool:
    """Remove the stored password; return False when there was none."""
    import keyring.errors

    kr = _keyring(backend)

    def delete() -> bool:
        try:
            kr.delete_password(service_name(host), username)
        except keyring.errors.PasswordDeleteError:
            return False
        return True

    return _guard(delete)


def has_password(host: str, username: str, backend: str = "") -> bool:
    kr = _keyring(backend)
    return bool(_guard(lambda: kr.get_password(service_name(host), username)))


# --- other secrets: OAuth refresh tokens and client secrets ----------------------------------------------
# Kept under the same service as the password, each in its own entry ("alex@example.com oauth2-refresh").
# Windows' Credential Manager refuses a secret over 2,560 bytes (1,280 characters as it stores them), and a
# Microsoft refresh token can be longer: a long secret is stored in pieces, its first entry saying how many.

CHUNK = 1000
_PIECES = "jobmail-pieces:"


def _entry(username: str, kind: str, piece: int = 0) -> str:
    return f"{username} {kind}" + (f" #{piece}" if piece else "")


def get_secret(host: str, username: str, kind: str, backend: str = "") -> str:
    """The secret of this kind for the account, or "" when none is stored."""
    kr = _keyring(backend)
    service = service_name(host)
    head = _guard(lambda: kr.get_password(service, _entry(username, kind))) or ""
    if not head.startswith(_PIECES):
        return head
    count = int(head[len(_PIECES) :]) if head[len(_PIECES) :].isdigit() else 0
    pieces = [
        _guard(lambda n=n: kr.get_password(service, _entry(username, kind, n))) or "" for n in range(1, count + 1)
    ]
    return "" if not all(pieces) else "".join(pieces)


def set_secret(host: str, username: str, kind: str, secret: str, backend: str = "") -> None:
    if not secret or any(ch in secret for ch in "\r\n"):
        raise CredentialError(f"the {kind} is empty or has a line break: nothing stored")
    kr = _keyring(backend)
    service = service_name(host)
    old = _guard(lambda: kr.get_password(service, _entry(username, kind))) or ""
    if len(secret) <= CHUNK and not secret.startswith(_PIECES):
        _guard(lambda: kr.set_password(service, _entry(username, kind), secret))
    else:
        pieces = [secret[i : i + CHUNK] for i in range(0, len(secret), CHUNK)]
        for number, piece in enumerate(pieces, start=1):
            _guard(lambda n=number, p=piece: kr.set_password(service, _entry(username, kind, n), p))
        _guard(lambda: kr.set_password(service, _entry(username, kind), f"{_PIECES}{len(pieces)}"))
        _drop_pieces(kr, service, username, kind, old, keep=len(pieces))
        return
    _drop_pieces(kr, service, username, kind, old, keep=0)


def delete_secret(host: str, username: str, kind: str, backend: str = "") -> bool:
    import keyring.errors

    kr = _keyring(backend)
    service = service_name(host)
    old = _guard(lambda: kr.get_password(service, _entry(username, kind))) or ""
    if not old:
        return False
    _drop_pieces(kr, service, username, kind, old, keep=0)
    try:
        _guard(lambda: kr.delete_password(service, _entry(username, kind)))
    except keyring.errors.PasswordDeleteError:
        return False
    return True


def _drop_pieces(kr, service: str, username: str, kind: str, old: str, keep: int) -> None:
    """Delete the pieces of an earlier long secret beyond the first `keep`."""
    import keyring.errors

    if not old.startswith(_PIECES):
        return
    count = old[len(_PIECES) :]
    for number in range(keep + 1, (int(count) if count.isdigit() else 0) + 1):
        try:
            _guard(lambda n=number: kr.delete_password(service, _entry(username, kind, n)))
        except keyring.errors.PasswordDeleteError:
            pass
