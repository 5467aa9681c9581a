"""Settings: the .env file (python-dotenv) under the real environment, validated once into a frozen record.

Nothing else in the package reads the environment for settings.
"""

from __future__ import annotations

import io
import os
import re

from jobmail.addresses import at_test_domain, check_header_value, normalize_address
from jobmail.errors import Command, ConfigError, InputError

TYPE_CHECKING = False  # not `from typing import ...`: typing costs `send.py log` ~9 ms of its start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any
    from typing import NamedTuple as Record
else:
    from jobmail.frozen import Record

# pathlib is imported only where a Path is handed out: it costs `send.py log` ~3 ms of its start-up
# (it imports urllib.parse and ipaddress), so this module works with os.path and strings.
PROJECT_FOLDER = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DEFAULT_ENV_FILE = ".env"
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}

# Every key the file may hold, with its default ("" = unset).
KEYS: dict[str, str] = {
    "SMTP_HOST": "",
    "SMTP_PORT": "",
    "SMTP_SECURITY": "starttls",
    "SMTP_USERNAME": "",
    "SMTP_CA_FILE": "",
    "SMTP_TIMEOUT": "30",
    "FROM_ADDRESS": "",
    "FROM_NAME": "",
    "LOG_DIR": "",
    "TEMPLATES_DIR": "",
    "KEYRING_BACKEND": "",
    "SEND_ATTEMPTS": "4",
    "SEND_RETRY_DELAY": "2",
    "SEND_RETRY_WITHIN": "60",
    "MAX_MESSAGE_KB": "512",
    "BUSINESS_HOURS": "09:00-17:00",
    "OVERDUE_AFTER_HOURS": "12",
    "SMTP_AUTH": "password",
    "OAUTH_PROVIDER": "",
    "OAUTH_CLIENT_ID": "",
    "OAUTH_TENANT": "common",
    "OAUTH_AUTHORIZE_URL": "",
    "OAUTH_DEVICE_URL": "",
    "OAUTH_TOKEN_URL": "",
    "OAUTH_SCOPE": "",
    "OAUTH_TOKEN_COMMAND": "",
    "SIGNATURE_FILE": "",
    "IMAP_HOST": "",
    "IMAP_PORT": "",
    "IMAP_SECURITY": "ssl",
    "IMAP_USERNAME": "",
    "SENT_COPY": "auto",
    "SENT_FOLDER": "",
}
IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
SENT_COPY_MODES = ("auto", "always", "never")
# Microsoft's access token names each service it is good for: IMAP needs its own scope (Google's one
# scope, https://mail.google.com/, covers SMTP and IMAP alike).
MICROSOFT_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
AUTH_MODES = ("password", "oauth2")
# OAuth 2.0 presets: (authorize URL, device authorization URL or "" when the provider has none for the
# mail scope, token URL, scope). {tenant} is OAUTH_TENANT. Google's device flow refuses the Gmail scope.
OAUTH_PRESETS: dict[str, tuple[str, str, str, str]] = {
    "microsoft": (
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "https://outlook.office.com/SMTP.Send offline_access",
    ),
    "google": (
        "https://accounts.google.com/o/oauth2/v2/auth",
        "",
        "https://oauth2.googleapis.com/token",
        "https://mail.google.com/",
    ),
}
OAUTH_PROVIDERS = (*OAUTH_PRESETS, "custom")
PASSWORD_HINTS = ("PASSWORD", "PASSWD", "PASS", "SECRET", "TOKEN")
PASSWORD_ENV_NAMES = ("SMTP_PASSWORD", "SMTP_PASS", "MAIL_PASSWORD", "EMAIL_PASSWORD", "JOBMAIL_PASSWORD")
PASSWORD_FIX = ("store it in the keyring with ", Command("password", "set"), " and remove it")


class Settings(Record):
    """The validated settings: one immutable record, built once by `load` (or `from_values`).

    The paths are strings (`log_folder`, `templates_folder`, `env_file`, `smtp_ca_file`), so that reading
    the log (`send.py log`) never imports pathlib (~3 ms of its start); `log_dir` and `templates_dir` hand
    them out as Path objects to the commands that want one.
    """

    env_file: str | None
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_ca_file: str | None
    smtp_timeout: float
    from_address: str
    from_name: str
    log_folder: str
    templates_folder: str
    keyring_backend: str
    send_attempts: int
    send_retry_delay: float
    send_retry_within: float
    max_message_bytes: int
    business_hours: str
    overdue_after_hours: float
    smtp_auth: str = "password"
    oauth_provider: str = ""
    oauth_client_id: str = ""
    oauth_tenant: str = "common"
    oauth_authorize_url: str = ""
    oauth_device_url: str = ""
    oauth_token_url: str = ""
    oauth_scope: str = ""
    oauth_token_command: str = ""
    signature_file: str | None = None
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "ssl"
    imap_username: str = ""
    sent_copy: str = "auto"
    sent_folder: str = ""

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return self._replace(**changes)

    @property
    def log_dir(self) -> Path:
        from pathlib import Path  # only for the commands that ask for a Path (see the class docstring)

        return Path(self.log_folder)

    @property
    def templates_dir(self) -> Path:
        from pathlib import Path

        return Path(self.templates_folder)

    @property
    def needs_password(self) -> bool:
        """Whether a send logs in for sure (encrypted); with `none` (loopback only) only if the server asks."""
        return self.smtp_security != "none"

    @property
    def uses_oauth(self) -> bool:
        return self.smtp_auth == "oauth2"

    @property
    def server(self) -> str:
        return f"{self.smtp_host}:{self.smtp_port}"

    @property
    def uses_imap(self) -> bool:
        """IMAP_HOST is set: `track` and `check` log in over IMAP, and a Sent copy may be appended."""
        return bool(self.imap_host)

    @property
    def imap_server(self) -> str:
        return f"{self.imap_host}:{self.imap_port}"

    @property
    def copies_to_sent(self) -> bool:
        """Whether a send appends a copy to the Sent folder: SENT_COPY=always, or auto where the provider
        (known from SMTP_HOST) does not file mail sent over SMTP in Sent by itself; never without IMAP_HOST."""
        if not self.uses_imap or self.sent_copy == "never":
            return False
        if self.sent_copy == "always":
            return True
        from jobmail.providers import for_host  # only a send with IMAP configured asks

        known = for_host(self.smtp_host) if self.smtp_host else None
        return not (known is not None and known.files_sent)

    def require_account(self) -> None:
        """Raise unless the settings name an account that mail can be sent from."""
        where = self.env_file or f"the environment, and there is no {DEFAULT_ENV_FILE} in {os.getcwd()}"
        for key, value in (("SMTP_HOST", self.smtp_host), ("FROM_ADDRESS", self.from_address)):
            if not value:
                raise ConfigError(
                    f"{key} is not set in {where}: run ",
                    Command("setup"),
                    " (or copy config.example.env to .env and fill it in), and run the commands from the folder "
                    "that holds .env, or add --env-file",
                )
        if not self.from_name:
            raise ConfigError(f"FROM_NAME is not set in {where}: set it to the name you sign your emails with")


def is_loopback(host: str, resolve: Callable[[str], list[str]] | None = None) -> bool:
    """Whether a connection to `host` really stays on this machine: every address it resolves to is a
    loopback one (a name is never trusted for what it says: `localhost.localdomain` may go to DNS).
    `resolve(host)` gives the addresses (default: the system's resolver)."""
    return bool(loopback_addresses(host, resolve))


def loopback_addresses(host: str, resolve: Callable[[str], list[str]] | None = None) -> list[str]:
    """The addresses `host` resolves to when every one of them is loopback, else [] (also when it does not
    resolve). A plaintext connection goes to one of these, never to the name (asked again, it could
    answer otherwise)."""
    import ipaddress

    name = host.strip().strip("[]")
    if not name:
        return []
    try:
        addresses = [name] if _is_ip(name) else (resolve or _addresses_of)(name)
        return addresses if addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses) else []
    except ValueError:
        return []


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _addresses_of(name: str) -> list[str]:
    import socket

    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def load(env_file: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the .env file (if there is one) and the environment, validate, and return Settings.

    With env_file=None the default `.env` in the current folder is used when it exists.
    An env_file given explicitly must exist.
    """
    if environ is None:
        environ = os.environ
    path = _pick_env_file(env_file)
    values = dict(KEYS)
    origins: dict[str, str] = {}
    if path is not None:
        for line, key, value in _read_env_file(path):
            values[key] = value
            origins[key] = f"{path}, line {line}"
    _refuse_passwords_in_environment(environ)
    for key in KEYS:
        if key in environ:
            values[key] = environ[key]
            origins[key] = "the environment"
    base = os.path.dirname(path) if path is not None else os.getcwd()
    try:
        return _validate(values, path, base)
    except ConfigError as exc:
        raise _located(exc, origins) from None


def _located(exc: ConfigError, origins: dict[str, str]) -> ConfigError:
    """The error, prefixed with where its key was set (file and line, or the environment)."""
    origin = origins.get(exc.key) if exc.key else None
    return ConfigError(f"{origin}: ", *exc.parts, key=exc.key) if origin and origin not in str(exc) else exc


def from_values(values: dict[str, str], base: str | os.PathLike | None = None) -> Settings:
    """Settings from explicit values only (no file, no environment): the demo and tests use it."""
    return _validate({**KEYS, **values}, None, os.fspath(base) if base else os.getcwd())


def _pick_env_file(env_file: str | os.PathLike | None) -> str | None:
    """The .env file to read, as an absolute path with links resolved (None: there is none)."""
    if env_file is None:
        return os.path.realpath(DEFAULT_ENV_FILE) if os.path.isfile(DEFAULT_ENV_FILE) else None
    path = os.fspath(env_file)  # resolved by the OS (realpath), not on the text: `link/../x.env` is as the OS sees it
    if not os.path.isfile(path):
        raise ConfigError(
            f"config file {path} not found: run ", Command("setup"), " (it writes it) or copy config.example.env there"
        )
    return os.path.realpath(path)


def read_values(path: str) -> dict[str, str]:
    """The KEY=value settings of a file as written (setup's defaults on a re-run); raises ConfigError."""
    return {key: value for _, key, value in _read_env_file(path)}


def _read_env_file(path: str) -> list[tuple[int, str, str]]:
    """(line, key, value) for each setting in the file, in order."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    bindings = _simple_bindings(text)
    if bindings is None:
        bindings = _dotenv_bindings(text, path)
    for line, key, _ in bindings:
        if key not in KEYS and any(hint in key.upper() for hint in PASSWORD_HINTS):
            raise ConfigError(f"{path}, line {line}: {key} looks like a password: ", *PASSWORD_FIX, " from the file")
        if key not in KEYS:
            raise ConfigError(f"{path}, line {line}: unknown key {key}: see config.example.env for the keys")
    return bindings


# The everyday .env line: KEY=value unquoted, with no comment, quote or backslash in the value; or
# KEY="value" / KEY='value' (as many people write a name with a space), quoted whole, with no quote or
# backslash inside and nothing but a comment after it. For a file made only of such lines (and blank
# and comment lines) python-dotenv gives exactly (key, value stripped, or the text between the quotes);
# reading it here saves every command dotenv's ~14 ms import. Any other file is read by python-dotenv
# itself (tested to agree: tests/test_settings.py).
_SIMPLE_LINE = re.compile(
    r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*"
    r"(?:\"([^\"\\\r\n]*)\"[ \t]*(?:#[^\r\n]*)?|'([^'\\\r\n]*)'[ \t]*(?:#[^\r\n]*)?|([^#'\"\\\r\n]*?)[ \t]*)"
)
_OTHER_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _simple_bindings(text: str) -> list[tuple[int, str, str]] | None:
    if any(ch in text.replace("\r\n", "\n") for ch in _OTHER_BREAKS):
        return None
    bindings = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        found = _SIMPLE_LINE.fullmatch(line)
        if found is None:
            return None
        value = next((group for group in found.group(2, 3, 4) if group is not None), "")
        bindings.append((number, found.group(1), value))
    return bindings


def _dotenv_bindings(text: str, path: str) -> list[tuple[int, str, str]]:
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    lines = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(f"{path}, line {binding.original.line}: {_why_unparsed(binding.original.string)}")
        if binding.key is not None and binding.value is None:  # a bare word: maybe a pasted password, never shown
            raise ConfigError(
                f"{path}, line {binding.original.line} is not KEY=value: "
                "write it as KEY=value, or start it with # to make it a comment"
            )
        if binding.key is not None:
            lines.append((binding.original.line, binding.key))
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return [(line, key, values.get(key) or "") for line, key in lines]


def _why_unparsed(line: str) -> str:
    """What is wrong with a line python-dotenv cannot read, and how to write it (never the value itself:
    a pasted password may be on it)."""
    key, sep, value = line.partition("=")
    value = value.strip()
    if sep and value[:1] in "'\"" and (value.count(value[0]) % 2 == 1 or value.count(value[0]) > 2):
        return (
            f"unbalanced quote in the value of {key.strip()}: put double quotes around a value with an apostrophe "
            '(FROM_NAME="Seán O\'Brien")'
        )
    if sep:
        return "cannot parse this line: write it as KEY=value"
    return "cannot parse this line (no '='): write it as KEY=value, or start it with # to make it a comment"


def _refuse_passwords_in_environment(environ) -> None:
    for name in PASSWORD_ENV_NAMES:
        if environ.get(name):
            raise ConfigError(f"{name} is set in the environment: ", *PASSWORD_FIX, " from the environment")


def _encodable(host: str) -> bool:
    """Whether the resolver and TLS can be given `host`: every dot-separated part 1-63 characters long
    (a final dot aside), once an internationalised name is encoded as Python's socket encodes it (IDNA;
    that codec is loaded only for such a name). Anything else fails on every attempt, retried in vain."""
    if not host.isascii():
        try:
            host.encode("idna")
        except UnicodeError:
            return False
        return True
    labels = (host[:-1] if host.endswith(".") else host).split(".")
    return all(0 < len(label) <= 63 for label in labels)


def _server(values: dict[str, str], prefix: str, ports: dict[str, int]) -> tuple[str, str, int]:
    """PREFIX_SECURITY, PREFIX_HOST and PREFIX_PORT (SMTP or IMAP), checked alike: `none` only where the
    host resolves to loopback addresses only."""
    key = f"{prefix}_SECURITY"
    security = values[key].strip().lower()
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"{key}={values[key]!r} is not one of {', '.join(SECURITY_MODES)}: "
            f"use ssl for port {ports['ssl']}, starttls for {ports['starttls']}",
            key=key,
        )
    host = values[f"{prefix}_HOST"].strip()
    if host and (any(ch.isspace() for ch in host) or "/" in host or not _encodable(host)):
        raise ConfigError(
            f"{prefix}_HOST={host!r} is not a host name: write it like {prefix.lower()}.example.com",
            key=f"{prefix}_HOST",
        )
    if security == "none" and host and not is_loopback(host):
        raise ConfigError(
            f"{key}=none is allowed only for a server on this machine, and {host} does not resolve to "
            f"loopback addresses only: use starttls or ssl (or {prefix}_HOST=127.0.0.1 for a server on this machine)",
            key=key,
        )
    port_text = values[f"{prefix}_PORT"].strip()
    port = _integer(f"{prefix}_PORT", port_text, 1, 65535) if port_text else ports[security]
    return security, host, port


def _validate(values: dict[str, str], path: str | None, base: str) -> Settings:
    security, host, port = _server(values, "SMTP", DEFAULT_PORTS)
    from_address = values["FROM_ADDRESS"].strip()
    if from_address:
        try:
            from_address = normalize_address(
                from_address,
                "FROM_ADDRESS",
                test_domains=bool(host) and at_test_domain(from_address) and is_loopback(host),
            )
        except InputError as exc:
            raise ConfigError(str(exc).rstrip("."), key="FROM_ADDRESS") from None  # load() says where it was set
    ca_text = values["SMTP_CA_FILE"].strip()
    ca_file = _resolve(base, ca_text) if ca_text else None
    if ca_file is not None and not os.path.isfile(ca_file):
        raise ConfigError(
            f"SMTP_CA_FILE={ca_text}: no such file: give the path of a PEM certificate file", key="SMTP_CA_FILE"
        )
    log_text = values["LOG_DIR"].strip()
    templates_text = values["TEMPLATES_DIR"].strip()
    from_name = _display_name(values["FROM_NAME"])
    if "\r" in values["SMTP_USERNAME"] or "\n" in values["SMTP_USERNAME"]:
        raise ConfigError("SMTP_USERNAME contains a line break: keep it on one line", key="SMTP_USERNAME")
    return Settings(
        env_file=path,
        smtp_host=host,
        smtp_port=port,
        smtp_security=security,
        smtp_username=values["SMTP_USERNAME"].strip() or from_address,
        smtp_ca_file=ca_file,
        smtp_timeout=_number("SMTP_TIMEOUT", values["SMTP_TIMEOUT"], 0.1, 600),
        from_address=from_address,
        from_name=from_name,
        log_folder=_resolve(base, log_text) if log_text else os.path.join(PROJECT_FOLDER, "log"),
        templates_folder=(
            _resolve(base, templates_text) if templates_text else os.path.join(PROJECT_FOLDER, "templates")
        ),
        keyring_backend=values["KEYRING_BACKEND"].strip(),
        send_attempts=_integer("SEND_ATTEMPTS", values["SEND_ATTEMPTS"], 1, 10),
        send_retry_delay=(retry_delay := _number("SEND_RETRY_DELAY", values["SEND_RETRY_DELAY"], 0, 60)),
        send_retry_within=_retry_within(values["SEND_RETRY_WITHIN"], retry_delay),
        max_message_bytes=_integer("MAX_MESSAGE_KB", values["MAX_MESSAGE_KB"], 1, 50_000) * 1024,
        business_hours=_business_hours(values["BUSINESS_HOURS"]),
        overdue_after_hours=_number("OVERDUE_AFTER_HOURS", values["OVERDUE_AFTER_HOURS"], 0, 24 * 365),
        signature_file=_signature_file(base, values["SIGNATURE_FILE"].strip()),
        **_oauth(values),
        **_imap(values, values["SMTP_USERNAME"].strip() or from_address),
    )


def _signature_file(base: str, text: str) -> str | None:
    if not text:
        return None
    path = _resolve(base, text)
    if not os.path.isfile(path):
        raise ConfigError(
            f"SIGNATURE_FILE={text}: no such file: write your signature (a few lines) in a text file there",
            key="SIGNATURE_FILE",
        )
    return path


def _imap(values: dict[str, str], smtp_username: str) -> dict[str, Any]:
    """The IMAP_* keys, SENT_COPY and SENT_FOLDER. IMAP stays off (no Sent copy, no `track`) without IMAP_HOST."""
    security, host, port = _server(values, "IMAP", IMAP_PORTS)
    username = values["IMAP_USERNAME"].strip() or smtp_username
    if "\r" in username or "\n" in username:
        raise ConfigError("IMAP_USERNAME contains a line break: keep it on one line", key="IMAP_USERNAME")
    copy = values["SENT_COPY"].strip().lower()
    if copy not in SENT_COPY_MODES:
        raise ConfigError(
            f"SENT_COPY={values['SENT_COPY']!r} is not one of {', '.join(SENT_COPY_MODES)}: auto copies only where "
            "the provider does not file sent mail itself",
            key="SENT_COPY",
        )
    folder = values["SENT_FOLDER"].strip()
    if any(ch in folder for ch in '\r\n"\\') or not folder.isprintable():
        raise ConfigError(
            f"SENT_FOLDER={folder!r} cannot be a folder name: give it as your mail program shows it", key="SENT_FOLDER"
        )
    return {
        "imap_host": host,
        "imap_port": port,
        "imap_security": security,
        "imap_username": username,
        "sent_copy": copy,
        "sent_folder": folder,
    }


def _provider_of(host: str) -> str:
    """The OAuth preset of a known mail provider's SMTP host (smtp.office365.com -> microsoft), else ""."""
    from jobmail.providers import for_host

    known = for_host(host) if host.strip() else None
    return known.oauth if known is not None else ""


_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}")


def _oauth(values: dict[str, str]) -> dict[str, Any]:
    """SMTP_AUTH and the OAUTH_* keys, a provider's preset filling in what is not set."""
    auth = values["SMTP_AUTH"].strip().lower()
    if auth not in AUTH_MODES:
        raise ConfigError(
            f"SMTP_AUTH={values['SMTP_AUTH']!r} is not one of {', '.join(AUTH_MODES)}: use oauth2 for Outlook.com "
            "and Microsoft 365, password for an (app) password",
            key="SMTP_AUTH",
        )
    provider = values["OAUTH_PROVIDER"].strip().lower()
    tenant = values["OAUTH_TENANT"].strip() or "common"
    command = values["OAUTH_TOKEN_COMMAND"].strip()
    fields = {"smtp_auth": auth, "oauth_provider": provider, "oauth_tenant": tenant, "oauth_token_command": command}
    if auth != "oauth2":
        return fields
    provider = provider or _provider_of(values["SMTP_HOST"])
    fields["oauth_provider"] = provider
    if provider and provider not in OAUTH_PROVIDERS:
        raise ConfigError(
            f"OAUTH_PROVIDER={provider!r} is not one of {', '.join(OAUTH_PROVIDERS)}: microsoft for Outlook.com and "
            "Microsoft 365, google for Gmail, custom with the OAUTH_*_URL keys for another server",
            key="OAUTH_PROVIDER",
        )
    if not _TENANT.fullmatch(tenant):
        raise ConfigError(
            f"OAUTH_TENANT={tenant!r} is not a tenant: use common, consumers, organizations or your tenant id",
            key="OAUTH_TENANT",
        )
    preset = OAUTH_PRESETS.get(provider, ("", "", "", ""))
    urls = {}
    for index, key in enumerate(("OAUTH_AUTHORIZE_URL", "OAUTH_DEVICE_URL", "OAUTH_TOKEN_URL")):
        url = values[key].strip() or preset[index].replace("{tenant}", tenant)
        if url and (not url.lower().startswith("https://") or any(ch.isspace() for ch in url)):
            raise ConfigError(f"{key}={url!r} is not an https:// address: give the provider's endpoint", key=key)
        urls[key] = url
    scope = " ".join(values["OAUTH_SCOPE"].split()) or preset[3]
    if provider == "microsoft" and values["IMAP_HOST"].strip() and not values["OAUTH_SCOPE"].strip():
        scope = f"{scope} {MICROSOFT_IMAP_SCOPE}"  # only when IMAP is used: a new scope means a new sign-in
    client_id = values["OAUTH_CLIENT_ID"].strip()
    if not command:
        missing = "OAUTH_CLIENT_ID" if not client_id else "OAUTH_TOKEN_URL" if not urls["OAUTH_TOKEN_URL"] else ""
        if not provider and not missing:
            missing = "OAUTH_PROVIDER"
        if not missing and not (urls["OAUTH_AUTHORIZE_URL"] or urls["OAUTH_DEVICE_URL"]):
            missing = "OAUTH_DEVICE_URL"
        if not missing and not scope:
            missing = "OAUTH_SCOPE"
        if missing:
            raise ConfigError(
                f"SMTP_AUTH=oauth2 needs {missing}: see config.example.env and the README's \"Sign in with "
                'Microsoft or Google" (or set OAUTH_TOKEN_COMMAND to use your own token helper)',
                key=missing,
            )
    return {
        **fields,
        "oauth_client_id": client_id,
        "oauth_authorize_url": urls["OAUTH_AUTHORIZE_URL"],
        "oauth_device_url": urls["OAUTH_DEVICE_URL"],
        "oauth_token_url": urls["OAUTH_TOKEN_URL"],
        "oauth_scope": scope,
    }


MAX_NAME = 64


def _display_name(text: str) -> str:
    """FROM_NAME as it will show: one line, single spaces, no characters that could forge a header."""
    try:
        check_header_value(text, "FROM_NAME")
    except InputError as exc:
        raise ConfigError(str(exc), key="FROM_NAME") from None
    name = " ".join(text.split())
    if len(name) > MAX_NAME:
        raise ConfigError(
            f"FROM_NAME is {len(name)} characters long: keep it to {MAX_NAME} (the name you sign with)", key="FROM_NAME"
        )
    return name


_HOURS = re.compile(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*")


def _business_hours(text: str) -> str:
    found = _HOURS.fullmatch(text)
    if found is None or (int(found[1]), int(found[2])) >= (int(found[3]), int(found[4])):
        raise ConfigError(
            f"BUSINESS_HOURS={text!r} is not a range of the day: write it like 09:00-17:00", key="BUSINESS_HOURS"
        )
    return text.strip()


def _resolve(base: str, text: str) -> str:
    """A folder or file named in .env: relative to the .env's folder, `~` expanded. On Windows a path
    rooted without a drive (`\\jobmail\\log`) takes the .env's drive, as pathlib would."""
    path = os.path.expanduser(text)
    fully_absolute = os.path.isabs(path) and (os.name != "nt" or os.path.splitdrive(path)[0])
    return path if fully_absolute else os.path.realpath(os.path.join(base, path))


def _retry_within(text: str, delay: float) -> float:
    within = _number("SEND_RETRY_WITHIN", text, 1, 3600)
    if within < delay:
        raise ConfigError(
            f"SEND_RETRY_WITHIN={within:g} is shorter than SEND_RETRY_DELAY={delay:g}: no retry could ever start; "
            "raise SEND_RETRY_WITHIN or lower SEND_RETRY_DELAY",
            key="SEND_RETRY_WITHIN",
        )
    return within


def _integer(key: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(
            f"{key}={text!r} is not a whole number: give a number from {low} to {high}", key=key
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{key}={value} is out of range: give a number from {low} to {high}", key=key)
    return value


def _number(key: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a number: give a number from {low:g} to {high:g}", key=key) from None
    if not low <= value <= high:
        raise ConfigError(f"{key}={value:g} is out of range: give a number from {low:g} to {high:g}", key=key)
    return value


def __getattr__(name: str):
    if name == "PROJECT_DIR":  # the project folder as a Path, made on first use (see PROJECT_FOLDER)
        from pathlib import Path

        return Path(PROJECT_FOLDER)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
