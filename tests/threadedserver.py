"""What the tests' own scripted servers (faultserver.py for SMTP, imapfaults.py for IMAP) share: a TCP
listener on 127.0.0.1 (the port chosen by the OS), an accept loop in a thread that counts each
connection (`connections`, numbered from 0) and serves it in a thread of its own (the subclass's
`_connection(sock, faults, number)`, with the faults of `always` and `script[number]`; `ended` counts
those that are over), a condition the tests wait on (`wait_for`, woken by `_notify` on every
change), and a stop that hangs up on every client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Protocol, Self

from jobmail.loopback import LOOPBACK


class Closed(Exception):
    """The connection is over (closed by us or by the client)."""


class Connection(Protocol):
    def run(self) -> None: ...

    def close(self) -> None: ...


class ThreadedServer:
    name = "server"  # its threads' names: "<name>-accept", "<name>-<connection number>"

    def __init__(self, always: dict[str, str] | None = None, script: list[dict[str, str]] | None = None) -> None:
        self.port = 0
        self.always = dict(always or {})  # the faults of every connection
        self.script = list(script or [])  # and, on top of them, of the n-th one
        self.connections = 0
        self.ended = 0  # connections whose dialogue is over (the client hung up, or we did)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def _connection(self, sock: socket.socket, faults: dict[str, str], number: int) -> Connection:
        raise NotImplementedError

    def _serve_client(self, sock: socket.socket, number: int) -> None:
        connection = None
        try:
            sock.settimeout(30)  # the server may be stopping already: then the socket is closed (OSError)
            faults = {**self.always, **(self.script[number] if number < len(self.script) else {})}
            connection = self._connection(sock, faults, number)
            connection.run()
        except (Closed, OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                (connection or sock).close()
            with self._changed:
                self.ended += 1
                self._changed.notify_all()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()  # type: ignore[union-attr]  # set by start()
            except TimeoutError:  # the listener's 0.1 s: time to look at _stop again
                continue
            except OSError:  # closed by stop()
                return
            with self._changed:
                number = self.connections
                self.connections += 1
                self._clients.append(sock)
                self._changed.notify_all()
            thread = threading.Thread(
                target=self._serve_client, args=(sock, number), name=f"{self.name}-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        listener.settimeout(0.1)  # so that the accept loop notices stop() on every platform
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with self._changed:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 30) -> bool:
        """Block until predicate(server) holds (re-checked on every change), or the timeout passes."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
