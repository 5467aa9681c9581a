"""A loopback SMTP server that misbehaves on demand, for the fault-injection tests.

aiosmtpd cannot greet with 421, stall forever, or drop the connection between the end of the
message data and its reply, so this is a small threaded server written for exactly that. It speaks
enough SMTP for smtplib: EHLO/HELO, STARTTLS (or TLS from the first byte), AUTH PLAIN and LOGIN,
MAIL, RCPT, DATA (with dot-unstuffing), BDAT (with `chunking="on"`), RSET, NOOP, QUIT. It listens on 127.0.0.1 only.

Faults are given per stage of a connection, as `{stage: action}`:

- stages: "connect" (the greeting), "ehlo", "starttls", "auth", "mail", "rcpt" (every RCPT) or
  "rcpt:ADDRESS" (one recipient), "data" (the reply to the DATA command), "eod" (the reply after the
  message data: DATA's dot, or the BDAT ... LAST chunk), "bdat" (the reply to a BDAT chunk before the
  last), "quit".
- actions: a reply ("421 4.3.2 Try again later"; several lines joined with "\\n"), "close" (close
  the connection without a reply), "reset" (close with a TCP reset), "stall" (never answer), "endless"
  (`250-...` continuation lines, as fast as the client takes them, never a last line), "drip" (a reply
  that never ends, one byte every `drip_interval` seconds), "late" (the usual reply, but only once the
  server has had a later connection: a greeting slower than the client's patience, answered as soon as
  the client tries a second connection), or a reply followed by "\\nclose" (say it, then close the
  connection).

`always` applies to every connection; `script[n]` (on top of it) to the n-th connection only, so
`script=[{"rcpt": "451 4.3.0 Try later"}]` refuses the first attempt and accepts the second.

After the message data ("eod"), a message is kept (`messages`) when the action is a 2xx reply, or
"close", "reset" or "stall": the server has the data and may deliver it, which is exactly the case the
client cannot tell apart from a delivery. A 4xx or 5xx reply keeps nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import secrets
import socket
import ssl
import struct
import sys
from collections.abc import Callable

from threadedserver import Closed as _Closed
from threadedserver import ThreadedServer

from jobmail.loopback import LOOPBACK, Received, free_port

MAX_LINE = 4096


class FaultServer(ThreadedServer):
    name = "faultserver"

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        always: dict[str, str] | None = None,
        script: list[dict[str, str]] | None = None,
        auth_without_tls: bool = False,
        echo_auth: bool = False,
        eightbit: bool = True,
        pipelining: str | None = None,
        chunking: str | None = None,
        drip_interval: float = 0.5,
        oauth_token: str | None = None,
        mechanisms: str = "PLAIN LOGIN",
        plain_asks_again: bool = False,
    ):
        self.mechanisms = mechanisms  # the AUTH mechanisms EHLO offers
        self.plain_asks_again = plain_asks_again  # answer AUTH PLAIN's initial response with 334, once
        self.oauth_token = oauth_token  # offer AUTH XOAUTH2 too, and take this access token
        self.drip_interval = drip_interval
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.credentials = credentials
        self.auth_without_tls = auth_without_tls  # offer AUTH on a plaintext connection (a careless server)
        self.echo_auth = echo_auth  # quote the credentials back in a 535 reply (a very careless server)
        self.eightbit = eightbit  # offer 8BITMIME
        # offer PIPELINING; "strict": answer MAIL only once the next command has come too (a client that
        # waits for each reply stalls here)
        self.pipelining = pipelining
        # offer CHUNKING (RFC 3030): "on" takes BDAT; "lie" offers it and then does not know BDAT (500)
        self.chunking = chunking
        self.mail_params: list[str] = []  # the parameters of every accepted MAIL FROM, e.g. "BODY=8BITMIME"
        super().__init__(always, script)
        self.messages: list[Received] = []
        self.auth_attempts: list[tuple[str, bool]] = []  # (username, over TLS?)
        self.commands: list[str] = []  # the verb of every command received, in order ("EHLO", "QUIT" ...)
        self.tls_failures = 0

    # -- connections ---------------------------------------------------------------------------------

    def _connection(self, sock: socket.socket, faults: dict[str, str], number: int) -> _Connection:
        return _Connection(self, sock, faults, number)


class _Connection:
    """One client: reads commands, answers them, applies the faults."""

    def __init__(self, server: FaultServer, sock: socket.socket, faults: dict[str, str], number: int):
        self.server = server
        self.number = number  # 0 for the server's first connection
        self.sock = sock
        self.faults = faults
        self.file = sock.makefile("rb")
        self.ahead: list[bytes] = []  # lines read before their turn (a pipelining client's next command)
        self.encrypted = False
        self.authenticated = False
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []
        self.chunks: list[bytes] = []  # BDAT chunks of the message so far

    def close(self) -> None:
        """Close the connection (the TLS one when there is one): the client sees EOF, or a reset."""
        for thing in (self.file, self.sock):
            with contextlib.suppress(OSError):
                thing.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def send_lines(self, text: str) -> None:
        data = "".join(line + "\r\n" for line in text.split("\n")).encode("utf-8")
        self.sock.sendall(data)

    def readline(self) -> bytes:
        if self.ahead:
            return self.ahead.pop(0)
        line = self.file.readline(MAX_LINE)
        if not line:
            raise _Closed
        return line

    def reply(self, stage: str, default: str, keep: Callable[[], None] | None = None) -> bool:
        """Answer at `stage`: the fault if one is set, else `default`. Returns whether it was a success."""
        action = self.faults.get(stage, default)
        if action == "late":
            with self.server._changed:
                self.server._changed.wait_for(
                    lambda: self.server.connections > self.number + 1 or self.server._stop.is_set(), timeout=30
                )
            action = default
        if action in ("close", "reset", "stall") and keep is not None:
            keep()
        if action == "close":
            raise _Closed
        if action == "reset":
            linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)  # on, 0 s: close sends RST
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            raise _Closed
        if action == "stall":
            self.server._stop.wait()
            raise _Closed
        if action == "endless":  # until the client hangs up (the send fails) or the server stops
            line = b"250-" + b"x" * 70 + b"\r\n"
            while not self.server._stop.is_set():
                self.sock.sendall(line * 64)
            raise _Closed
        if action == "drip":  # the reply's code, then "-" and "x" after "x", one byte at a time
            pending = (default[:3] + "-").encode()
            while not self.server._stop.wait(self.server.drip_interval):
                self.sock.sendall(pending[:1] or b"x")
                pending = pending[1:]
            raise _Closed
        if action.endswith("\nclose"):  # the reply, then the connection closed
            self.send_lines(action.removesuffix("\nclose"))
            raise _Closed
        ok = action[:1] in ("2", "3")
        if ok and keep is not None:
            keep()  # kept before the reply goes out, as a real server does: a client may hang up at once
        self.send_lines(action)
        return ok

    def start_tls(self) -> bool:
        try:
            self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError):
            self.server.tls_failures += 1
            raise _Closed from None
        with self.server._changed:
            self.server._clients.append(self.sock)
        self.file = self.sock.makefile("rb")
        self.encrypted = True
        return True

    # -- the dialogue --------------------------------------------------------------------------------

    def run(self) -> None:
        if self.server.implicit_tls:
            self.start_tls()
        self.reply("connect", f"220 {LOOPBACK} ESMTP faultserver")
        while True:
            line = self.readline().decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            with self.server._changed:
                self.server.commands.append(verb)
                self.server._changed.notify_all()
            handler = getattr(self, "do_" + verb, None)
            if handler is None:
                self.send_lines("500 5.5.2 Command not recognized")
                continue
            handler(arg)

    def offers_auth(self) -> bool:
        return self.server.credentials is not None and (self.encrypted or self.server.auth_without_tls)

    def do_EHLO(self, arg: str) -> None:
        lines = [LOOPBACK, "SIZE 10240000"] + (["8BITMIME"] if self.server.eightbit else [])
        lines += ["PIPELINING"] if self.server.pipelining else []
        lines += ["CHUNKING"] if self.server.chunking else []
        if self.server.tls is not None and not self.encrypted:
            lines.append("STARTTLS")
        if self.offers_auth():
            lines.append(f"AUTH {self.server.mechanisms}" + (" XOAUTH2" if self.server.oauth_token else ""))
        text = "\n".join([f"250-{x}" for x in lines[:-1]] + [f"250 {lines[-1]}"])
        self.reply("ehlo", text)

    def do_HELO(self, arg: str) -> None:
        self.reply("ehlo", f"250 {LOOPBACK}")

    def do_STARTTLS(self, arg: str) -> None:
        if self.server.tls is None or self.encrypted:
            self.send_lines("502 5.5.1 STARTTLS not available")
            return
        if self.reply("starttls", "220 2.0.0 Ready to start TLS"):
            self.start_tls()

    def do_AUTH(self, arg: str) -> None:
        if not self.offers_auth():
            self.send_lines("503 5.5.1 AUTH not available")
            return
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            payload = initial or self.challenge("")
            if initial and self.server.plain_asks_again and self.challenge("") != initial:
                self.send_lines("535 5.7.8 the answer was not the initial response again")
                return
            _, user, password = _b64(payload).split(b"\0", 2)
        elif mechanism == "XOAUTH2" and self.server.oauth_token:
            fields = dict(part.split(b"=", 1) for part in _b64(initial).split(b"\x01") if b"=" in part)
            user, password = fields.get(b"user", b""), fields.get(b"auth", b"").removeprefix(b"Bearer ")
            if password.decode() == self.server.oauth_token:  # the right token counts as the right password
                password = self.server.credentials[1].encode()
        elif mechanism == "LOGIN":
            user = _b64(initial or self.challenge("VXNlcm5hbWU6"))
            password = _b64(self.challenge("UGFzc3dvcmQ6"))
        elif mechanism == "CRAM-MD5":  # RFC 2195: the answer is the user and an HMAC of the challenge
            nonce = f"<{secrets.token_hex(8)}@{LOOPBACK}>".encode()
            user, _, digest = _b64(self.challenge(base64.b64encode(nonce).decode())).rpartition(b" ")
            expected = hmac.new(self.server.credentials[1].encode(), nonce, "md5").hexdigest().encode()
            password = self.server.credentials[1].encode() if hmac.compare_digest(digest, expected) else b"?"
        else:
            self.send_lines("504 5.5.4 Unrecognized authentication type")
            return
        user_text, password_text = user.decode("utf-8", "replace"), password.decode("utf-8", "replace")
        self.server.auth_attempts.append((user_text, self.encrypted))
        good = (user_text, password_text) == self.server.credentials
        if self.server.echo_auth:
            default = f"535 5.7.8 Bad credentials: AUTH {arg} (user {user_text!r}, password {password_text!r})"
        else:
            default = "235 2.7.0 Authentication successful" if good else "535 5.7.8 Authentication credentials invalid"
        self.authenticated = self.reply("auth", default) and good

    def challenge(self, prompt: str) -> str:
        self.send_lines(f"334 {prompt}")
        return self.readline().decode("ascii", "replace").strip()

    def do_MAIL(self, arg: str) -> None:
        if self.server.tls is not None and not self.encrypted:
            self.send_lines("530 5.7.0 Must issue a STARTTLS command first")
            return
        if self.server.credentials is not None and not self.authenticated:
            self.send_lines("530 5.7.0 Authentication required")
            return
        if self.server.pipelining == "strict":  # the next command must be on its way without this reply
            self.ahead.append(self.readline())
        if self.reply("mail", "250 2.1.0 Ok"):
            self.mail_from = _address(arg)
            self.rcpt_tos = []
            self.server.mail_params.append(arg[arg.find(">") + 1 :].strip())

    def do_RCPT(self, arg: str) -> None:
        if self.mail_from is None:
            self.send_lines("503 5.5.1 Error: need MAIL command")
            return
        address = _address(arg)
        stage = f"rcpt:{address}" if f"rcpt:{address}" in self.faults else "rcpt"
        if self.reply(stage, "250 2.1.5 Ok"):
            self.rcpt_tos.append(address)

    def do_DATA(self, arg: str) -> None:
        if not self.rcpt_tos:
            self.send_lines("503 5.5.1 Error: need RCPT command")
            return
        if not self.reply("data", "354 End data with <CR><LF>.<CR><LF>"):
            return
        lines = []
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        self.end_message(b"".join(lines))

    def end_message(self, data: bytes) -> None:
        """The reply after the whole message ("eod"), keeping it where the fault says the server has it."""
        queue_id = secrets.token_hex(5).upper()
        received = Received(self.mail_from, list(self.rcpt_tos), data, queue_id)

        def keep() -> None:
            with self.server._changed:
                self.server.messages.append(received)
                self.server._changed.notify_all()

        self.reply("eod", f"250 2.0.0 Ok: queued as {queue_id}", keep=keep)
        self.mail_from, self.rcpt_tos = None, []

    def do_BDAT(self, arg: str) -> None:
        """BDAT SIZE [LAST] (RFC 3030): SIZE bytes of the message follow the command line as they are. The
        reply to the LAST chunk is the "eod" stage (as after DATA's dot); to the others, "bdat"."""
        if self.server.chunking != "on":  # a server that offered it and does not know it
            self.send_lines("500 5.5.2 Command not recognized")
            return
        size, _, last = arg.partition(" ")
        chunk = self.file.read(int(size))
        if len(chunk) < int(size):
            raise _Closed
        self.chunks.append(chunk)
        if last.strip().upper() != "LAST":
            self.reply("bdat", "250 2.0.0 Chunk received")
            return
        data, self.chunks = b"".join(self.chunks), []
        if not self.rcpt_tos:
            self.send_lines("503 5.5.1 Error: need RCPT command")
            return
        self.end_message(data)

    def do_RSET(self, arg: str) -> None:
        self.mail_from, self.rcpt_tos = None, []
        self.send_lines("250 2.0.0 Ok")

    def do_NOOP(self, arg: str) -> None:
        self.send_lines("250 2.0.0 Ok")

    def do_QUIT(self, arg: str) -> None:
        self.reply("quit", "221 2.0.0 Bye")
        raise _Closed


def _b64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=False)


def _address(arg: str) -> str:
    """The address in `FROM:<a@b> SIZE=1` or `TO:<a@b>`."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        return rest[1 : rest.find(">")]
    return rest.split(" ")[0]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    return free_port()
