"""`setup`: configure the SMTP account in one guided step, store the password, write .env, and check it.

Answers come from the flags first. Without account flags every question is asked (Enter takes the
proposed value). When standard input is not a terminal the answers are read from it line by line, so
the questions can be scripted; with --password-stdin standard input holds only the password, so nothing
else is asked and a missing required value is an error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from jobmail.cli.output import Console, commands_in, lifted
from jobmail.cli.prompts import read_password
from jobmail.errors import EXIT_OK, Command, InputError, JobmailError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobmail.providers import Provider

ACCOUNT_FLAGS = ("address", "name", "host", "port", "security", "username", "ca_file", "auth", "client_id")

DESCRIPTION = """Asks for your address and name, proposes your provider's server settings (or asks for them),
shows the provider's note (app passwords!), stores the password in the OS keyring, writes the settings
file (never the password), and checks the account by logging in without sending anything.

Every question can be answered with a flag instead; with all of them (and --password-stdin) nothing is
asked. An existing settings file is replaced only after a yes, or with --yes.

exit codes: 0 the account works, 1 it does not (see the hint), 2 bad input or no keyring backend"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES
    from jobmail.settings import SECURITY_MODES

    p = subparsers.add_parser(
        "setup",
        parents=[common],
        help=SUMMARIES["setup"],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--address", metavar="ADDR", help="your email address (FROM_ADDRESS)")
    p.add_argument("--name", metavar="NAME", help="the name you sign your emails with (FROM_NAME)")
    p.add_argument(
        "--host",
        metavar="HOST",
        help="SMTP server, or a provider's key such as gmail or office365 (default: from the address's provider)",
    )
    p.add_argument("--port", metavar="N", help="SMTP port (default: the provider's, else 587; 465 for ssl)")
    p.add_argument("--security", choices=SECURITY_MODES, help="starttls (port 587), ssl (port 465), none (local)")
    p.add_argument("--username", metavar="USER", help="login name (default: the address)")
    p.add_argument("--ca-file", metavar="PEM", help="an extra certificate to trust (a private server, a local bridge)")
    p.add_argument(
        "--auth",
        choices=("password", "oauth2"),
        help="log in with a password (default) or sign in with OAuth 2.0 (the default for Outlook.com, and "
        "offered for Microsoft 365 and Gmail): then run login",
    )
    p.add_argument(
        "--oauth-provider",
        choices=("microsoft", "google", "custom"),
        help="with --auth oauth2: the sign-in server (default: the mail provider's; custom needs the OAUTH_*_URL keys)",
    )
    p.add_argument("--client-id", metavar="ID", help="with --auth oauth2: your app registration's client ID")
    p.add_argument("--tenant", metavar="T", help="Microsoft: common (default), consumers, organizations or a tenant id")
    p.add_argument(
        "--keyring-backend",
        metavar="NAME",
        default="",
        help="keyring backend to use, e.g. keyrings.alt.file.PlaintextKeyring (default: keyring's choice)",
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from standard input")
    p.add_argument("--yes", action="store_true", help="replace an existing settings file without asking")
    p.add_argument("--no-check", action="store_true", help="do not connect to the server at the end")
    p.set_defaults(run=run)


class Answers:
    """Values from a flag, else the proposed default (flag mode), else a question.

    Questions go to the terminal, or read standard input line by line when it is not one. A wrong answer
    is asked again at a terminal, and is an error otherwise.
    """

    def __init__(self, console: Console, *, tty: bool, can_ask: bool, flag_mode: bool):
        self.console = console
        self.tty = tty
        self.can_ask = can_ask
        self.flag_mode = flag_mode

    def get(
        self,
        question: str,
        flag: str,
        given: object,
        default: str = "",
        parse: Callable[[str], str] = str.strip,
        optional: bool = False,
    ) -> str:
        """The flag's value, else the default when nothing need be asked, else the answer; all through parse."""
        if given is not None:
            return parse(str(given))
        if (self.flag_mode or not self.can_ask) and (default or optional):
            if default:  # taken without asking: shown, so that a scripted setup hides nothing
                self.console.out(f"{question}: {default} (the default; {flag} changes it)")
            return parse(default)
        if not self.can_ask:
            raise InputError(f"{question} is needed: give {flag} (standard input holds only the password)")
        while True:
            text = self._ask(question, default, flag, optional)
            try:
                return parse(text)
            except JobmailError as exc:
                if not self.tty:  # never quote a scripted answer back: it may be a misplaced password
                    raise InputError(
                        f"{question}: the answer read from standard input was refused; "
                        f"give {flag} instead, or run setup at a terminal"
                    ) from None
                self.console.out("  ", *lifted(exc.parts))

    def confirm(self, question: str) -> bool:
        try:
            answer = input(f"{question} [y/N]: ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    def _ask(self, question: str, default: str, flag: str, optional: bool) -> str:
        suffix = f" [{default}]" if default else ""
        try:
            text = input(f"{question}{suffix}: ")
        except EOFError:
            if not self.tty:
                self.console.out()
            if default or optional:
                return default
            raise InputError(f"no answer for {question.lower()}: answer it, or give {flag}") from None
        if not self.tty:
            self.console.out()  # end the prompt's line; the scripted answer is not echoed (may be a misplaced password)
        return text.strip() or default


def run(args: argparse.Namespace, console: Console) -> int:
    import os
    from pathlib import Path

    from jobmail.app import account
    from jobmail.auth.credentials import backend_name, storage_note
    from jobmail.cli.checking import print_failure, run_check
    from jobmail.settings import DEFAULT_ENV_FILE, is_loopback, load
    from jobmail.smtp.diagnose import backend_step

    out = console.out
    env_path = Path(args.env_file or DEFAULT_ENV_FILE)
    tty = sys.stdin.isatty()
    existing = _existing_values(env_path)  # a re-run: the file's values are the defaults, its keyring is used
    if not args.keyring_backend and existing.get("KEYRING_BACKEND"):
        args.keyring_backend = existing["KEYRING_BACKEND"]
    args.existing = existing
    answers = Answers(
        console,
        tty=tty,
        can_ask=tty or not args.password_stdin,
        flag_mode=any(getattr(args, key) is not None for key in ACCOUNT_FLAGS),
    )

    def stop(no_backend) -> int:
        print_failure(console, no_backend)
        out("Nothing was written.")
        return no_backend.exit_code

    # A missing keyring is told before any question when a password will surely be needed (or a backend is
    # named). When the security mode is still to be asked, the questions go on: `none` (a server on this
    # machine that asks for no login) needs no keyring; any other server stops as soon as it is named.
    plain_local = args.security == "none" and not args.password_stdin
    no_backend = None if plain_local and not args.keyring_backend else backend_step(args.keyring_backend, os.environ)
    if no_backend is not None and tty and not args.password_stdin and args.security is None:
        settled = _settle_keyring(console, args)  # at a terminal: before any question
        if settled is None:
            out("Nothing was written.")
            return no_backend.exit_code
        if settled:
            args.keyring_backend = settled
            no_backend = backend_step(settled, os.environ)
            if no_backend is not None:
                return stop(no_backend)
    if no_backend is not None:
        if args.security is not None or args.password_stdin or args.keyring_backend:
            return stop(no_backend)
        out("(No usable keyring here: only a server on this machine with security `none` can be set up without one.)")
    if env_path.exists() and not args.yes:
        if not tty:
            raise InputError(
                f"{env_path} exists: nothing changed; add --yes to replace it, "
                "or give --env-file OTHER.env to set up a second account"
            )
        if not answers.confirm(f"{env_path} exists. Replace it?"):
            out("Nothing changed. (For a second account, give --env-file OTHER.env.)")
            return EXIT_OK

    def remote_needs_keyring(host: str) -> None:
        if no_backend is not None and not is_loopback(host):
            raise _NoKeyring

    try:
        values = ask_account(console, args, answers, on_host=remote_needs_keyring)
    except _NoKeyring:
        return stop(no_backend)
    settings = account.validated(values, env_path, os.environ)
    if settings.uses_oauth:
        if no_backend is not None:
            return stop(no_backend)
        values = {**values, "KEYRING_BACKEND": backend_name(args.keyring_backend)}
        account.write_env(env_path, values, replace=env_path.exists())
        out(f"Wrote {env_path} (no password or token in it).")
        out("Next, sign in (the sign-in is kept in the keyring): ", Command("login"))
        out("Then check the account without sending anything: ", Command("check"))
        return EXIT_OK
    needs_password = settings.needs_password or args.password_stdin
    if needs_password and no_backend is not None:
        return stop(no_backend)
    if not needs_password:
        out(
            "No password stored: SMTP_SECURITY=none is for a server on this machine that asks for no login "
            "(if yours asks for one, run ",
            Command("password", "set"),
            ").",
        )
        if args.keyring_backend:  # named on purpose: kept for a later `password set`
            values = {**values, "KEYRING_BACKEND": backend_name(args.keyring_backend)}
    elif _keep_stored_password(console, args, tty, settings):
        backend = backend_name(args.keyring_backend)
        out(f"Kept the password already stored for {settings.smtp_username} at {settings.smtp_host} in {backend}.")
        values = {**values, "KEYRING_BACKEND": backend}
    else:
        password = _read_password(console, args, tty, f"Password for {settings.smtp_username} at {settings.smtp_host}")
        backend = account.store_password(settings, password, args.keyring_backend)
        del password
        out(f"Stored the password for {settings.smtp_username} at {settings.smtp_host} in {backend}.")
        note = storage_note(args.keyring_backend)
        if note:
            out(*commands_in(note))
        values = {**values, "KEYRING_BACKEND": backend}
    account.write_env(env_path, values, replace=env_path.exists())
    out(f"Wrote {env_path} (no password in it).")
    again = Command("check")
    if args.no_check:
        out("Not checked (--no-check): run ", again, " to log in without sending anything.")
        return EXIT_OK
    out("Checking the account (nothing is sent):")
    code = run_check(console, load(env_path))
    if code == EXIT_OK:
        out("Done. Re-check any time with ", again, ".")
    else:
        out(
            f"{env_path}{' and the keyring entry are' if needs_password else ' is'} saved all the same: fix what "
            f"the error says (edit {env_path}, or run setup again with --yes), then run ",
            again,
            ".",
        )
    return code


def _keep_stored_password(console: Console, args: argparse.Namespace, tty: bool, settings) -> bool:
    """At a terminal, a password already stored for this server and username (another settings file for
    the same account, or a re-run) is offered to keep; Enter keeps it."""
    from jobmail.auth.credentials import has_password

    if args.password_stdin or not tty:
        return False
    if not has_password(settings.smtp_host, settings.smtp_username, args.keyring_backend):
        return False
    try:
        answer = input(
            f"A password for {settings.smtp_username} at {settings.smtp_host} is already in the keyring. "
            "Keep it? [Y/n]: "
        )
    except EOFError:
        return True
    return answer.strip().lower() not in ("n", "no")


def _existing_values(env_path) -> dict[str, str]:
    """The values of a settings file already there (a re-run of setup), or {} when there is none or it
    cannot be read (setup then asks as for a new one)."""
    from jobmail.errors import ConfigError
    from jobmail.settings import read_values

    if not env_path.is_file():
        return {}
    try:
        return read_values(str(env_path))
    except ConfigError:
        return {}


def _settle_keyring(console: Console, args: argparse.Namespace) -> str | None:
    """No usable keyring: the choices, before any question. Returns the backend to use, "" to go on
    without one (a server on this machine), or None to stop. Nothing is installed without a yes."""
    import importlib.util

    from jobmail.auth.credentials import (
        FILE_CAVEAT,
        PLAINTEXT_BACKEND,
        _platform_choice,
        install_file_backend_command,
        send_py,
    )
    from jobmail.cli.prompts import choose

    out = console.out
    have_alt = importlib.util.find_spec("keyrings") is not None and importlib.util.find_spec("keyrings.alt") is not None
    out("No usable keyring here, and the password (or sign-in) needs one. Choose:")
    out(f"  1. {_platform_choice(sys.platform)} Then run `{send_py()} setup` again.")
    install = "" if have_alt else f" (first installs it: `{install_file_backend_command()}`)"
    out(f"  2. A file in your home folder (keyrings.alt's file backend){install}. {FILE_CAVEAT}")
    out("  3. No keyring: only for a test server on this machine that asks for no login (SMTP_SECURITY=none).")
    console.flush()
    picked = choose("Which one?", {"1": "1", "2": "2", "3": "3"}, "1")
    if picked == "1":
        out(f"Set it up, then run `{send_py()} setup` again.")
        return None
    if picked == "3":
        args.security = args.security or None
        return ""
    if not have_alt:
        answers = Answers(console, tty=True, can_ask=True, flag_mode=False)
        if not answers.confirm(f"Install keyrings.alt now with `{install_file_backend_command()}`?"):
            out(f"Not installed. Run `{install_file_backend_command()}` yourself, then `{send_py()} setup` again.")
            return None
        import subprocess

        done = subprocess.run([sys.executable, "-m", "pip", "install", _alt_requirement()], check=False)
        importlib.invalidate_caches()
        if done.returncode != 0 or importlib.util.find_spec("keyrings.alt") is None:
            out(f"The install failed (exit {done.returncode}): see pip's words above. Nothing was written.")
            return None
    out(f"Using {PLAINTEXT_BACKEND}: KEYRING_BACKEND in the settings file will say so.")
    return PLAINTEXT_BACKEND


def _alt_requirement() -> str:
    from jobmail.auth.credentials import KEYRINGS_ALT

    return KEYRINGS_ALT


class _NoKeyring(Exception):
    """Raised while asking, once the server named needs a login that no keyring can serve."""


def ask_account(
    console: Console,
    args: argparse.Namespace,
    answers: Answers,
    on_host: Callable[[str], None] = lambda host: None,
) -> dict[str, str]:
    """Collect the account's values (SMTP_HOST, ...) from flags and answers, showing the provider's note."""
    from jobmail import providers
    from jobmail.addresses import check_header_value, normalize_address
    from jobmail.app.account import check_values, parse_ca_file, parse_port, parse_security
    from jobmail.settings import DEFAULT_PORTS, SECURITY_MODES

    out = console.out
    existing: dict[str, str] = getattr(args, "existing", {}) or {}

    address = answers.get(
        "Your email address",
        "--address",
        args.address,
        existing.get("FROM_ADDRESS", ""),
        parse=lambda t: normalize_address(t, "address", test_domains=True),  # checked again once the server is known
    )

    def parse_name(text: str) -> str:
        check_header_value(text, "name")
        if not text.strip():
            raise InputError("the name is empty: give the name you sign your emails with")
        return text.strip()

    name = answers.get(
        "Your name, as you sign your emails", "--name", args.name, existing.get("FROM_NAME", ""), parse=parse_name
    )
    if address.lower() != existing.get("FROM_ADDRESS", "").strip().lower():
        existing = {}  # another account: the old file's server settings are not its defaults
    proposed = providers.for_address(address)
    if proposed is not None and args.host is None:
        _show(console, proposed)
    elif args.host is None:
        out(
            f"No built-in settings for {providers.domain_of(address)}: your provider's help pages give its SMTP "
            "server. (Google Workspace or Microsoft 365 on your own domain? Answer smtp.gmail.com or "
            "smtp.office365.com.)"
        )

    def parse_host(text: str) -> str:
        named = providers.for_host(text)
        host = named.host if named is not None else text.strip()
        check_values({"SMTP_HOST": host})
        if not host:
            raise InputError("the SMTP server is empty: give a host name like smtp.example.com")
        return host

    host = answers.get(
        "SMTP server", "--host", args.host, existing.get("SMTP_HOST") or (proposed.host if proposed else ""), parse_host
    )
    on_host(host)
    chosen = providers.for_host(host) or (proposed if proposed is not None and host == proposed.host else None)
    if chosen is not None and (chosen is not proposed or args.host is not None):
        _show(console, chosen)
    if chosen is not None and args.port is None and args.security is None:
        port, security = str(chosen.port), chosen.security
    else:
        default_port = existing.get("SMTP_PORT") or str(
            DEFAULT_PORTS[args.security or (proposed.security if proposed else "starttls")]
        )
        port = answers.get("Port", "--port", args.port, default_port, parse_port)
        default_security = args.security or existing.get("SMTP_SECURITY") or ("ssl" if port == "465" else "starttls")
        security = answers.get(
            f"Security ({', '.join(SECURITY_MODES)})",
            "--security",
            args.security,
            default_security,
            lambda t: parse_security(t, host),
        )
    ca_file = ""
    if args.ca_file is not None:
        ca_file = parse_ca_file(args.ca_file)
    elif security != "none" and (chosen is None or chosen.ca_file):  # none: no TLS, so no certificate
        what = "Bridge's exported certificate" if chosen is not None else "An extra certificate to trust"
        ca_file = answers.get(
            f"{what} (SMTP_CA_FILE: a PEM file; Enter for none)",
            "--ca-file",
            None,
            existing.get("SMTP_CA_FILE", ""),
            parse_ca_file,
            optional=True,
        )
    username = answers.get(
        "Login name", "--username", args.username, existing.get("SMTP_USERNAME") or address, _one_line("username")
    )
    oauth_values = _ask_sign_in(console, args, answers, chosen, existing)
    values = {
        "SMTP_HOST": host,
        "SMTP_SECURITY": security,
        "SMTP_PORT": port,
        "SMTP_USERNAME": username,
        "FROM_ADDRESS": address,
        "FROM_NAME": name,
    }
    if ca_file:
        values["SMTP_CA_FILE"] = ca_file
    values.update(oauth_values)
    if chosen is not None and chosen.imap_host and host == chosen.host:
        values.update(IMAP_HOST=chosen.imap_host, IMAP_PORT=str(chosen.imap_port), IMAP_SECURITY=chosen.imap_security)
        copy = "it files sent mail there itself" if chosen.files_sent else "a copy of each message goes there"
        out(f"IMAP: {chosen.imap_host} (for your Sent folder: {copy}; and `track` finds the replies).")
    elif existing.get("IMAP_HOST"):
        values.update({key: existing[key] for key in ("IMAP_HOST", "IMAP_PORT", "IMAP_SECURITY") if existing.get(key)})
    return values


def _ask_sign_in(
    console: Console, args: argparse.Namespace, answers: Answers, chosen: Provider | None, existing: dict[str, str]
) -> dict:
    """SMTP_AUTH and, for oauth2, the OAUTH_* keys: offered where the provider takes an OAuth sign-in."""
    preset = chosen.oauth if chosen is not None else ""
    if args.auth is None and not preset and existing.get("SMTP_AUTH", "password") != "oauth2":
        return {"SMTP_AUTH": "password"}

    def parse_auth(text: str) -> str:
        auth = text.strip().lower()
        if auth not in ("password", "oauth2"):
            raise InputError("answer password or oauth2")
        return auth

    default = existing.get("SMTP_AUTH") or ("oauth2" if chosen is not None and chosen.oauth_only else "password")
    auth = answers.get("Log in with (password, oauth2)", "--auth", args.auth, default, parse_auth)
    if auth == "password":
        return {"SMTP_AUTH": "password"}
    provider = args.oauth_provider or existing.get("OAUTH_PROVIDER") or preset or "custom"
    if provider == "custom":
        console.out(
            "For a server other than Microsoft's or Google's, set OAUTH_PROVIDER=custom and the OAUTH_*_URL keys "
            "in the settings file afterwards (see config.example.env)."
        )
    console.out(
        'OAuth needs an app registration of your own (free; the README\'s "Sign in with Microsoft or Google" '
        "shows how): its client ID is asked next."
    )
    client_id = answers.get(
        "OAuth client ID", "--client-id", args.client_id, existing.get("OAUTH_CLIENT_ID", ""), _one_line("client ID")
    )
    values = {"SMTP_AUTH": "oauth2", "OAUTH_PROVIDER": provider, "OAUTH_CLIENT_ID": client_id}
    if provider == "microsoft":
        values["OAUTH_TENANT"] = answers.get(
            "Microsoft tenant (common, consumers, organizations, or your tenant id)",
            "--tenant",
            args.tenant,
            existing.get("OAUTH_TENANT") or "common",
            _one_line("tenant"),
        )
    return values


def _show(console: Console, provider: Provider) -> None:
    console.out(f"{provider.name}: {provider.host}, port {provider.port}, {provider.security}.")
    console.out(f"Note: {provider.note}")


def _one_line(field: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        from jobmail.addresses import check_header_value

        check_header_value(text, field)
        if not text.strip():
            raise InputError(f"the {field} is empty")
        return text.strip()

    return parse


def _read_password(console: Console, args: argparse.Namespace, tty: bool, prompt: str) -> str:
    """One line from standard input (--password-stdin, or no terminal), else getpass twice, up to 3 tries."""
    out = console.out
    if args.password_stdin or not tty:
        out(f"{prompt}: (one line from standard input)")
        return read_password(True, prompt)
    for _ in range(2):
        try:
            return read_password(False, f"{prompt}: ")
        except InputError:
            out("  The password was empty, or the two did not match: once more.")
    return read_password(False, f"{prompt}: ")
