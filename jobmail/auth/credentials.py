"""The SMTP password, kept only in the OS keyring (the keyring package).

The service name includes the SMTP host, and the entry is keyed by the username, so that two
accounts (two .env files) never share or overwrite a password.
"""

from __future__ import annotations

import logging
import os
import sys

from jobmail.errors import CredentialError

logger = logging.getLogger(__name__)

SERVICE_PREFIX = "jobmail-smtp"


def service_name(host: str) -> str:
    return f"{SERVICE_PREFIX}:{host.lower()}"


def no_backend_help() -> str:
    """What to do when no usable keyring backend exists, for this platform."""
    if sys.platform.startswith("linux"):
        return (
            "no usable keyring backend on this machine: run a Secret Service (GNOME Keyring or KWallet, "
            "unlocked in your session), or `pip install keyrings.alt` and set "
            "KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring in your settings file "
            "(.env, or the one --env-file names) "
            "(that file backend only obscures the password: keep your home folder private)"
        )
    if sys.platform == "darwin":
        return "no usable keyring backend: the macOS Keychain should work; run from a logged-in user session"
    return "no usable keyring backend: the Windows Credential Manager should work; `pip install pywin32-ctypes`"


def _keyring(backend: str = ""):
    """Import keyring, select the backend named in settings if any, and return the module.

    PYTHON_KEYRING_BACKEND in the environment is honoured by keyring itself. Naming the backend
    (KEYRING_BACKEND in .env) also skips keyring's slower auto-detection.
    """
    import keyring

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
            f"set KEYRING_BACKEND={name} in your settings file (or `python send.py setup --keyring-backend {name}`); "
            "otherwise run a Secret Service (GNOME Keyring, KWallet)"
        )


def _guard(action):
    """Run a keyring call, turning its failures into one-line CredentialErrors."""
    import keyring.errors

    try:
        return action()
    except keyring.errors.NoKeyringError:
        raise CredentialError(no_backend_help()) from None
    except keyring.errors.KeyringLocked:
        raise CredentialError("the keyring is locked: unlock it (log in to your desktop session) and retry") from None
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"the keyring failed ({type(exc).__name__}): {no_backend_help()}") from None


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
        raise CredentialError(f"no password stored for {username} at {host}: run `python send.py password set`")
    return password


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
