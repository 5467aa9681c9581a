"""Server settings of common mail providers, matched on the address's domain (no DNS look-up).

A custom domain hosted by Google Workspace or Microsoft 365 cannot be recognised from the address
alone; `for_host` lets the user name the provider's host (or its key, e.g. "gmail") instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    host: str
    port: int
    security: str
    note: str
    domains: tuple[str, ...] = ()
    app_password: bool = False  # the normal account password is refused over SMTP
    ca_file: bool = False  # the server has its own certificate: SMTP_CA_FILE is needed
    oauth: str = ""  # its OAUTH_PROVIDER preset, where it takes an OAuth 2.0 sign-in
    oauth_only: bool = False  # it takes no password over SMTP at all: SMTP_AUTH=oauth2 is the only way
    imap_host: str = ""  # its IMAP server (IMAP_HOST), for the Sent copy and `track`
    imap_port: int = 993
    imap_security: str = "ssl"
    files_sent: bool = False  # it files mail sent over SMTP in Sent by itself: SENT_COPY=auto appends nothing


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "gmail",
        "Gmail / Google Workspace",
        "smtp.gmail.com",
        587,
        "starttls",
        "Gmail needs an app password: Google Account > Security > 2-Step Verification > App passwords "
        "(turn on 2-Step Verification first). Your normal password is refused with 535. Where app passwords "
        "are missing (many work and school accounts, Advanced Protection), sign in with Google instead "
        '(SMTP_AUTH=oauth2: README, "Sign in with Microsoft or Google").',
        ("gmail.com", "googlemail.com"),
        app_password=True,
        oauth="google",
        imap_host="imap.gmail.com",
        files_sent=True,
    ),
    Provider(
        "outlook",
        "Outlook.com / Hotmail / Live",
        "smtp-mail.outlook.com",
        587,
        "starttls",
        "Outlook.com, Hotmail and Live take no password or app password over SMTP since September 2024 "
        "(535 5.7.139): sign in with Microsoft (SMTP_AUTH=oauth2, then `python send.py login`), with a "
        'free app registration of your own (README, "Sign in with Microsoft or Google").',
        (
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "windowslive.com",
            "outlook.fr",
            "outlook.de",
            "outlook.es",
            "outlook.it",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "hotmail.es",
            "hotmail.it",
            "live.co.uk",
            "live.fr",
            "live.de",
            "live.nl",
            "live.ca",
            "live.com.au",
        ),
        oauth="microsoft",
        oauth_only=True,
        imap_host="outlook.office365.com",
        files_sent=True,
    ),
    Provider(
        "office365",
        "Microsoft 365 (work or school)",
        "smtp.office365.com",
        587,
        "starttls",
        "Microsoft 365 turns password login over SMTP off for every organisation by the end of December 2026: "
        "sign in with Microsoft (SMTP_AUTH=oauth2, then `python send.py login`). Either way your admin must "
        "allow Authenticated SMTP for your mailbox, or login fails with 535 5.7.139. Log in with your full "
        "address.",
        ("onmicrosoft.com",),
        oauth="microsoft",
        imap_host="outlook.office365.com",
        files_sent=True,
    ),
    Provider(
        "yahoo",
        "Yahoo Mail",
        "smtp.mail.yahoo.com",
        465,
        "ssl",
        "Yahoo needs an app password: Yahoo Account Security > Generate app password. Your normal password is refused.",
        (
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.it",
            "yahoo.es",
            "yahoo.ca",
            "yahoo.com.au",
            "yahoo.co.in",
        ),
        app_password=True,
        imap_host="imap.mail.yahoo.com",
    ),
    Provider(
        "aol",
        "AOL Mail",
        "smtp.aol.com",
        465,
        "ssl",
        "AOL needs an app password: AOL Account Security > Generate app password.",
        ("aol.com", "aim.com"),
        app_password=True,
        imap_host="imap.aol.com",
    ),
    Provider(
        "icloud",
        "iCloud Mail",
        "smtp.mail.me.com",
        587,
        "starttls",
        "iCloud needs an app-specific password: appleid.apple.com > Sign-In and Security > "
        "App-Specific Passwords. Log in with your full iCloud address.",
        ("icloud.com", "me.com", "mac.com"),
        app_password=True,
        imap_host="imap.mail.me.com",
    ),
    Provider(
        "fastmail",
        "Fastmail",
        "smtp.fastmail.com",
        465,
        "ssl",
        "Fastmail needs an app password with SMTP access: Settings > Privacy & Security > App passwords.",
        (
            "fastmail.com",
            "fastmail.fm",
            "fastmail.cn",
            "fastmail.co.uk",
            "fastmail.de",
            "fastmail.es",
            "fastmail.in",
            "fastmail.jp",
            "fastmail.to",
            "fastmail.us",
            "messagingengine.com",
        ),
        app_password=True,
        imap_host="imap.fastmail.com",
    ),
    Provider(
        "zoho",
        "Zoho Mail",
        "smtp.zoho.com",
        465,
        "ssl",
        "Zoho: accounts in another data centre use its host (smtp.zoho.eu, smtp.zoho.in, smtp.zoho.com.au, "
        "smtp.zoho.jp: the one your Zoho web address ends with). With two-factor authentication on, use an "
        "app-specific password (Zoho Accounts > Security > App Passwords).",
        ("zoho.com", "zohomail.com"),
        imap_host="imap.zoho.com",
        files_sent=True,
    ),
    Provider(
        "zoho-eu",
        "Zoho Mail (EU)",
        "smtp.zoho.eu",
        465,
        "ssl",
        "Zoho: with two-factor authentication on, use an app-specific password "
        "(Zoho Accounts > Security > App Passwords).",
        ("zohomail.eu",),
        imap_host="imap.zoho.eu",
        files_sent=True,
    ),
    Provider(
        "proton",
        "Proton Mail (through Proton Mail Bridge)",
        "127.0.0.1",
        1025,
        "starttls",
        "Proton Mail sends through Proton Mail Bridge running on this computer (paid plans). Use the username "
        "and the password that Bridge shows for SMTP (not your Proton password). Bridge has its own "
        "certificate: export it (Bridge > Settings > Advanced > Export TLS certificates) and set SMTP_CA_FILE "
        "to the exported cert.pem.",
        ("proton.me", "protonmail.com", "protonmail.ch", "pm.me"),
        ca_file=True,
        imap_host="127.0.0.1",
        imap_port=1143,
        imap_security="starttls",
    ),
    Provider(
        "gmx",
        "GMX (gmx.net, gmx.de, gmx.at, gmx.ch)",
        "mail.gmx.net",
        587,
        "starttls",
        "GMX blocks SMTP until you allow it: Settings > POP3 & IMAP > Allow access via POP3 and IMAP. "
        "Log in with your full address.",
        ("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
        imap_host="imap.gmx.net",
    ),
    Provider(
        "gmx-com",
        "GMX (gmx.com)",
        "mail.gmx.com",
        587,
        "starttls",
        "GMX blocks SMTP until you allow it: Settings > POP3 & IMAP > Allow access via POP3 and IMAP. "
        "Log in with your full address.",
        ("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"),
        imap_host="imap.gmx.com",
    ),
)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(".").lower()


def for_address(address: str) -> Provider | None:
    """The provider whose domain (or a parent domain, e.g. x.onmicrosoft.com) the address is at."""
    domain = domain_of(address)
    for provider in PROVIDERS:
        for known in provider.domains:
            if domain == known or domain.endswith("." + known):
                return provider
    return None


def for_host(answer: str) -> Provider | None:
    """The provider named by its SMTP host or its key ("gmail", "office365"); None for any other host.

    A loopback host (Proton Mail Bridge's) is never matched: it may be any local server.
    """
    text = answer.strip().lower()
    for provider in PROVIDERS:
        if text == provider.key or (text == provider.host and not _is_loopback_name(provider.host)):
            return provider
    return None


def keys() -> list[str]:
    return [provider.key for provider in PROVIDERS]


def _is_loopback_name(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")
