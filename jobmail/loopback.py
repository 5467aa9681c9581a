"""A real SMTP server on 127.0.0.1 inside this process (aiosmtpd), for the demo, the tests and the benchmark.

It only ever listens on the loopback interface: nothing sent to it leaves the machine.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

LOOPBACK = "127.0.0.1"


@dataclass
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    queue_id: str


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Offer PIPELINING (RFC 2920) as real providers do; aiosmtpd reads pipelined commands in order
        but does not say so. CHUNKING too on a server that takes BDAT (ChunkingSMTP)."""
        session.host_name = hostname
        offers = ["250-PIPELINING", *(["250-CHUNKING"] if isinstance(server, ChunkingSMTP) else [])]
        return [*responses[:-1], *offers, responses[-1]]

    async def handle_DATA(self, server, session, envelope):
        queue_id = secrets.token_hex(5).upper()
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, queue_id))
        return f"250 2.0.0 Ok: queued as {queue_id}"


class ChunkingSMTP(SMTP):
    """aiosmtpd's SMTP session with BDAT (RFC 3030 CHUNKING), which Postfix, Gmail and Microsoft 365 offer:
    `BDAT SIZE [LAST]` and then SIZE bytes of the message as they are. The LAST chunk ends the message as
    DATA's dot does (the handler's handle_DATA). Binary content (BINARYMIME) is not offered."""

    _chunks_of: object = None
    _chunks: list[bytes] = []

    async def smtp_BDAT(self, arg: str) -> None:
        size, _, last = arg.strip().partition(" ")
        if not size.isdigit() or last.strip().upper() not in ("", "LAST"):
            await self.push("501 5.5.4 Syntax: BDAT SIZE [LAST]")  # nothing can be read past a bad size
            return
        chunk = await self._reader.readexactly(int(size))  # read whatever follows, as RFC 3030 4.2 says
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if self._chunks_of is not self.envelope:  # a new transaction (MAIL after RSET or the last message)
            self._chunks_of, self._chunks = self.envelope, []
        chunks = self._chunks
        chunks.append(chunk)
        limit = self.data_size_limit
        if limit and sum(map(len, chunks)) > limit:
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: Too much mail data")
            return
        if not last:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        content = b"".join(chunks)
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class _Controller(Controller):
    def __init__(self, *args: Any, chunking: bool = False, **kwargs: Any):
        self.chunking = chunking
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return (ChunkingSMTP if self.chunking else SMTP)(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class LoopbackServer:
    """Start with `with LoopbackServer(...) as server:`; `server.port`, `server.messages`.

    tls: a server-side SSLContext; with implicit_tls it wraps the whole connection (port-465 style),
    otherwise it is offered through STARTTLS (port-587 style) and required before AUTH and MAIL.
    credentials: (username, password) to require AUTH; None accepts mail without login.
    """

    def __init__(
        self,
        handler=None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        hostname: str = LOOPBACK,
        chunking: bool = False,
    ):
        self.handler = handler if handler is not None else Recorder()
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.credentials = credentials
        self.hostname = hostname
        self.chunking = chunking  # offer CHUNKING and take BDAT (ChunkingSMTP)
        self.port = 0
        self.auth_attempts: list[str] = []  # the usernames that tried to log in
        self._controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.auth_attempts.append(auth_data.login.decode("utf-8", "replace"))
        ok = (
            self.credentials is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode("utf-8", "replace"), auth_data.password.decode("utf-8", "replace"))
            == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def _auth_options(self) -> dict[str, Any]:
        """aiosmtpd's login options: AUTH required, with these credentials, when any are given."""
        if self.credentials is None:
            return {}
        return dict(
            authenticator=self._authenticate,
            auth_required=True,
            # with implicit TLS the whole connection is encrypted already
            auth_require_tls=self.tls is not None and not self.implicit_tls,
        )

    def _controller_for(self, port: int):
        options = self._auth_options()
        if self.tls is not None and self.implicit_tls:
            options["ssl_context"] = self.tls
        elif self.tls is not None:
            options.update(tls_context=self.tls, require_starttls=True)
        return _Controller(
            self.handler,
            chunking=self.chunking,
            hostname=self.hostname,
            port=port,
            ready_timeout=10,
            server_hostname="localhost",
            **options,
        )

    def start(self) -> LoopbackServer:
        last_error: OSError | None = None
        for _ in range(5):  # a port picked free can be taken before we bind it: try another
            port = free_port()
            controller = self._controller_for(port)
            try:
                controller.start()
            except OSError as exc:
                last_error = exc
                continue
            self.port, self._controller = port, controller
            return self
        raise RuntimeError(f"could not start the loopback SMTP server: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
