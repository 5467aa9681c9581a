"""A loopback IMAP4rev1 server that misbehaves on demand, for the Sent-copy fault tests.

pymap (tests/imapserver.py) is a well-behaved server: it cannot refuse an APPEND over quota, hang up
after the literal but before its tagged reply, or say BYE right after a login. This small threaded
server does exactly that. It speaks what jobmail's client (jobmail/imap/client.py, imaplib) uses:
CAPABILITY, LOGIN, LIST, SELECT/EXAMINE, SEARCH and UID SEARCH (ALL, HEADER, FROM, OR, NOT, SINCE),
APPEND with a synchronizing {n} literal (after a "+" continuation), NOOP, LOGOUT. Implicit TLS (993
style) from the first byte, on 127.0.0.1 only, port chosen by the OS.

Faults are given per stage of a connection, as `{stage: action}`:

- stages: "greeting", "capability", "login", "list", "select" (SELECT and EXAMINE), "search",
  "literal" (APPEND, before the "+" continuation), "append" (APPEND, after the literal was read),
  "logout".
- actions: a tagged reply in place of the usual one ("NO [OVERQUOTA] Quota exceeded"; for "greeting",
  the untagged line, "* BYE ..."); several lines joined with "\\n", where a line starting with "* " is
  sent as it is and the others get the command's tag ("OK LOGIN completed\\n* BYE Shutting down");
  or "close" (hang up without a reply).
- "close" at "literal": the server reads half of the literal, then hangs up (nothing stored).
  "close" at "append": the whole literal was read and the message is stored, then the server hangs up
  before the tagged reply (the client cannot tell whether the APPEND happened: it did).
- after a "* BYE" line the server says nothing more and hangs up once the client does (it reads and
  ignores what comes): the client then always reads the BYE, never a reset instead of it.

`always` applies to every connection (and may be changed between commands of the test: a fault lifted);
`script[n]`, on top of it, to the n-th connection only.

What it received is kept for the tests: `commands` (every command line, the connection's number first),
`appends` (every literal read in full, stored or not) and the folders' messages (`messages(folder)`).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import re
import socket
import ssl
from dataclasses import dataclass, field

from threadedserver import Closed as _Closed
from threadedserver import ThreadedServer

MAX_LINE = 65536
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|\((?:[^()"]|"(?:[^"\\]|\\.)*")*\)|[^\s()"]+')
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n$")


@dataclass
class Stored:
    uid: int
    flags: tuple[str, ...]
    data: bytes


@dataclass
class Folder:
    name: str
    attributes: tuple[str, ...] = ()
    messages: list[Stored] = field(default_factory=list)
    next_uid: int = 1


class ImapFaultServer(ThreadedServer):
    name = "imapfaults"

    def __init__(
        self,
        *,
        user: str,
        password: str,
        tls: ssl.SSLContext,
        folders: tuple[tuple[str, tuple[str, ...]], ...] = (("INBOX", ()), ("Sent", ("\\Sent",))),
        always: dict[str, str] | None = None,
        script: list[dict[str, str]] | None = None,
    ):
        self.user = user
        self.password = password
        self.tls = tls
        self.folders = {
            name.upper() if name.upper() == "INBOX" else name: Folder(name, attrs) for name, attrs in folders
        }
        super().__init__(always, script)
        self.logins: list[tuple[str, bool]] = []  # (user, accepted?)
        self.commands: list[tuple[int, str]] = []  # (connection, command line without its literal)
        self.appends: list[bytes] = []  # every APPEND literal read in full

    # -- lifecycle -----------------------------------------------------------------------------------

    def idle(self) -> bool:
        """Wait until every connection is over (so that what was received is all there is)."""
        return self.wait_for(lambda s: s.ended == s.connections)

    # -- the tests' view -----------------------------------------------------------------------------

    def messages(self, folder: str) -> list[bytes]:
        with self._changed:
            return [stored.data for stored in self.folders[folder].messages]

    def flags(self, folder: str) -> list[tuple[str, ...]]:
        with self._changed:
            return [stored.flags for stored in self.folders[folder].messages]

    def verbs(self, connection: int | None = None) -> list[str]:
        """The command names received (UID SEARCH is "UID SEARCH"), of one connection or all."""
        with self._changed:
            lines = [line for number, line in self.commands if connection is None or number == connection]
        found = []
        for line in lines:
            words = line.split(" ")
            verb = " ".join(words[1:3]) if len(words) > 2 and words[1].upper() == "UID" else words[1]
            found.append(verb.upper())
        return found

    def _store(self, folder: Folder, flags: tuple[str, ...], data: bytes) -> None:
        with self._changed:
            folder.messages.append(Stored(folder.next_uid, flags, data))
            folder.next_uid += 1
            self._changed.notify_all()

    # -- connections ---------------------------------------------------------------------------------

    def _connection(self, sock: socket.socket, faults: dict[str, str], number: int) -> _Connection:
        return _Connection(self, sock, faults, number)


class _Connection:
    def __init__(self, server: ImapFaultServer, sock: socket.socket, faults: dict[str, str], number: int):
        self.server = server
        self.sock = sock
        self.faults = faults
        self.number = number
        self.file = sock.makefile("rb")
        self.logged_in = False
        self.selected: Folder | None = None

    def close(self) -> None:
        for thing in (self.file, self.sock):
            with contextlib.suppress(OSError):
                thing.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def readline(self) -> bytes:
        line = self.file.readline(MAX_LINE)
        if not line:
            raise _Closed
        return line

    def read_exactly(self, size: int) -> bytes:
        data = self.file.read(size)
        if len(data) < size:
            raise _Closed
        return data

    def drain(self) -> None:
        """Say nothing more; hang up once the client does."""
        while self.file.readline(MAX_LINE):
            pass
        raise _Closed

    def reply(self, stage: str, tag: str, default: str, untagged: tuple[str, ...] = ()) -> bool:
        """Answer at `stage`: the fault if one is set, else the `untagged` lines and `default` (tagged).
        Returns whether the answer was OK."""
        action = self.faults.get(stage)
        if action is None:
            for line in untagged:
                self.send(line)
            self.send(f"{tag} {default}")
            return default.startswith("OK")
        if action == "close":
            raise _Closed
        ok = False
        bye = False
        for line in action.split("\n"):
            if line.startswith("* "):
                self.send(line)
                bye = bye or line[2:].upper().startswith("BYE")
            else:
                self.send(f"{tag} {line}")
                ok = ok or line.startswith("OK")
        if bye:
            self.drain()
        return ok

    # -- the dialogue --------------------------------------------------------------------------------

    def run(self) -> None:
        self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
        with self.server._changed:
            self.server._clients.append(self.sock)
        self.file = self.sock.makefile("rb")
        greeting = self.faults.get("greeting", "* OK IMAP4rev1 imapfaults ready")
        for line in greeting.split("\n"):
            self.send(line)
        if greeting.upper().startswith("* BYE"):
            self.drain()
        while True:
            line = self.readline()
            literal = _LITERAL.search(line)
            head = line[: literal.start()] if literal else line.rstrip(b"\r\n")
            text = head.decode("utf-8", "replace").rstrip()
            with self.server._changed:
                self.server.commands.append((self.number, text))
                self.server._changed.notify_all()
            tag, _, rest = text.partition(" ")
            verb, _, arg = rest.partition(" ")
            verb = verb.upper()
            size = int(literal.group(1)) if literal else None
            if verb == "APPEND":
                self.do_APPEND(tag, arg, size)
                continue
            if size is not None:
                self.send(f"{tag} BAD only APPEND takes a literal here")
                continue
            handler = getattr(self, "do_" + verb, None)
            if handler is None or not tag:
                self.send(f"{tag or '*'} BAD Command not recognized")
                continue
            handler(tag, arg)

    def do_CAPABILITY(self, tag: str, arg: str) -> None:
        self.reply("capability", tag, "OK CAPABILITY completed", ("* CAPABILITY IMAP4rev1 SPECIAL-USE",))

    def do_NOOP(self, tag: str, arg: str) -> None:
        self.send(f"{tag} OK NOOP completed")

    def do_LOGIN(self, tag: str, arg: str) -> None:
        args = [_unquote(token) for token in _tokens(arg.encode())]
        if len(args) != 2:
            self.send(f"{tag} BAD LOGIN takes a user name and a password")
            return
        user, password = (value.decode("utf-8", "replace") for value in args)
        good = (user, password) == (self.server.user, self.server.password)
        self.server.logins.append((user, good))
        default = "OK LOGIN completed" if good else "NO [AUTHENTICATIONFAILED] Invalid credentials"
        self.logged_in = self.reply("login", tag, default) and good

    def do_LOGOUT(self, tag: str, arg: str) -> None:
        self.reply("logout", tag, "OK LOGOUT completed", ("* BYE Logging out",))
        raise _Closed

    def need_login(self, tag: str) -> bool:
        if not self.logged_in:
            self.send(f"{tag} BAD Log in first")
        return self.logged_in

    def do_LIST(self, tag: str, arg: str) -> None:
        if not self.need_login(tag):
            return
        lines = []
        for folder in self.server.folders.values():
            attributes = " ".join(("\\HasNoChildren", *folder.attributes))
            lines.append(f'* LIST ({attributes}) "/" {_quote(folder.name)}')
        self.reply("list", tag, "OK LIST completed", tuple(lines))

    def do_SELECT(self, tag: str, arg: str, readonly: bool = False) -> None:
        if not self.need_login(tag):
            return
        folder = self.folder(arg)
        if folder is None:
            self.selected = None
            self.send(f"{tag} NO [NONEXISTENT] No such mailbox")
            return
        with self.server._changed:
            count, uidnext = len(folder.messages), folder.next_uid
        lines = (
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            f"* {count} EXISTS",
            "* 0 RECENT",
            "* OK [UIDVALIDITY 1] UIDs valid",
            f"* OK [UIDNEXT {uidnext}] Predicted next UID",
        )
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        if self.reply("select", tag, f"OK [{mode}] {'EXAMINE' if readonly else 'SELECT'} completed", lines):
            self.selected = folder

    def do_EXAMINE(self, tag: str, arg: str) -> None:
        self.do_SELECT(tag, arg, readonly=True)

    def do_UID(self, tag: str, arg: str) -> None:
        command, _, rest = arg.partition(" ")
        if command.upper() != "SEARCH":
            self.send(f"{tag} BAD UID {command} not supported here")
            return
        self.do_SEARCH(tag, rest, uid=True)

    def do_SEARCH(self, tag: str, arg: str, uid: bool = False) -> None:
        if not self.need_login(tag):
            return
        if self.selected is None:
            self.send(f"{tag} BAD No mailbox selected")
            return
        tokens = [_unquote(token) for token in _tokens(arg.encode())]
        with self.server._changed:
            messages = list(self.selected.messages)
        try:
            found = []
            for number, stored in enumerate(messages, 1):
                criteria = list(tokens)
                if _matches_all(criteria, stored.data):
                    found.append(stored.uid if uid else number)
        except ValueError as exc:
            self.send(f"{tag} BAD {exc}")
            return
        line = "* SEARCH" + "".join(f" {n}" for n in found)
        self.reply("search", tag, "OK SEARCH completed", (line,))

    def do_APPEND(self, tag: str, arg: str, size: int | None) -> None:
        if size is None:
            self.send(f"{tag} BAD APPEND needs a literal")
            return
        if not self.logged_in:
            self.send(f"{tag} BAD Log in first")
            return
        tokens = _tokens(arg.encode())
        folder = self.folder(tokens[0].decode("utf-8", "replace")) if tokens else None
        flags = next((t for t in tokens[1:] if t.startswith(b"(")), b"()")
        action = self.faults.get("literal")
        if action == "close":
            self.send("+ Ready for literal data")
            self.read_exactly(max(size // 2, 1))
            raise _Closed
        if action is not None:  # refused before the literal: the client must not send it
            self.reply("literal", tag, "")
            return
        self.send("+ Ready for literal data")
        data = self.read_exactly(size)
        self.readline()  # the end of the command line, after the literal
        with self.server._changed:
            self.server.appends.append(data)
            self.server._changed.notify_all()
        if folder is None:
            self.send(f"{tag} NO [TRYCREATE] No such mailbox")
            return
        stored = tuple(flags.decode().strip("()").split())
        action = self.faults.get("append")
        if action is None:
            self.server._store(folder, stored, data)  # stored before the reply, as a real server does
            self.send(f"{tag} OK [APPENDUID 1 {folder.next_uid - 1}] APPEND completed")
            return
        if action == "close":
            self.server._store(folder, stored, data)  # it happened; the answer is what is lost
            raise _Closed
        if action.startswith("OK"):
            self.server._store(folder, stored, data)
        self.reply("append", tag, "")

    def folder(self, arg: str) -> Folder | None:
        tokens = _tokens(arg.encode())
        name = _unquote(tokens[0]).decode("utf-8", "replace") if tokens else ""
        key = "INBOX" if name.upper() == "INBOX" else name
        return self.server.folders.get(key)


# -- parsing ------------------------------------------------------------------------------------------


def _tokens(data: bytes) -> list[bytes]:
    return _TOKEN.findall(data)


def _unquote(token: bytes) -> bytes:
    if token.startswith(b'"') and token.endswith(b'"') and len(token) >= 2:
        return re.sub(rb"\\(.)", rb"\1", token[1:-1])
    return token


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header(data: bytes, name: str) -> str:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    return " ".join(str(value) for value in msg.get_all(name, []))


def _matches_all(criteria: list[bytes], data: bytes) -> bool:
    """Every search key in `criteria` (consumed) holds for the message (RFC 3501 6.4.4, a small part)."""
    ok = True
    while criteria:
        ok = _matches(criteria, data) and ok
    return ok


def _matches(criteria: list[bytes], data: bytes) -> bool:
    key = criteria.pop(0).decode("utf-8", "replace").upper()
    if key == "ALL":
        return True
    if key in ("SINCE", "BEFORE", "ON"):  # the internal date: every message here is of today
        criteria.pop(0)
        return key != "BEFORE"
    if key == "HEADER":
        name, value = criteria.pop(0).decode(), criteria.pop(0).decode("utf-8", "replace")
        return value.lower() in _header(data, name).lower()
    if key in ("FROM", "TO", "SUBJECT"):
        return criteria.pop(0).decode("utf-8", "replace").lower() in _header(data, key).lower()
    if key == "OR":
        first, second = _matches(criteria, data), _matches(criteria, data)
        return first or second
    if key == "NOT":
        return not _matches(criteria, data)
    raise ValueError(f"search key {key} not supported here")
