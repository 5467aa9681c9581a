"""One IMAP client: connect (TLS verified), log in, find the Sent folder, append a copy once, find replies.

imaplib (the standard library), not IMAPClient or imap-tools: everything used here (LOGIN or AUTHENTICATE
XOAUTH2, LIST, EXAMINE, UID SEARCH HEADER, APPEND, UID FETCH BODY.PEEK) is in it; `IMAP4_SSL` and
`starttls()` take our own ssl.SSLContext, so certificates are checked exactly as for SMTP (the same
context, SMTP_CA_FILE included: jobmail.smtp.client.ssl_context); and it adds no package to install,
pin and keep up with. What it lacks (quoting, LIST parsing, modified UTF-7 names) is short and here.

imaplib is imported by this package only, and only the paths that use IMAP import it: a send with a Sent
copy to make, `outbox run` and `track` with IMAP_HOST set, `check` with IMAP_HOST set.

Read-only where it only looks: INBOX is opened with EXAMINE and read with BODY.PEEK (no flag changes).
"""

from __future__ import annotations

import base64
import email.policy
import imaplib
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from jobmail.errors import Command, MailboxError
from jobmail.settings import Settings
from jobmail.smtp import client as smtp_client
from jobmail.smtp.explain import redact_all

# The usual names of the Sent folder, tried in order when no folder carries the \Sent attribute.
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail")
EXCERPT_LINES = 4  # the reply's first lines kept in the log (quoted text and signatures left out)
EXCERPT_CHARS = 400
_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)', re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s\"\\]+>")


@dataclass(frozen=True)
class Folder:
    name: str  # as the server names it (modified UTF-7), for commands
    flags: frozenset[str]  # lowercased: {"\\sent", "\\hasnochildren"}

    @property
    def shown(self) -> str:
        return decode_name(self.name)


@dataclass(frozen=True)
class Reply:
    """A message in the mailbox that answers one of ours."""

    answers: str  # our Message-ID it answers
    message_id: str  # its own Message-ID ("" when it has none)
    sender: str  # its From: address
    sender_name: str
    date: str  # its Date: as ISO 8601 ("" when unreadable)
    subject: str
    excerpt: str  # its first lines


# -- connecting -----------------------------------------------------------------------------------


class Mailbox:
    """A logged-in IMAP connection. Use `connect()`; leave the `with` block to log out."""

    def __init__(self, conn: imaplib.IMAP4, settings: Settings, tls: str | None, secret: str = ""):
        self.conn = conn
        self.settings = settings
        self.tls = tls
        self._secret = secret  # the password or token it logged in with: hidden in every error's text
        self._folders: list[Folder] | None = None

    # -- folders

    def folders(self) -> list[Folder]:
        if self._folders is None:
            typ, data = self._call("listing the folders", self.conn.list)
            self._folders = [folder for folder in (_parse_list(item) for item in data) if folder is not None]
        return self._folders

    def sent_folder(self) -> Folder:
        """SENT_FOLDER when set (it must exist), else the \\Sent folder (RFC 6154), else a usual name."""
        folders = self.folders()
        wanted = self.settings.sent_folder
        if wanted:
            encoded = encode_name(wanted)
            for folder in folders:
                if folder.name == encoded or folder.shown == wanted:
                    return folder
            raise MailboxError(
                f"SENT_FOLDER={wanted!r} is not a folder on {self.settings.imap_server}: the folders are "
                f"{_names(folders)}; set SENT_FOLDER to one of them"
            )
        for folder in folders:
            if "\\sent" in folder.flags:
                return folder
        by_name = {folder.shown.lower(): folder for folder in folders}
        for name in SENT_NAMES:
            if name.lower() in by_name:
                return by_name[name.lower()]
        raise MailboxError(
            f"no Sent folder found on {self.settings.imap_server} (none is marked \\Sent, and none is named "
            f"{', '.join(repr(n) for n in SENT_NAMES)}): the folders are {_names(folders)}; set SENT_FOLDER "
            "to the one your mail program files sent mail in"
        )

    # -- the Sent copy

    def holds(self, folder: Folder, message_id: str) -> bool:
        """Whether `folder` holds a message with this Message-ID (opened read-only)."""
        self._examine(folder.name)
        typ, data = self._call(
            f"searching {folder.shown}", self.conn.uid, "SEARCH", "HEADER", "Message-ID", quote(message_id)
        )
        return bool(data and data[0] and data[0].split())

    def save_copy(self, folder: Folder, data: bytes, message_id: str) -> str:
        """Append `data` with \\Seen unless a message with `message_id` is already there (searched first, so
        a retry never makes a second copy). Returns "saved" or "found"."""
        if self.holds(folder, message_id):
            return "found"
        when = imaplib.Time2Internaldate(time.time())
        self._call(f"saving the copy in {folder.shown}", self.conn.append, quote(folder.name), r"(\Seen)", when, data)
        return "saved"

    # -- replies

    def search_folders(self) -> list[Folder]:
        """INBOX, and the provider's "All Mail" (\\All, RFC 6154) where it has one (Gmail: archived answers)."""
        found = [Folder("INBOX", frozenset())]
        found += [folder for folder in self.folders() if "\\all" in folder.flags and folder.name.upper() != "INBOX"]
        return found

    def replies(self, ours: Iterable[str], since: date | None, own: Iterable[str]) -> list[Reply]:
        """The messages of INBOX (and All Mail) whose In-Reply-To or References holds one of `ours`,
        dated `since` or later; a message from one of the `own` addresses is not a reply. Read-only:
        EXAMINE and BODY.PEEK, no flag is set."""
        wanted = {message_id for message_id in ours if _MESSAGE_ID.fullmatch(message_id)}
        mine = {address.lower() for address in own if address}
        found: dict[str, Reply] = {}
        for folder in self.search_folders():
            self._examine(folder.name)
            for uid in self._uids_answering(folder, wanted, since):
                reply = self._read_reply(folder, uid, wanted)
                if reply is None or reply.sender.lower() in mine:
                    continue
                found.setdefault(reply.message_id or f"{folder.name}:{uid.decode()}", reply)
        return list(found.values())

    def _uids_answering(self, folder: Folder, wanted: set[str], since: date | None) -> list[bytes]:
        uids: dict[bytes, None] = {}
        window = ("SINCE", since.strftime("%d-%b-%Y")) if since is not None else ()
        for message_id in sorted(wanted):
            typ, data = self._call(
                f"searching {folder.shown}",
                self.conn.uid,
                "SEARCH",
                *window,
                "OR",
                "HEADER",
                "In-Reply-To",
                quote(message_id),
                "HEADER",
                "References",
                quote(message_id),
            )
            for uid in (data[0] or b"").split() if data else ():
                uids.setdefault(uid, None)
        return list(uids)

    def _read_reply(self, folder: Folder, uid: bytes, wanted: set[str]) -> Reply | None:
        typ, data = self._call(f"reading a reply in {folder.shown}", self.conn.uid, "FETCH", uid, "(BODY.PEEK[])")
        raw = next((item[1] for item in data if isinstance(item, tuple) and len(item) > 1), None)
        if not isinstance(raw, bytes):
            return None
        return parse_reply(raw, wanted)

    def latest_from(self, address: str) -> bytes | None:
        """The raw bytes of the latest message in INBOX from `address` (highest UID: the last to arrive), or
        None. Read-only: EXAMINE and BODY.PEEK."""
        self._examine("INBOX")
        typ, data = self._call("searching INBOX", self.conn.uid, "SEARCH", "FROM", quote(address))
        uids = (data[0] or b"").split() if data else []
        if not uids:
            return None
        latest = max(uids, key=int)
        typ, data = self._call("reading a message in INBOX", self.conn.uid, "FETCH", latest, "(BODY.PEEK[])")
        raw = next((item[1] for item in data if isinstance(item, tuple) and len(item) > 1), None)
        return raw if isinstance(raw, bytes) else None

    # -- plumbing

    def _examine(self, name: str) -> None:
        self._call(f"opening {decode_name(name)}", self.conn.select, quote(name), True)

    def _call(self, doing: str, method: Callable, *args: object) -> tuple[str, list]:
        try:
            typ, data = method(*args)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise failure(exc, self.settings, doing, secret=self._secret) from None
        if typ != "OK":
            raise refused(data, self.settings, doing, secret=self._secret)
        return typ, data

    def close(self) -> None:
        try:
            self.conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


@contextmanager
def connect(settings: Settings, secret: Callable[[], str]) -> Iterator[Mailbox]:
    """Connect with IMAP_SECURITY (certificate and host name verified), log in with the SMTP password or
    OAuth token (`secret`), yield the Mailbox, log out. Raises MailboxError with a one-line hint, in which
    the password or token never appears (fetched first: a server may quote it, even in its greeting)."""
    token = secret()
    conn = _open(settings, token)
    try:
        _login(conn, settings, token)
        box = Mailbox(conn, settings, _tls_version(conn), token)
    except BaseException:
        try:
            conn.shutdown()
        except OSError:
            pass
        raise
    try:
        yield box
    finally:
        box.close()


def _open(settings: Settings, token: str = "") -> imaplib.IMAP4:
    security = settings.imap_security
    try:
        context = smtp_client.ssl_context(settings) if security != "none" else None
    except Exception as exc:  # SMTP_CA_FILE unusable: the same words as for SMTP
        raise MailboxError(str(exc)) from None
    host, port, timeout = settings.imap_host, settings.imap_port, settings.smtp_timeout
    try:
        if security == "ssl":
            return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
        conn = imaplib.IMAP4(host, port, timeout=timeout)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise failure(exc, settings, "connecting", secret=token) from None
    if security == "starttls":
        try:
            conn.starttls(context)
        except (imaplib.IMAP4.error, OSError) as exc:
            conn.shutdown()
            raise failure(exc, settings, "starting TLS (STARTTLS)", secret=token) from None
    return conn


def _login(conn: imaplib.IMAP4, settings: Settings, token: str) -> None:
    """LOGIN; for a user name or password beyond ASCII (which LOGIN's quoted strings cannot carry, and
    imaplib cannot encode), AUTHENTICATE PLAIN, in UTF-8 (RFC 4616), where the server offers it."""
    user = settings.imap_username
    try:
        if settings.uses_oauth:
            conn.authenticate("XOAUTH2", _xoauth2(user, token))
        elif user.isascii() and token.isascii():
            conn.login(user, token)
        elif "AUTH=PLAIN" in conn.capabilities:
            conn.authenticate("PLAIN", lambda challenge: f"\0{user}\0{token}".encode())
        else:
            offered = " ".join(c for c in conn.capabilities if c.startswith("AUTH=")) or "LOGIN only"
            raise MailboxError(
                f"IMAP {settings.imap_server} cannot take a user name or password with non-ASCII characters "
                f"(it offers {offered}, not AUTH=PLAIN): make an app password with your provider and store it "
                "with ",
                Command("password", "set"),
            )
    except (imaplib.IMAP4.error, OSError, UnicodeError) as exc:
        raise failure(exc, settings, "logging in", secret=token) from None


def _xoauth2(user: str, token: str) -> Callable[[bytes], bytes]:
    """SASL XOAUTH2's one message; to the server's error challenge, the empty answer that ends it."""
    sent: list[bool] = []

    def answer(challenge: bytes) -> bytes:
        if sent:
            return b""
        sent.append(True)
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

    return answer


def _tls_version(conn: imaplib.IMAP4) -> str | None:
    sock = getattr(conn, "sock", None)
    return sock.version() if isinstance(sock, ssl.SSLSocket) else None


# -- what went wrong, in one line with what to do -------------------------------------------------


def failure(exc: BaseException, settings: Settings, doing: str, secret: str = "") -> MailboxError:
    where = f"IMAP {settings.imap_server}"
    text = _hidden(_text(exc), settings, secret)
    if doing == "logging in" and "[UNAVAILABLE]" in text.upper():  # RFC 5530: the server's trouble, for now
        return MailboxError(f"{where} cannot log anyone in right now ({text}): it is tried again later")
    if doing == "logging in" and not isinstance(exc, imaplib.IMAP4.abort | OSError):  # a NO or BAD to it
        # (abort: the connection ended, a BYE among them; OSError: the network: neither says the password)
        fix: tuple[str | Command, ...] = (
            ("sign in again with ", Command("login"))
            if settings.uses_oauth
            else ("IMAP uses the SMTP password: store it with ", Command("password", "set"))
        )
        return MailboxError(
            f"{where} refused the login as {settings.imap_username} ({text}): check IMAP_USERNAME and that IMAP "
            "is turned on in your mail account's settings; ",
            *fix,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxError(
            f"{where}: the server's certificate could not be verified ({exc.verify_message}): check IMAP_HOST, "
            "or trust a private certificate with SMTP_CA_FILE"
        )
    if isinstance(exc, ssl.SSLError) and any(mark in str(exc) for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER")):
        return MailboxError(
            f"{where} did not answer in TLS ({text}): the TLS mode does not match the port: use IMAP_SECURITY=ssl "
            "with port 993 and starttls with port 143"
        )
    if "STARTTLS" in text.upper() and "not supported" in text:
        return MailboxError(
            f"{where} does not offer STARTTLS: the TLS mode does not match the port: use IMAP_SECURITY=ssl with "
            "port 993 and starttls with port 143"
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        mode = " (a port that expects TLS at once, like 993, needs IMAP_SECURITY=ssl)" if doing == "connecting" else ""
        return MailboxError(f"{where} did not answer within {settings.smtp_timeout:g}s while {doing}{mode}")
    if isinstance(exc, ConnectionRefusedError):
        return MailboxError(f"{where} refused the connection: check IMAP_HOST and IMAP_PORT")
    if isinstance(exc, socket.gaierror):
        return MailboxError(f"{where}: no such host ({text}): check IMAP_HOST")
    if isinstance(exc, imaplib.IMAP4.abort):  # a BYE, or the connection lost: imaplib's words in brackets
        return MailboxError(f"{where}: the connection ended while {doing} ({text})")
    return MailboxError(f"{where}: failed while {doing}: {text}")


def refused(data: list, settings: Settings, doing: str, secret: str = "") -> MailboxError:
    text = " ".join(item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in data)
    text = _hidden(text, settings, secret)
    if "OVERQUOTA" in text.upper() or "quota" in text.lower():
        return MailboxError(
            f"IMAP {settings.imap_server}: the mailbox is over its quota ({text}) while {doing}: make room in it"
        )
    return MailboxError(f"IMAP {settings.imap_server} refused {doing}: {text}")


def _hidden(text: str, settings: Settings, secret: str) -> str:
    """`text` with the password or token replaced wherever it appears: plain or base64 (as for SMTP), and
    escaped as an IMAP quoted string or a bytes repr (imaplib's "unexpected response: b'...'") shows it."""
    if not secret:
        return text
    escaped = [secret.replace("\\", "\\\\").replace('"', '\\"'), repr(secret.encode("utf-8"))[2:-1]]
    return redact_all(text, settings.imap_username, [secret, *escaped])


def _text(exc: BaseException) -> str:
    """The words of an imaplib or socket error: a server's reply (bytes) decoded, not shown as a repr."""
    words = [arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg) for arg in exc.args]
    text = " ".join(words) if words else str(exc)
    return " ".join(text.split()) or type(exc).__name__


# -- names and messages ---------------------------------------------------------------------------


def quote(text: str) -> str:
    """An IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_list(item: object) -> Folder | None:
    """One LIST response (`(\\HasNoChildren \\Sent) "/" "Sent Items"`, or a literal name) -> a Folder."""
    if isinstance(item, tuple):  # the name came as a literal
        head, literal = item[0], item[1]
        found = _LIST_LINE.match(head)
        name = literal.decode("utf-8", "replace") if found else ""
    elif isinstance(item, bytes):
        found = _LIST_LINE.match(item)
        raw = found.group("name").strip() if found else b""
        if raw.startswith(b'"') and raw.endswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        name = raw.decode("utf-8", "replace")
    else:
        return None
    if not found or not name:
        return None
    flags = frozenset(flag.lower() for flag in found.group("flags").decode("ascii", "replace").split())
    if "\\noselect" in flags or "\\nonexistent" in flags:
        return None
    return Folder(name, flags)


def _names(folders: list[Folder]) -> str:
    return ", ".join(repr(folder.shown) for folder in folders) or "(none)"


def encode_name(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501, 5.1.3): `Envoyés` is `Envoy&AOk-s`."""
    out: list[str] = []
    wide: list[str] = []

    def flush() -> None:
        if wide:
            encoded = base64.b64encode("".join(wide).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + encoded.decode("ascii") + "-")
            wide.clear()

    for ch in name:
        if " " <= ch <= "~":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            wide.append(ch)
    flush()
    return "".join(out)


def decode_name(name: str) -> str:
    def wide(found: re.Match) -> str:
        body = found.group(1)
        if not body:
            return "&"
        padded = body.replace(",", "/") + "=" * (-len(body) % 4)
        try:
            return base64.b64decode(padded).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return found.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", wide, name)


def parse_reply(raw: bytes, wanted: set[str]) -> Reply | None:
    """The reply's fields, when its In-Reply-To or References holds one of `wanted` (else None)."""
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    in_reply_to = _MESSAGE_ID.findall(str(msg.get("In-Reply-To", "")))
    references = _MESSAGE_ID.findall(str(msg.get("References", "")))
    answers = next((mid for mid in [*in_reply_to, *reversed(references)] if mid in wanted), None)
    if answers is None:
        return None
    name, address = next(iter(getaddresses([str(msg.get("From", ""))])), ("", ""))
    try:
        when = parsedate_to_datetime(str(msg.get("Date", ""))).isoformat()
    except (TypeError, ValueError, IndexError):
        when = ""
    own_id = _MESSAGE_ID.findall(str(msg.get("Message-ID", "")))
    return Reply(
        answers=answers,
        message_id=own_id[0] if own_id else "",
        sender=address,
        sender_name=name,
        date=when,
        subject=" ".join(str(msg.get("Subject", "")).split()),
        excerpt=_excerpt(msg),
    )


def _excerpt(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError):
        return ""
    lines: list[str] = []
    for line in str(text).splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or stripped in ("--", "-- "):
            break
        if stripped.lower().startswith("on ") and stripped.endswith("wrote:"):
            break
        if stripped:
            lines.append(stripped)
        if len(lines) >= EXCERPT_LINES:
            break
    return "\n".join(lines)[:EXCERPT_CHARS]
