"""`login`: sign in with Microsoft, Google or another OAuth 2.0 server; the refresh token goes to the keyring."""

from __future__ import annotations

import argparse
import sys

from jobmail.cli.output import Console, commands_in
from jobmail.errors import EXIT_OK, Command, CredentialError

DESCRIPTION = """Sign in for the account in the settings file (SMTP_AUTH=oauth2) and keep the sign-in's refresh
token in the OS keyring; every later send gets a fresh access token from it. Two ways:
  --device   shows a web address and a short code: open it on any device (phone, laptop) and type the
             code. Works with no browser on this machine. The default where the provider offers it
             (Microsoft, or OAUTH_DEVICE_URL).
  --browser  opens the sign-in page in this machine's browser (the address is printed too); the page
             hands the answer back to this command on 127.0.0.1. The only way Google allows for Gmail.

exit codes: 0 signed in, 1 the sign-in server could not be reached, 2 the sign-in was declined, expired
or refused, or the settings are incomplete (the message says what to do), 130 interrupted"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from jobmail.cli import SUMMARIES

    p = subparsers.add_parser(
        "login",
        parents=[common],
        help=SUMMARIES["login"],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--device", dest="flow", action="store_const", const="device", help="sign in with a code")
    how.add_argument("--browser", dest="flow", action="store_const", const="browser", help="sign in in the browser")
    p.add_argument(
        "--client-secret",
        action="store_true",
        help="first ask for the app's client secret and keep it in the keyring (Google's Desktop app clients "
        "have one); an empty answer removes a stored one",
    )
    p.add_argument("--stdin", action="store_true", help="with --client-secret: read it as one line from standard input")
    p.add_argument("--logout", action="store_true", help="forget the stored sign-in instead")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from jobmail import settings as config
    from jobmail.app import signin
    from jobmail.auth.credentials import storage_note

    settings = config.load(args.env_file)
    if not settings.smtp_host or not settings.smtp_username:
        raise CredentialError(
            "SMTP_HOST and SMTP_USERNAME (or FROM_ADDRESS) must be set in .env first: run ", Command("setup")
        )
    account = f"{settings.smtp_username} at {settings.smtp_host}"
    if args.logout:
        if signin.sign_out(settings):
            console.out(f"Forgot the sign-in of {account}. To revoke it for good, remove the app in your account's")
            console.out("security settings (Microsoft: account.microsoft.com; Google: myaccount.google.com).")
        else:
            console.out(f"No sign-in was stored for {account}.")
        return EXIT_OK
    flow = signin.choose_flow(settings, args.flow)
    if args.client_secret:
        signin.store_client_secret(settings, _read_secret(args.stdin))
    console.out(f"Signing in {account} ({settings.oauth_provider or 'custom'}, {flow} sign-in).")

    def show_code(code) -> None:
        console.out(f"On any device, open {code.verification_uri} and enter the code {code.user_code}")
        if code.verification_uri_complete:
            console.out(f"  (or open {code.verification_uri_complete})")
        console.out(f"Waiting for you to approve it (the code lasts {code.expires_in / 60:.0f} min; Ctrl-C stops)...")
        console.flush()

    def open_page(url: str) -> None:
        import webbrowser

        console.out("Opening the sign-in page in your browser. If it does not open, copy this address into it:")
        console.out(f"  {url}")
        console.out("Waiting for the browser to come back (Ctrl-C stops)...")
        console.flush()
        try:
            webbrowser.open(url)
        except Exception:  # no browser here: the printed address is the way
            pass

    done = signin.sign_in(settings, flow, show_code=show_code, open_page=open_page)
    console.out(f"Signed in. The sign-in is kept in the keyring ({done.keyring}); no token is written to any file.")
    if done.scope:
        console.out(f"Granted: {done.scope}")
    note = storage_note(settings.keyring_backend)
    if note:
        console.out(*commands_in(note))
    console.out(*commands_in(f"Next: {Command('check')} tries the login without sending anything."))
    return EXIT_OK


def _read_secret(from_stdin: bool) -> str:
    import getpass

    if from_stdin:
        return sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise CredentialError("no terminal to ask for the client secret: add --stdin and pipe it")
    return getpass.getpass("Client secret (Enter for none): ").strip()
