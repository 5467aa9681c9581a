"""A connection opened ahead (#19): the SMTP connection made in a thread while the message is still being
prepared, so that a send over a real link waits for the network once, not after everything else.

Over a link of 20-150 ms most of a send's wait is the TCP handshake, the greeting, EHLO, STARTTLS, the TLS
handshake and EHLO again, and none of them needs the message. `Ahead(settings)` starts a thread that opens
the TCP connection at once (name look-up included); while it travels, the caller imports the SMTP client
(ssl, smtplib) and hands over its `connect` with `go()`: the thread then builds the TLS context (the
system's CAs: some 30 ms), and greets and secures the connection exactly as
`jobmail.smtp.client.connect` does for any send, on that socket. The thread imports nothing itself (two
threads importing at once could meet in a circular import), but for the idna codec that an
internationalised host name needs.

Nothing about the message, and no password, goes on the wire from the thread. It reads no reply before
`give()` hands it the password (read from the keyring by the caller meanwhile; an implicit-TLS handshake
needs none and goes on), so that a server that quotes it, even in its greeting, has it hidden there as on
any connection. The delivery
`take()`s the session for its first attempt (a failure here is that attempt's failure, with the same
stage and text); a message that never gets there (it fails its checks, it is a refused duplicate,
Ctrl-C) is ended by `close()`, at once: QUIT on a session that is ready (its reply not waited for), and
for one still connecting, a shut-down socket (a duplicate of the TCP one, so that it also reaches a TLS
handshake under way), which wakes the thread; it closes what it holds. The thread is a daemon: a process
that ends never waits for it.

This module is imported before the heavy part of a send: it needs only socket and threading.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from jobmail.settings import Settings, loopback_addresses

TYPE_CHECKING = False
if TYPE_CHECKING:
    import smtplib

    from jobmail.smtp.client import Session

Connect = Callable[..., "Session"]  # jobmail.smtp.client.connect

# A connection ready and unused for longer than this (an IMAP search for --reply-to-latest took its time),
# or whose greeting waited as long for the password to come (the keyring asked to be unlocked), is not
# trusted to be open still: servers end idle sessions (RFC 5321 4.5.3.2 asks for 5 minutes; some wait
# less). It is closed and a new one made, as part of the same attempt.
IDLE_LIMIT = 20.0  # seconds
PASSWORD_WAIT_LIMIT = 20.0  # seconds

# How long close() waits for a thread it has stopped to leave OpenSSL: a process must not exit while the
# thread is inside it (OpenSSL's own clean-up at exit would free what the thread still uses: a crash). A
# stopped handshake or read ends at once; loading the CA bundle takes some tens of ms. A thread still
# making its TCP connection (no OpenSSL yet; it cannot be interrupted) is not waited for.
STOP_WAIT = 2.0  # seconds


def wire_name(host: str) -> str | bytes:
    """A host name as the resolver and the TLS handshake are given it: an ASCII name as bytes, which both
    use as they are; a str goes through the idna codec, whose import (encodings.idna, stringprep,
    unicodedata: ~2 ms of every send) gives the same bytes for an ASCII name. An internationalised name
    stays a str."""
    return host.encode("ascii") if host.isascii() else host


def open_tcp(host: str, port: int, timeout: float, loopback: list[str] | None) -> socket.socket:
    """A TCP connection to `host`:`port`, as smtplib makes it; with `loopback` (a plaintext connection), to
    one of those addresses only, never to the name again (asked twice, a name can answer otherwise)."""
    if loopback is None:
        return socket.create_connection((wire_name(host), port), timeout)  # type: ignore[arg-type]  # bytes: fine
    failure = OSError(f"{host} does not resolve to loopback addresses only")
    for address in loopback:  # localhost may be ::1 and 127.0.0.1, the server on one of them
        try:
            return socket.create_connection((wire_name(address), port), timeout)  # type: ignore[arg-type]
        except OSError as exc:
            failure = exc
    raise failure


class Ahead:
    """The connection to the account's server, being opened in a thread (see the module's text)."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._loopback = loopback_addresses(settings.smtp_host) if settings.smtp_security == "none" else None
        self._go = threading.Event()
        self._given = threading.Event()  # the secrets are known: the thread may read replies
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._connect: Connect | None = None
        self._secrets: list[str] = []  # the password, when the caller read it (give())
        self._tcp: socket.socket | Exception | None = None  # the TCP connection, or how making it failed
        self._wake: socket.socket | None = None  # a duplicate of it: shut down, it stops any read (TLS too)
        self._conn: smtplib.SMTP | None = None  # the SMTP connection being greeted
        self._session: Session | None = None
        self._error: BaseException | None = None
        self._ready_at = 0.0
        self._state = "open"  # open -> taken | closed
        self._in_tcp = True  # making the TCP connection (no OpenSSL yet)
        self._stale = False  # it waited for the password too long: ended unused, take() makes a new one
        thread = threading.Thread(target=self._run, name="jobmail-connect", daemon=True)
        thread.start()

    def go(self, connect: Connect) -> None:
        """Greet and secure the connection with `connect` (jobmail.smtp.client.connect), in the thread,
        once `give()` has said what to hide in its replies."""
        self._connect = connect
        self._go.set()

    def give(self, secrets: list[str]) -> None:
        """`secrets` (the password; none for OAuth, whose token is fetched later) never appear in a reply
        read on the connection: the thread reads none before this."""
        self._secrets = list(secrets)
        self._given.set()

    def password(self) -> str | None:
        """The password given (the caller read it from the keyring while this connected), if any."""
        return self._secrets[0] if self._secrets else None

    def _wait_secrets(self) -> list[str]:
        """For the connection, before it reads its first reply (in the thread)."""
        waiting = time.monotonic()
        self._given.wait()
        if self._state == "closed":
            raise OSError("the connection opened ahead was closed")
        if time.monotonic() - waiting > PASSWORD_WAIT_LIMIT:  # the server may have given up: take() makes a new one
            self._stale = True
            raise OSError("the connection opened ahead waited too long for the password")
        return self._secrets

    def _run(self) -> None:
        settings = self._settings
        try:
            if settings.smtp_security != "none" or self._loopback:
                try:
                    tcp = open_tcp(settings.smtp_host, settings.smtp_port, settings.smtp_timeout, self._loopback)
                except Exception as exc:  # raised again by connect(), at its tcp stage, for the same text
                    self._tcp = exc
                else:
                    try:
                        wake: socket.socket | None = tcp.dup()
                    except OSError:  # out of descriptors: close() then waits for the thread's own timeout
                        wake = None
                    with self._lock:
                        self._tcp, self._wake = tcp, wake
                        closed = self._state == "closed"
                    if closed:
                        _shut(wake)
            self._in_tcp = False
            self._go.wait()
            connect = self._connect
            if connect is None or self._state == "closed":
                return
            session = connect(settings, pending=self._wait_secrets, opened=self._opened, sock=self._tcp)
        except BaseException as exc:  # kept for take(): never a thread's traceback on the terminal
            self._error = exc
        else:
            with self._lock:
                keep = self._state != "closed"
                self._session = session if keep else None
                self._ready_at = time.monotonic()
            if not keep:
                session.leave()
        finally:
            with self._lock:
                wake, self._wake = self._wake, None
            if wake is not None:
                wake.close()
            if self._session is None and isinstance(self._tcp, socket.socket) and self._conn is None:
                self._tcp.close()  # never handed to a connection (closed before it went on)
            self._done.set()

    def _opened(self, conn: smtplib.SMTP) -> None:
        self._conn = conn

    def take(self, secrets: list[str]) -> Session:
        """The connection, greeted and secured; raises what connect() raised. `secrets` (an access token
        fetched since) are hidden in every reply read from now on, as connect(secrets=...) hides them."""
        with self._lock:
            if self._state != "open":
                raise RuntimeError("the connection opened ahead was already taken or closed")
            self._state = "taken"
        if not self._given.is_set():  # never told (a caller that gave no password): what is known now
            self.give(secrets)
        if not self._go.is_set():  # never handed over (a caller that did not import the client): do it now
            from jobmail.smtp.client import connect

            self.go(connect)
        try:
            while not self._done.wait(0.25):  # in slices: Ctrl-C interrupts a wait on every platform
                pass
        except BaseException:  # Ctrl-C while it connects: stop it, nothing was sent
            self._stop()
            raise
        known = [*self._secrets, *secrets]  # a new connection hides the password given, as this one does
        if self._stale and self._connect is not None:  # never used: connect anew, as part of the same attempt
            return self._connect(self._settings, secrets=known)
        if self._error is not None:
            raise self._error
        session, fresh = self._session, self._connect
        if session is None or fresh is None:
            raise RuntimeError("the connection opened ahead ended without a session or an error")
        try:
            for secret in secrets:
                session.conn.hide(secret)  # type: ignore[attr-defined]  # jobmail.smtp.client's own connection
            if time.monotonic() - self._ready_at > IDLE_LIMIT:  # it waited too long to be trusted: a new one
                session.leave()
                return fresh(self._settings, secrets=known)
            session.conn.restart_deadline()  # type: ignore[attr-defined]  # the attempt starts now
        except BaseException:  # Ctrl-C right here: the session is not left open behind the caller's back
            session.leave()
            raise
        return session

    def finished(self, timeout: float | None = None) -> bool:
        """Whether the thread has ended (waiting up to `timeout` seconds): connected, failed or stopped."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """End a connection that was not taken: QUIT when it is ready (its reply not waited for), else stop
        it where it is, and wait (STOP_WAIT at most) for the thread to leave OpenSSL."""
        with self._lock:
            if self._state != "open":
                return
        self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._state = "closed"
            session = self._session
            if session is None and self._wake is not None:
                _shut(self._wake)  # wakes the thread in any read: the greeting, the TLS handshake, EHLO
        if session is not None:
            session.leave()
        self._go.set()  # a thread still waiting for go() or give() ends
        self._given.set()
        if not self._in_tcp:
            self._done.wait(STOP_WAIT)


def _shut(sock: socket.socket | None) -> None:
    """Stop a connection another thread may be reading: shutdown() wakes a blocked recv, close() may not."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
