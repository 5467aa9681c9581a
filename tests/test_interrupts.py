"""Stopping a send: Ctrl-C (SIGINT), SIGTERM (kill, systemctl stop) and a hang-up, in every phase.

Each test waits for the phase it means to interrupt (a server that saw the command, a record in the log,
the waiter's wake-up file, a line the process printed), never for a fixed time, and then asks that the
process ends with the signal's exit code and the log in the state the README gives: `failed` before the
message left, `unknown` after, `sent` once the server said 250, `scheduled` while it waits.

"ignored" starts the command the way a script's `cmd &` or some CI runners do, with SIGINT ignored:
Python then installs no Ctrl-C handler of its own, and a Ctrl-C used to be lost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import test_faults
from conftest import WITHDRAW_ARGS, wait_until
from faultserver import FaultServer
from test_faults import USERNAME, sent_account

from jobmail import interrupts
from jobmail.store.locks import SENDER_LOCK_SUFFIX, WAKE_DIR

fault_account = test_faults.fault_account  # the fixture, shared
pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals to a child process")

SIGINT_IGNORED = ("SIGINT", "ignored")
STOPS = [("SIGINT", "default"), SIGINT_IGNORED, ("SIGTERM", "default")]
CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
SAID = {"SIGINT": "interrupted", "SIGTERM": "stopped by SIGTERM", "SIGHUP": "stopped by hang-up"}


# Starts a program with SIGINT and SIGHUP as given, whatever this test run inherited (a suite started from
# a script's `cmd &` or under nohup has them ignored, and a child inherits that).
LAUNCHER = (
    "import os, signal, sys\n"
    "for name, how in zip(('SIGINT', 'SIGHUP'), sys.argv[1:3]):\n"
    "    signal.signal(getattr(signal, name), signal.SIG_IGN if how == 'ignored' else signal.SIG_DFL)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def start(account, inherited: str, *args: str, hangup: str = "default") -> subprocess.Popen:
    """`python send.py ARGS` with SIGINT `inherited` ("default", or "ignored" as a script's `cmd &`
    leaves it) and SIGHUP `hangup` ("ignored": as under nohup)."""
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, inherited, hangup, *account.argv(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=account.env,
        cwd=account.home,
    )


def stop(process: subprocess.Popen, name: str, account=None) -> tuple[str, str]:
    process.send_signal(getattr(signal, name))
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{name} did not stop the process: {err}") from None
    if account is not None:
        account.outputs += [out, err]
    return out, err


def server(tls_context, password, **faults: str) -> FaultServer:
    return FaultServer(tls=tls_context, credentials=(USERNAME, password), always=faults)


@pytest.mark.parametrize(("name", "inherited"), STOPS)
def test_a_stop_after_the_data_left_is_unknown(fault_account, password, tls_context, name, inherited):
    account = sent_account(fault_account, password, server(tls_context, password, eod="stall"))
    process = start(account, inherited, *WITHDRAW_ARGS)
    assert account.server.wait_for(lambda s: len(s.messages) == 1), "the server never got the message"
    out, err = stop(process, name, account)
    assert process.returncode == CODES[name], err
    assert SAID[name] in err and "Traceback" not in err
    assert account.statuses() == ["sending", "unknown"]
    assert "check your Sent folder" in account.records()[-1]["error"]


@pytest.mark.parametrize(("name", "inherited"), [*STOPS, ("SIGHUP", "default")])
def test_a_stop_before_the_data_left_is_failed(fault_account, password, tls_context, name, inherited):
    account = sent_account(fault_account, password, server(tls_context, password, connect="stall"), SMTP_TIMEOUT="60")
    process = start(account, inherited, *WITHDRAW_ARGS)
    assert account.server.wait_for(lambda s: s.connections == 1), "the send never connected"
    wait_until(lambda: delivering(account), "the delivery to start")
    out, err = stop(process, name, account)
    assert process.returncode == CODES[name], err
    assert SAID[name] in err and "Traceback" not in err
    assert account.statuses() == ["failed"]
    assert "interrupted before the message was sent" in account.records()[-1]["error"]
    assert account.server.messages == []


def test_after_the_250_nothing_waits_for_the_goodbye(fault_account, password, tls_context):
    """The server accepted the message and never answers QUIT: the send is over all the same (no phase is
    left in which a stop could turn a delivered message into `unknown`)."""
    account = sent_account(fault_account, password, server(tls_context, password, quit="stall"))
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert account.statuses() == ["sending", "sent"]
    assert len(account.server.messages) == 1


def test_under_nohup_a_hang_up_does_not_stop_it(fault_account, password, tls_context):
    account = sent_account(fault_account, password, server(tls_context, password, connect="stall"), SMTP_TIMEOUT="60")
    process = start(account, "default", *WITHDRAW_ARGS, hangup="ignored")
    assert account.server.wait_for(lambda s: s.connections == 1), "the send never connected"
    wait_until(lambda: delivering(account), "the delivery to start")
    process.send_signal(signal.SIGHUP)  # ignored: the kernel drops it, so the SIGTERM below is what ends it
    out, err = stop(process, "SIGTERM", account)
    assert process.returncode == 143, err
    assert account.statuses() == ["failed"]


def delivering(account) -> bool:
    """The process delivers a message: it holds the message's sender lock (`messages/<id>.lock`), which it
    takes just before it uses the connection it opened ahead (#19); a stop from here on is recorded."""
    return any((account.log_dir / "messages").glob("*" + SENDER_LOCK_SUFFIX))


def waiting(account) -> bool:
    """The process waits for a scheduled message: its wake-up file exists."""
    return any((account.log_dir / WAKE_DIR).glob("*.lock"))


@pytest.mark.parametrize(("name", "inherited"), STOPS)
def test_a_stop_while_waiting_leaves_it_scheduled(fault_account, password, name, inherited):
    account = sent_account(fault_account, password)
    process = start(account, inherited, *WITHDRAW_ARGS, "--at", "+1h")
    wait_until(lambda: waiting(account), "the waiter")
    out, err = stop(process, name, account)
    assert process.returncode == CODES[name], err
    assert "stays scheduled" in err and "Traceback" not in err
    assert account.statuses() == ["scheduled"]
    assert account.server.connections == 0


@pytest.mark.parametrize(("name", "inherited"), STOPS)
def test_a_stop_while_the_outbox_connects_leaves_it_scheduled(fault_account, password, name, inherited):
    """The message is due and the outbox is connecting (the server accepts, never greets): it stays queued."""
    account = sent_account(fault_account, password, SMTP_TIMEOUT="60")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    silent.settimeout(60)
    try:
        env = account.env_file.read_text(encoding="utf-8")
        port = silent.getsockname()[1]
        account.env_file.write_text(env.replace(f"SMTP_PORT={account.server.port}", f"SMTP_PORT={port}"))
        process = start(account, inherited, *WITHDRAW_ARGS, "--at", "+1s")
        connection, _ = silent.accept()  # the message is due and being sent
        try:
            out, err = stop(process, name, account)
        finally:
            connection.close()
    finally:
        silent.close()
    assert process.returncode == CODES[name], err
    assert "stays scheduled" in err and "Traceback" not in err
    assert account.statuses() == ["scheduled"]


@pytest.mark.parametrize(("name", "inherited"), STOPS)
def test_outbox_run_stops(fault_account, password, name, inherited):
    account = sent_account(fault_account, password)
    queued = account.run(*WITHDRAW_ARGS, "--at", "+1h", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    process = start(account, inherited, "outbox", "run")
    assert process.stdout is not None
    assert "Sending scheduled messages when due" in process.stdout.readline()
    out, err = stop(process, name, account)
    assert process.returncode == CODES[name], err
    assert "1 message(s) stay scheduled" in err and "Traceback" not in err
    assert account.statuses() == ["scheduled"]


# -- the module itself, in this process ---------------------------------------------------------------


def test_a_signal_inside_deferred_is_raised_when_the_block_ends():
    written = []
    with interrupts.handled(), pytest.raises(interrupts.Stopped) as stopped:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            written.append("the whole record")  # the handler has run by now: it only noted the signal
        written.append("never")
    assert written == ["the whole record"]
    assert stopped.value.exit_code == 143 and stopped.value.said == "SIGTERM"
    assert isinstance(stopped.value, KeyboardInterrupt)


def test_handled_overrides_an_ignored_sigint_keeps_an_ignored_hangup_and_restores_both():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts.handled():
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # nohup: stays ignored
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGHUP, before[1])


# -- Ctrl-C while a scheduled send waits at a terminal: keep it queued, or cancel it -------------------


def start_at_terminal(account, *args: str) -> tuple[subprocess.Popen, int]:
    """`python send.py ARGS` with a pseudo-terminal as its input and output; returns it and the pty's
    other end."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        account.argv(args), stdin=terminal, stdout=terminal, stderr=terminal, env=account.env, cwd=account.home
    )
    os.close(terminal)
    return process, controller


def read_until(fd: int, wanted: str, timeout: float = 30) -> str:
    """What the terminal shows, read until `wanted` appears (or the program ends, or `timeout` passes)."""
    import select
    import time

    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen.decode("utf-8", "replace"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"timed out waiting for {wanted!r}; the terminal showed: {seen!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the program ended and closed the terminal
            chunk = b""
        if not chunk:
            raise AssertionError(f"it ended before showing {wanted!r}; the terminal showed: {seen!r}")
        seen += chunk
    return seen.decode("utf-8", "replace")


def rest_of(fd: int, process: subprocess.Popen) -> str:
    """Everything the terminal shows until the program ends; then its exit code is set."""
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    process.wait(30)
    os.close(fd)
    return seen.decode("utf-8", "replace")


def stop_the_wait_at_a_terminal(account, name: str, answer: str | None) -> tuple[int, str]:
    """Send a message `--at +1h` at a terminal, stop its wait with `name`, type `answer` at the question
    (None: expect none); returns the exit code and what the terminal showed."""
    process, terminal = start_at_terminal(account, *WITHDRAW_ARGS, "--at", "+1h")
    try:
        read_until(terminal, "Ctrl-C stops waiting")
        wait_until(lambda: waiting(account), "the waiter")
        process.send_signal(getattr(signal, name))
        if answer is not None:
            read_until(terminal, "keep it, or cancel it?")
            os.write(terminal, answer.encode())
        shown = rest_of(terminal, process)
    finally:
        if process.poll() is None:
            process.kill()
    account.outputs.append(shown)
    assert "Traceback" not in shown
    return process.returncode, shown


@pytest.mark.parametrize(("answer", "statuses"), [("c\n", ["scheduled", "cancelled"]), ("\n", ["scheduled"])])
def test_ctrl_c_while_waiting_at_a_terminal_asks_to_keep_or_cancel(fault_account, password, answer, statuses):
    account = sent_account(fault_account, password)
    code, shown = stop_the_wait_at_a_terminal(account, "SIGINT", answer)
    assert code == 130, shown
    assert account.statuses() == statuses
    if statuses[-1] == "cancelled":
        assert "Cancelled: " in shown and "was not sent" in shown
    else:
        assert "stays scheduled for" in shown and "outbox run" in shown and "nothing in this terminal" in shown
    assert account.server.connections == 0


def test_sigterm_while_waiting_at_a_terminal_does_not_ask(fault_account, password):
    """SIGTERM comes from a service manager or `kill`, not from someone at the keyboard: no question."""
    account = sent_account(fault_account, password)
    code, shown = stop_the_wait_at_a_terminal(account, "SIGTERM", None)
    assert code == 143, shown
    assert "keep it, or cancel it?" not in shown and "stays scheduled for" in shown
    assert account.statuses() == ["scheduled"]
