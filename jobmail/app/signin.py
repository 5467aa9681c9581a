"""Signing in with OAuth 2.0 (`login`): choose the flow, run it, keep the refresh token in the keyring.

No printing here: `show_code` and `open_page` are the CLI's, and say what the user must do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from jobmail.auth import oauth
from jobmail.auth.credentials import backend_name, delete_secret, get_secret, set_secret
from jobmail.errors import Command, ConfigError
from jobmail.settings import Settings

FLOWS = ("device", "browser")


@dataclass(frozen=True)
class SignedIn:
    flow: str
    scope: str
    expires_in: float  # seconds the first access token lasts
    keyring: str  # the keyring backend's name


def choose_flow(settings: Settings, asked: str | None) -> str:
    """The device flow wherever a device endpoint is known (Microsoft, or OAUTH_DEVICE_URL); the browser
    flow otherwise; `asked` (--device / --browser) when that flow is possible."""
    if not settings.uses_oauth:
        raise ConfigError(
            "login is for SMTP_AUTH=oauth2 (Outlook.com, Microsoft 365, Gmail without an app password): set "
            "SMTP_AUTH=oauth2 and OAUTH_PROVIDER in your settings file, or store a password with ",
            Command("password", "set"),
        )
    if settings.oauth_token_command:
        raise ConfigError(
            "OAUTH_TOKEN_COMMAND is set: your own helper signs in and gives the tokens, so there is nothing to "
            "store; remove it to sign in with login"
        )
    flow = asked or ("device" if settings.oauth_device_url else "browser")
    if flow == "device" and not settings.oauth_device_url:
        raise ConfigError(
            "this provider has no device sign-in for mail (Google refuses the Gmail scope there): run ",
            Command("login", "--browser"),
            ", or set OAUTH_DEVICE_URL",
        )
    if flow == "browser" and not settings.oauth_authorize_url:
        raise ConfigError("OAUTH_AUTHORIZE_URL is not set, so the browser sign-in cannot start: run ", Command("login"))
    return flow


def client_secret(settings: Settings) -> str | None:
    secret = get_secret(settings.smtp_host, settings.smtp_username, oauth.CLIENT_SECRET, settings.keyring_backend)
    return secret or None


def store_client_secret(settings: Settings, secret: str) -> None:
    """A client secret (Google's "Desktop app" clients have one that is not really secret) goes to the keyring."""
    if secret:
        set_secret(settings.smtp_host, settings.smtp_username, oauth.CLIENT_SECRET, secret, settings.keyring_backend)
    else:
        delete_secret(settings.smtp_host, settings.smtp_username, oauth.CLIENT_SECRET, settings.keyring_backend)


def sign_in(
    settings: Settings,
    flow: str,
    *,
    show_code: Callable[[oauth.DeviceCode], None],
    open_page: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> SignedIn:
    """Run the flow; the refresh token goes to the keyring only once the sign-in has fully succeeded."""
    secret = client_secret(settings)
    if flow == "device":
        code = oauth.start_device(settings, secret)
        show_code(code)
        tokens = oauth.finish_device(settings, code, secret, sleep=sleep)
    else:
        tokens = oauth.browser_signin(settings, open_page, secret)
    oauth.store(settings, tokens)
    return SignedIn(flow, tokens.scope, tokens.expires_at - time.time(), backend_name(settings.keyring_backend))


def sign_out(settings: Settings) -> bool:
    """Forget the refresh token (the provider's own page revokes it for good)."""
    return delete_secret(settings.smtp_host, settings.smtp_username, oauth.REFRESH, settings.keyring_backend)
