"""A real IMAP server on 127.0.0.1 inside the test process: pymap with its in-memory (dict) backend.

pymap speaks STARTTLS itself; for implicit TLS (port 993 style) the listening socket is wrapped in TLS
and pymap is told TLS is already on (no STARTTLS offered, login allowed at once). Its event loop runs in a
thread of its own. The tests read and fill the mailbox with imaplib, as any client would (`messages`,
`deliver`): they assert on what the server holds.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import threading
import time
from argparse import Namespace

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config, DictBackend, Login
from pymap.imap import IMAPServer
from pysasl import SASLAuth

LOOPBACK = "127.0.0.1"


class _Config(Config):
    @property
    def greeting(self) -> bytes:
        return b"Server ready (pymap test server)"  # not socket.getfqdn(): no name look-up

    @property
    def tls_auth(self) -> SASLAuth:
        return SASLAuth.named([b"PLAIN", b"LOGIN"])


class ImapServer:
    def __init__(
        self,
        user: str,
        password: str,
        tls: ssl.SSLContext | None,
        implicit_tls: bool = True,
        folders: tuple[str, ...] = ("Sent",),
    ):
        self.user = user
        self.password = password
        self.tls = tls
        self.implicit_tls = implicit_tls and tls is not None
        self.folders = folders
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None

    def start(self) -> ImapServer:
        self._thread = threading.Thread(target=self._run, name="pymap", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failed is not None:
            raise self._failed
        for name in self.folders:
            with self.client() as conn:
                typ, data = conn.create(f'"{name}"')
                assert typ == "OK", data
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._start())
        except BaseException as exc:  # pragma: no cover - reported to start()
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _start(self) -> None:
        args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
        config = _Config(
            args,
            host=LOOPBACK,
            port=0,
            demo_data=False,
            demo_user=self.user,
            demo_password=self.password,
            ssl_context=self.tls or ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
            tls_enabled=self.tls is not None and not self.implicit_tls,
            invalid_user_sleep=0,
            reject_dnsbl=False,
        )
        config.apply_context()
        login = Login(config)
        await DictBackend._add_demo_user(config, login)
        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(login, config))
        self._server = await asyncio.start_server(
            callback, host=LOOPBACK, port=0, ssl=self.tls if self.implicit_tls else None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(10)

    # -- a client's view, for the tests' own checks ---------------------------------------------

    def client(self) -> imaplib.IMAP4:
        if self.implicit_tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the tests' own look: the code under test verifies
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(LOOPBACK, self.port, ssl_context=context, timeout=10)
        else:
            conn = imaplib.IMAP4(LOOPBACK, self.port, timeout=10)
            if self.tls is not None:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                conn.starttls(context)
        if self.password.isascii():
            conn.login(self.user, self.password)
        else:  # LOGIN cannot carry it: SASL PLAIN, in UTF-8
            conn.authenticate("PLAIN", lambda challenge: f"\0{self.user}\0{self.password}".encode())
        return conn

    def messages(self, folder: str) -> list[tuple[bytes, bytes]]:
        """(flags, exact bytes) of each message in `folder`, read without changing a flag."""
        found = []
        with self.client() as conn:
            typ, _ = conn.select(f'"{folder}"', readonly=True)
            assert typ == "OK"
            typ, data = conn.uid("SEARCH", "ALL")
            for uid in data[0].split():
                typ, fetched = conn.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                head, body = fetched[0][0], fetched[0][1]
                flags = head[head.index(b"FLAGS (") + 7 :].split(b")")[0]
                found.append((flags, body))
        return found

    def deliver(self, folder: str, data: bytes, flags: str = "()") -> None:
        """Put a message in `folder` (as the recipient's answer arriving)."""
        with self.client() as conn:
            typ, detail = conn.append(f'"{folder}"', flags, imaplib.Time2Internaldate(time.time()), data)
            assert typ == "OK", detail
