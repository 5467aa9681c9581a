"""Faults, bad input and secrets: every fault ends in one clear line, the right exit code, the right
log record, and no duplicate or lost message. Run against a real (misbehaving) loopback server.

After every test here, a scan checks that the password appears nowhere: not in the log folder, the
.env, any file the test created in the project tree, or anything a command printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (
    PROJECT,
    USERNAME,
    WITHDRAW_ARGS,
    Account,
    account_values,
    clean_environ,
    server_context,
    wait_until,
)
from faultserver import FaultServer, closed_port

from jobmail.loopback import LOOPBACK

POSIX_ONLY = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")
TO = "jordan.lee@acme.example.com"


@dataclass
class FaultAccount(Account):
    """An Account whose every command's output is kept, for the secrets scan."""

    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, **kwargs):
        result = super().run(*args, **kwargs)
        self.outputs += [" ".join(args), result.stdout, result.stderr]
        return result

    def statuses(self) -> list[str]:
        return [r["status"] for r in self.records()]


# -- the secrets scan ----------------------------------------------------------------------------------

SKIP_DIRS = {".venv", ".git", "__pycache__"}


def secret_forms(password: str) -> list[str]:
    """The password, the base64 forms AUTH PLAIN and LOGIN put on the wire, and the password escaped as
    JSON, an IMAP quoted string and a bytes repr write it (the same as the plain form for most passwords)."""
    plain = base64.b64encode(f"\0{USERNAME}\0{password}".encode()).decode()
    escaped = {
        json.dumps(password, ensure_ascii=False)[1:-1],
        password.replace("\\", "\\\\").replace('"', '\\"'),
        repr(password.encode())[2:-1],
    }
    return [password, base64.b64encode(password.encode()).decode().rstrip("="), plain.rstrip("="), *escaped]


def is_test_keyring(path: Path, home: Path) -> bool:
    return path.is_relative_to(home / "data") and path.name.startswith("keyring")


def leaks(password: str, accounts: list[FaultAccount], since: float) -> list[str]:
    forms = secret_forms(password)
    found = []

    def check_file(path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return
        if any(form.encode() in data for form in forms):
            found.append(str(path))

    for account in accounts:
        for path in account.home.rglob("*"):
            if path.is_file() and not is_test_keyring(path, account.home):
                check_file(path)
        for text in account.outputs:
            if any(form in text for form in forms):
                found.append(f"output: {text[:200]!r}")
    for root, dirs, files in os.walk(PROJECT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            path = Path(root, name)
            try:
                changed = path.stat().st_mtime >= since
            except OSError:
                continue
            if changed:
                check_file(path)
    return found


@pytest.fixture
def fault_account(tmp_path, tls_context, ca_file, password):
    """fault_account(server=None, mode="starttls", ca=True, **env) -> FaultAccount with a FaultServer running.

    `server` is a FaultServer (not yet started); by default a well-behaved one for `mode`.
    Afterwards: the server stops, and the password must appear in no file or output of the test.
    """
    accounts: list[FaultAccount] = []
    servers: list[FaultServer] = []
    since = time.time() - 1

    def make(server: FaultServer | None = None, mode: str = "starttls", ca: bool = True, **overrides):
        if server is None:
            server = FaultServer(
                tls=None if mode == "none" else tls_context,
                implicit_tls=mode == "ssl",
                credentials=(USERNAME, password),
            )
        server.start()
        servers.append(server)
        home = tmp_path / f"user{len(accounts)}"
        home.mkdir()
        values = {**account_values(server.port, mode, home), "SEND_ATTEMPTS": "3"}
        if ca and mode != "none":
            values["SMTP_CA_FILE"] = str(ca_file)
        values.update({k: str(v) for k, v in overrides.items()})
        account = FaultAccount(server, home / ".env", home, home / "log", clean_environ(home))
        account.write_env(**values)
        accounts.append(account)
        return account

    yield make
    for server in servers:
        server.stop()
    found = leaks(password, accounts, since)
    assert not found, f"the password leaked into: {found}"


def error_line(result) -> str:
    """The one `error:` line of a failed command; no traceback anywhere."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(lines[0])  # the last thing said
    return lines[0]


AHEAD_ONLY = ("EHLO", "HELO", "STARTTLS", "QUIT")


def message_commands(server: FaultServer) -> list[str]:
    """The commands that had to do with a message or a login. A send connects ahead, while it still makes
    and checks the message (#19); one that stops before its delivery (bad input, a refused duplicate)
    closes that connection having said at most EHLO, STARTTLS and QUIT."""
    return [verb for verb in server.commands if verb not in AHEAD_ONLY]


def nothing_went_out(server: FaultServer) -> bool:
    """No message, no login, no envelope: at most a connection opened ahead and closed. Judged once the
    server is done with every connection (a command sent just before the client hung up is counted)."""
    assert server.wait_for(lambda s: s.ended == s.connections), "a connection was left open"
    return server.messages == [] and server.auth_attempts == [] and message_commands(server) == []


def sent_account(fault_account, password, server=None, **env) -> FaultAccount:
    account = fault_account(server, **env)
    account.store_password(password)
    return account


def tls_server(tls_context, password, **kwargs) -> FaultServer:
    return FaultServer(tls=tls_context, credentials=(USERNAME, password), **kwargs)


# -- transient faults: retried, then sent once --------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "statuses", "code"),
    [
        ([{"connect": "421 4.3.2 Too busy, try again later"}], ["retrying", "sending", "sent"], 421),
        ([{"rcpt": "451 4.3.0 Temporary lookup failure"}], ["retrying", "sending", "sent"], 451),
        ([{"data": "451 4.3.0 Queue full, try again"}], ["sending", "retrying", "sending", "sent"], 451),
        ([{"mail": "reset"}], ["retrying", "sending", "sent"], None),
        ([{"auth": "454 4.7.0 Temporary authentication failure"}], ["retrying", "sending", "sent"], 454),
        ([{"starttls": "454 4.7.0 TLS not available right now"}], ["retrying", "sending", "sent"], 454),
    ],
    ids=["421-at-connect", "451-at-rcpt", "451-at-data", "reset-before-data", "454-at-auth", "454-at-starttls"],
)
def test_transient_fault_is_retried_and_the_message_arrives_once(
    fault_account, password, tls_context, script, statuses, code
):
    account = sent_account(fault_account, password, tls_server(tls_context, password, script=script))
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "attempt 1 failed" in result.stderr and "retrying" in result.stderr
    assert account.statuses() == statuses
    retrying = next(r for r in account.records() if r["status"] == "retrying")
    assert retrying["attempt"] == 1
    assert (retrying["reply"] or {}).get("code") == code
    sent = account.records()[-1]
    assert sent["attempts"] == 2 and sent["reply"]["code"] == 250
    assert len(account.server.messages) == 1
    assert account.server.connections == 2


def test_refused_connection_is_retried_then_fails(fault_account, password):
    account = fault_account(SMTP_PORT=str(closed_port()), SEND_ATTEMPTS="3")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    short = account.records()[-1]["id"][:8]
    assert f"Logged as {short} in " in result.stderr  # where to find the failed message
    line = error_line(result)
    assert "refused the connection" in line and "SMTP_PORT" in line and "gave up after 3 attempts" in line
    assert account.statuses() == ["retrying", "retrying", "failed"]
    assert account.records()[-1]["attempts"] == 3
    assert [r["attempt"] for r in account.records()[:2]] == [1, 2]


def test_a_server_that_never_answers_times_out_and_is_retried(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"connect": "stall"})
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="1", SEND_ATTEMPTS="2")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "did not answer within 1s while connecting" in line and "gave up after 2 attempts" in line
    assert account.statuses() == ["retrying", "failed"]
    assert account.server.connections == 4 and account.server.messages == []  # each attempt with its TLS probe


def test_starttls_against_an_implicit_tls_port_fails_at_once_without_a_retry(fault_account, password, tls_context):
    server = FaultServer(tls=tls_context, implicit_tls=True, credentials=(USERNAME, password))
    # SMTP_TIMEOUT=30 and 4 attempts: waiting for the greeting, or retrying, would hit pytest's timeout
    overrides = {"SMTP_SECURITY": "starttls", "SMTP_TIMEOUT": "30", "SEND_ATTEMPTS": "4"}
    account = sent_account(fault_account, password, server, **overrides)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "sent no SMTP greeting while connecting but answered a TLS handshake" in line
    assert line.endswith("this port speaks TLS from the first byte: set SMTP_SECURITY=ssl (port 465)")
    assert "SMTP_TIMEOUT" not in line and "retrying" not in result.stderr
    assert account.statuses() == ["failed"] and account.records()[-1]["attempts"] == 1
    assert account.server.connections == 2  # the one that waited for a greeting, and the TLS probe
    assert account.server.auth_attempts == [] and account.server.messages == []


def test_a_greeting_slower_than_the_probe_is_not_taken_for_tls(fault_account, password, tls_context):
    # the first connection greets only once the client has opened another one (the probe), which is
    # greeted at once, in plain text: a slow server, waited for, and the message goes out
    server = tls_server(tls_context, password, script=[{"connect": "late"}])
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="30", SEND_ATTEMPTS="1")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert account.server.connections == 2 and len(account.server.messages) == 1
    assert account.statuses()[-1] == "sent"


def test_check_shows_the_connect_step_while_it_waits_for_the_greeting(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"connect": "stall"})
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="30")
    started = f"connect {LOOPBACK}:{server.port} ..."
    proc = account.start("check")
    try:
        shown = proc.stdout.read(len(started))  # returns once the line's start is out, while the step waits
        assert server.wait_for(lambda s: s.connections >= 1)
    finally:
        proc.kill()
        rest = proc.stdout.read()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert shown == started
    assert rest == ""  # killed while it waited: its result was never printed (it would be on the same line)


def test_retries_stop_when_send_retry_within_runs_out(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"connect": "stall"})
    overrides = {"SMTP_TIMEOUT": "1", "SEND_ATTEMPTS": "10", "SEND_RETRY_DELAY": "0", "SEND_RETRY_WITHIN": "2"}
    account = sent_account(fault_account, password, server, **overrides)
    started = time.monotonic()
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "did not answer within 1s" in line and "SEND_RETRY_WITHIN" in line, line
    assert 4 <= account.server.connections <= 6  # 2 or 3 attempts and their TLS probes, not the 10 allowed
    assert time.monotonic() - started < 8
    assert account.statuses()[-1] == "failed" and account.server.messages == []


def test_a_timeout_before_data_is_a_plain_failure_not_unknown(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"rcpt": "stall"})
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="1", SEND_ATTEMPTS="1")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert "did not answer within 1s while giving the sender and recipients" in error_line(result)
    assert account.statuses() == ["failed"]
    assert account.server.messages == []


# -- permanent faults: one line, a failed record, nothing kept, no retry --------------------------------


def test_550_at_rcpt_names_the_recipient(fault_account, password, tls_context):
    bad = "nobody@acme.example.com"
    reply = f"550 5.1.1 <{bad}>: Recipient address rejected: User unknown"
    account = sent_account(fault_account, password, tls_server(tls_context, password, always={f"rcpt:{bad}": reply}))
    result = account.run(*WITHDRAW_ARGS, "--cc", bad)
    assert result.returncode == 1
    line = error_line(result)
    assert f"refused the recipient {bad}: 550 5.1.1" in line and "check the address" in line
    assert account.statuses() == ["failed"]
    failed = account.records()[-1]
    assert failed["reply"]["code"] == 550 and bad in failed["reply"]["text"] and failed["attempts"] == 1
    assert account.server.messages == [] and account.server.connections == 1


def test_552_message_too_large(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"eod": "552 5.3.4 Message size exceeds fixed limit"})
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "552 5.3.4 Message size exceeds fixed limit" in line and "too large" in line
    assert account.statuses() == ["sending", "failed"]
    assert account.records()[-1]["reply"]["code"] == 552
    assert account.server.messages == [] and account.server.connections == 1


@pytest.mark.parametrize("mechanisms", ["PLAIN LOGIN", "LOGIN PLAIN", "LOGIN", "CRAM-MD5 LOGIN", "CRAM-MD5"])
def test_535_at_auth(fault_account, password, tls_context, mechanisms):
    """Refused once, the password is not tried again with the server's next mechanism (every try counts
    against the account's lock-out limits): one AUTH, over TLS."""
    faults = {"auth": "535 5.7.8 Username and Password not accepted"}
    server = tls_server(tls_context, password, always=faults, mechanisms=mechanisms)
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 1
    line = error_line(result)
    assert "refused the login for alex@example.com: 535 5.7.8" in line and "app password" in line
    assert account.statuses() == ["failed"]
    assert account.records()[-1]["reply"]["code"] == 535
    assert account.server.messages == [] and account.server.connections == 1
    assert account.server.auth_attempts == [(USERNAME, True)]  # once, over TLS
    said = [line.split(": C: ", 1)[1] for line in result.stderr.splitlines() if ": C: " in line]
    login = [line.upper() for line in said[said.index("AUTH [hidden]") :]]  # the login, and what followed
    # PLAIN where offered (its initial response: one command), else LOGIN or CRAM-MD5 (an answer to a 334)
    assert login == (["AUTH [HIDDEN]"] if "PLAIN" in mechanisms else ["AUTH [HIDDEN]", "[HIDDEN]"]) + ["QUIT"], said


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"connect": "554 5.7.1 No SMTP service here"}, "554 5.7.1 No SMTP service here"),
        ({"mail": "553 5.7.1 Sender address rejected: not owned by user"}, "FROM_ADDRESS must be"),
        ({"data": "554 5.7.1 Rejected for policy reasons"}, "554 5.7.1 Rejected for policy reasons"),
        ({"eod": "550 5.7.1 Message rejected as spam"}, "550 5.7.1 Message rejected as spam"),
    ],
    ids=["554-at-connect", "553-at-mail", "554-at-data", "550-after-data"],
)
def test_other_5xx_replies_are_not_retried(fault_account, password, tls_context, faults, expected):
    account = sent_account(fault_account, password, tls_server(tls_context, password, always=faults))
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert expected in error_line(result)
    assert account.statuses()[-1] == "failed"
    assert account.server.messages == [] and account.server.connections == 1


def test_no_starttls_offered_means_no_password_and_no_plaintext(fault_account, password):
    server = FaultServer(credentials=(USERNAME, password), auth_without_tls=True)  # offers AUTH, no TLS
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert "does not offer STARTTLS" in error_line(result)
    assert account.statuses() == ["failed"]
    assert account.server.auth_attempts == [] and account.server.messages == []
    assert account.server.connections == 1


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_certificate_for_another_host_is_refused(fault_account, password, ca, mode):
    wrong = server_context(ca, "mail.other.example")
    server = FaultServer(tls=wrong, implicit_tls=mode == "ssl", credentials=(USERNAME, password))
    account = sent_account(fault_account, password, server, mode=mode)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "certificate" in line and "another host name" in line and "SMTP_HOST" in line
    assert account.statuses() == ["failed"]
    assert account.server.auth_attempts == [] and account.server.messages == []
    assert account.server.connections == 1  # a TLS failure is not retried


def test_untrusted_certificate_is_refused_without_a_retry(fault_account, password):
    account = sent_account(fault_account, password, ca=False)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "not trusted" in line and "SMTP_CA_FILE" in line
    assert account.server.auth_attempts == [] and account.server.connections == 1


@pytest.mark.parametrize("key", ["SMTP_VERIFY", "SMTP_INSECURE", "SSL_VERIFY", "SMTP_TLS_VERIFY"])
def test_certificate_checks_cannot_be_turned_off(fault_account, password, ca, key):
    server = FaultServer(tls=server_context(ca, "mail.other.example"), credentials=(USERNAME, password))
    account = sent_account(fault_account, password, server)
    with account.env_file.open("a", encoding="utf-8") as f:
        f.write(f"{key}=false\n")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2
    assert f"unknown key {key}" in error_line(result)
    account.env[key] = "0"  # nor through the environment
    account.write_env(**{k: v for k, v in _env_values(account).items() if k != key})
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1 and "another host name" in error_line(result)
    assert account.server.messages == [] and account.server.auth_attempts == []


def _env_values(account: FaultAccount) -> dict[str, str]:
    lines = account.env_file.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_a_server_quoting_the_credentials_back_never_makes_them_visible(fault_account, password, tls_context):
    account = sent_account(fault_account, password, tls_server(tls_context, password, echo_auth=True))
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 1
    line = error_line(result)
    assert "535 5.7.8 Bad credentials" in line and "[password hidden]" in line
    assert "[password hidden]" in account.records()[-1]["reply"]["text"]
    log = account.run("log", "--json")
    assert "[password hidden]" in log.stdout
    # the scan at teardown checks the password (and its base64 forms) is in no output and no file


def test_check_never_shows_a_password_the_server_quotes_back(fault_account, password, tls_context):
    account = sent_account(fault_account, password, tls_server(tls_context, password, echo_auth=True))
    result = account.run("check")  # recorded: the teardown scan checks its output too
    assert result.returncode == 1 and "535" in result.stdout + result.stderr
    assert not any(form in result.stdout + result.stderr for form in secret_forms(password))


def test_check_logs_in_with_a_non_ascii_password(fault_account, tls_context):
    secret = "pässwörd-" + base64.b32encode(os.urandom(10)).decode()
    account = sent_account(fault_account, secret, tls_server(tls_context, secret))
    result = account.run("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_non_ascii_password_logs_in(fault_account, tls_context):
    secret = "pässwörd-" + base64.b32encode(os.urandom(10)).decode()
    account = sent_account(fault_account, secret, tls_server(tls_context, secret))
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert len(account.server.messages) == 1


def test_a_wrong_non_ascii_password_is_refused_without_showing_it(fault_account, password, tls_context):
    account = sent_account(fault_account, "wrông-" + password, tls_server(tls_context, password))
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "535" in line and "wrông" not in line and "UnicodeEncodeError" not in line


# -- at most once: a connection lost after the data leaves `unknown`, never resent ------------------------


@pytest.mark.parametrize("action", ["close", "reset", "stall"])
def test_connection_lost_after_the_data_is_unknown_and_not_resent(fault_account, password, tls_context, action):
    server = tls_server(tls_context, password, always={"eod": action})
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="1")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 3
    line = error_line(result)
    assert "may have been delivered" in line and "Sent folder" in line and "--force" in line
    assert account.statuses() == ["sending", "unknown"]
    assert account.records()[-1]["attempts"] == 1
    assert len(account.server.messages) == 1 and account.server.connections == 1
    before = message_commands(account.server)
    again = account.run(*WITHDRAW_ARGS)  # the same command again: refused, not resent
    assert again.returncode == 2
    assert "may already have been sent" in error_line(again) and "--force" in again.stderr
    assert len(account.server.messages) == 1 and message_commands(account.server) == before


def killed_while_sending(fault_account, password, tls_context) -> FaultAccount:
    """A `send` process SIGKILLed after the server received the message data and before its reply."""
    account = sent_account(fault_account, password, tls_server(tls_context, password, always={"eod": "stall"}))
    process = account.start(*WITHDRAW_ARGS)
    try:
        assert account.server.wait_for(lambda s: len(s.messages) == 1), "the server never got the message"
    finally:
        process.kill()
        out, err = process.communicate(timeout=30)
        account.outputs += [out, err]
    assert account.statuses() == ["sending"]
    return account


@POSIX_ONLY
def test_killed_while_sending_leaves_sending_then_unknown_and_nothing_is_resent(fault_account, password, tls_context):
    from jobmail.app.recovery import recover_interrupted
    from jobmail.store.sentlog import SentLog

    account = killed_while_sending(fault_account, password, tls_context)
    log = SentLog(account.log_dir)
    written = recover_interrupted(log, list(log.latest_states()))
    assert [r["status"] for r in written] == ["unknown"]
    assert "Sent folder" in written[0]["error"]
    assert account.statuses() == ["sending", "unknown"]
    assert recover_interrupted(log, list(log.latest_states())) == []  # once only
    before = message_commands(account.server)
    again = account.run(*WITHDRAW_ARGS)  # a later identical send is refused by the duplicate guard
    assert again.returncode == 2 and "--force" in error_line(again)
    assert len(account.server.messages) == 1 and message_commands(account.server) == before


@POSIX_ONLY
def test_after_a_kill_the_log_command_shows_unknown(fault_account, password, tls_context):
    account = killed_while_sending(fault_account, password, tls_context)
    shown = account.run("log", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout.splitlines()[0])["status"] == "unknown"
    assert len(account.server.messages) == 1 and account.server.connections == 1


@POSIX_ONLY
def test_after_a_kill_a_second_send_says_possibly_sent_and_sends_nothing(fault_account, password, tls_context):
    account = killed_while_sending(fault_account, password, tls_context)
    before = message_commands(account.server)
    again = account.run(*WITHDRAW_ARGS)
    assert again.returncode == 2
    assert "may already have been sent" in error_line(again)
    assert account.statuses() == ["sending", "unknown"]
    assert len(account.server.messages) == 1 and message_commands(account.server) == before


@POSIX_ONLY
def test_a_scheduled_message_killed_while_sending_is_not_resent_by_the_outbox(fault_account, password, tls_context):
    account = sent_account(fault_account, password, tls_server(tls_context, password, always={"eod": "stall"}))
    queued = account.run(*WITHDRAW_ARGS, "--at", "+5m", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    message_id = account.records()[-1]["id"]
    process = account.start("outbox", "send-now", message_id[:8])
    try:
        assert account.server.wait_for(lambda s: len(s.messages) == 1), "the server never got the message"
    finally:
        process.kill()
        account.outputs += list(process.communicate(timeout=30))
    assert account.statuses() == ["scheduled", "sending"]
    run = account.run("outbox", "run", "--once")
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and "Sent folder" in run.stderr
    assert account.statuses() == ["scheduled", "sending", "unknown"]
    again = account.run("outbox", "send-now", message_id[:8])  # not scheduled any more: refused
    assert again.returncode == 2, again.stderr
    error_line(again)
    assert len(account.server.messages) == 1 and account.server.connections == 1


# -- bad input: exit 2 naming the field, before any connection --------------------------------------------

BROKEN_TEMPLATES = {
    "syntax.txt.j2": "Subject: Hi\n\nDear {{ interviewer }},{% endif %}\n\nBest regards,\n{{ sender_name }}\n",
    "empty.txt.j2": "Subject: Hi\n\n   \n",
    "long.txt.j2": "Subject: Hi\n\nDear {{ interviewer }},\n\n" + "A long message. " * 200 + "\n",
    "newline\n.txt.j2": "Subject: Hi\n\nDear team,\n\nBest regards,\n{{ sender_name }}\n",  # a name the check refuses
}
EVIL = "Bcc: x@evil.example"
TPL = {"TEMPLATES_DIR": "tpl"}


def cmd(*extra: str, template: str = "withdraw", to: str = TO, position: str = "Analyst", company: str = "Acme"):
    """`send TEMPLATE --to TO` (with --position and --company for withdraw), then `extra`."""
    argv = ["send", template, "--to", to]
    if template == "withdraw":
        argv += ["--position", position, "--company", company]
    return [*argv, *extra]


WITHDRAW = cmd()
BAD_INPUT = [
    # (id, argv, extra .env lines, what the message must say)
    ("to-invalid", cmd(to="jordan.lee@"), {}, "--to"),
    ("to-crlf", cmd(to=f"{TO}\r\n{EVIL}"), {}, "--to contains a line break"),
    ("to-display-name-unclosed", cmd(to=f"Jordan <{TO}"), {}, "--to"),
    ("cc-invalid", cmd("--cc", "hr at acme"), {}, "--cc"),
    ("reply-to-invalid", cmd("--reply-to", "me@@example.com"), {}, "--reply-to"),
    ("in-reply-to-lf", cmd("--in-reply-to", f"<a@b>\n{EVIL}"), {}, "--in-reply-to"),
    ("subject-lf", cmd(position=f"Analyst\n{EVIL}"), {}, "'position' contains a line break"),
    ("subject-cr", cmd(position="Analyst\rX"), {}, "'position' contains a line break"),
    ("subject-encoded-word", cmd(position="=?utf-8?q?A=0D=0ABcc:_x@evil.example?="), {}, "'position' contains '=?"),
    ("name-lf", cmd("--interviewer", "Jordan\nLee"), {}, "'interviewer' contains a line break"),
    ("name-u2028", cmd("--interviewer", "Jordan\u2028Lee"), {}, "'interviewer' contains a line break"),
    ("name-nel", cmd("--interviewer", "Jordan\x85Lee"), {}, "'interviewer' contains a line break"),
    ("company-escape", cmd(company="Acme\x1b[31m"), {}, "'company' contains a control character"),
    ("var-lf", cmd("--var", "team=Data\nScience"), {}, "'team' contains a line break"),
    ("var-self", cmd("--var", "self=x"), {}, "--var self=...: a template cannot use a variable named 'self'"),
    ("var-none", cmd("--var", "none=x"), {}, "--var none=...: a template cannot use a variable named 'none'"),
    ("from-name-lf", WITHDRAW, {"FROM_NAME": '"Alex\\nExample"'}, "FROM_NAME contains a line break"),
    ("from-name-encoded-word", WITHDRAW, {"FROM_NAME": "=?utf-8?q?Boss?="}, "FROM_NAME contains '=?...?='"),
    ("from-name-u2028", WITHDRAW, {"FROM_NAME": "Alex\u2028Example"}, "FROM_NAME contains a line break"),
    ("from-address-invalid", WITHDRAW, {"FROM_ADDRESS": "alex@"}, "FROM_ADDRESS"),
    ("unknown-template", cmd(template="withdrawl"), {}, "unknown template 'withdrawl'"),
    ("jinja-syntax", cmd(template="syntax"), TPL, "syntax.txt.j2, line 3: template syntax error"),
    ("template-not-utf8", cmd(template="latin1"), TPL, "latin1.txt.j2 is not UTF-8"),
    ("empty-body", cmd(template="empty"), TPL, "empty body"),
    ("template-name-newline", cmd(template="newline\n"), TPL, "template name 'newline\\n' is not a name"),
    ("too-large", cmd("--force", template="long"), {**TPL, "MAX_MESSAGE_KB": "1"}, "MAX_MESSAGE_KB"),
    ("env-malformed-line", WITHDRAW, {"SMTP_HOST 127.0.0.1": None}, ".env, line 13: cannot parse"),
    ("env-unknown-key", WITHDRAW, {"SMTP_VERIFY": "no"}, ".env, line 13: unknown key SMTP_VERIFY"),
    ("env-bare-word", WITHDRAW, {"hunter2": None}, ".env, line 13 is not KEY=value"),
]


# Cases that wait for a fix outside smtp.py/addresses.py (see the reason).
BAD_INPUT_XFAIL: dict[str, str] = {}  # case id -> reason, for a known bug not fixed yet


def _bad_input_params():
    for name, *values in BAD_INPUT:
        marks = [pytest.mark.xfail(strict=True, reason=BAD_INPUT_XFAIL[name])] if name in BAD_INPUT_XFAIL else []
        yield pytest.param(*values, id=name, marks=marks)


@pytest.mark.parametrize(("argv", "env", "expected"), list(_bad_input_params()))
def test_bad_input_exits_2_naming_the_field_and_sends_nothing(fault_account, argv, env, expected):
    account = fault_account()
    templates = account.home / "tpl"
    templates.mkdir()
    for name, text in BROKEN_TEMPLATES.items():
        (templates / name).write_text(text, encoding="utf-8")
    (templates / "latin1.txt.j2").write_bytes("Subject: Caf\xe9\n\nDear you,\n".encode("latin-1"))
    with account.env_file.open("a", encoding="utf-8") as f:
        for key, value in env.items():
            f.write(f"{key}\n" if value is None else f"{key}={value}\n")
    result = account.run(*argv)
    assert result.returncode == 2, result.stderr
    assert expected in error_line(result)
    assert nothing_went_out(account.server)
    assert account.records() == []


def test_env_file_that_is_not_utf8(fault_account):
    account = fault_account()
    with account.env_file.open("ab") as f:
        f.write("FROM_NAME=Zo\xeb\n".encode("latin-1"))
    result = account.run(*WITHDRAW)
    assert result.returncode == 2
    assert "is not UTF-8" in error_line(result)
    assert account.server.connections == 0


# -- the SMTP layer in-process: backoff, classification, TLS and login rules ------------------------------


def plain_settings(port: int, **values: str):
    from jobmail import settings as config

    base = {
        "SMTP_HOST": LOOPBACK,
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_USERNAME": USERNAME,
        "SMTP_TIMEOUT": "5",
        "FROM_ADDRESS": USERNAME,
        "FROM_NAME": "Alex Example",
        "SEND_ATTEMPTS": "4",
        "SEND_RETRY_DELAY": "2",
    }
    return config.from_values({**base, **values})


MESSAGE = b"From: alex@example.com\r\nTo: jordan.lee@acme.example.com\r\nSubject: Hi\r\n\r\nHello\r\n"


def failed_send_to_a_closed_port(**options):
    """smtp.send to a port nothing listens on (every attempt is refused at once); the SendError it ends with."""
    from jobmail.errors import SendError
    from jobmail.smtp import client as smtp

    with pytest.raises(SendError) as caught:
        smtp.send(plain_settings(closed_port()), lambda: "", USERNAME, [TO], MESSAGE, **options)
    return caught.value


def test_backoff_doubles_with_jitter_and_every_retry_is_reported():
    slept, retried = [], []
    jitters = iter([0.0, 0.5, 0.999])
    error = failed_send_to_a_closed_port(
        on_retry=lambda attempt, error, delay: retried.append((attempt, error.transient, delay)),
        sleep=slept.append,
        jitter=lambda: next(jitters),
    )
    assert error.attempts == 4 and "gave up after 4 attempts" in str(error)
    assert slept == pytest.approx([2 * 0.5, 4 * 1.0, 8 * 1.499])  # base * 2**(n-1) * (0.5 + jitter)
    assert [(a, t) for a, t, _ in retried] == [(1, True), (2, True), (3, True)]


def test_no_attempt_starts_past_send_retry_within():
    # SEND_ATTEMPTS=4, SEND_RETRY_DELAY=2, SEND_RETRY_WITHIN=60 (the defaults)
    times = iter([0.0, 50.0, 59.0])  # the start, then after attempts 1 and 2 (as if each timed out)
    slept = []
    error = failed_send_to_a_closed_port(sleep=slept.append, jitter=lambda: 0.5, clock=lambda: next(times))
    assert error.attempts == 2 and slept == [2.0]  # 50 + 2 <= 60: retried; 59 + 4 > 60: not
    assert "gave up after 2 of 4 attempts, 59s: another would start after SEND_RETRY_WITHIN=60s" in str(error)


def test_a_message_with_8bit_content_is_declared_or_refused():
    from jobmail.errors import SendError
    from jobmail.smtp import client as smtp

    data = "Subject: Merci\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÀ bientôt\r\n".encode()
    with FaultServer() as server:
        smtp.send(plain_settings(server.port), lambda: "", USERNAME, [TO], data)
        assert server.mail_params == ["BODY=8BITMIME"]
        assert [m.data for m in server.messages] == [data]
    with FaultServer(eightbit=False) as server:
        with pytest.raises(SendError, match=r"8-bit content .*\(no 8BITMIME\)"):
            smtp.send(plain_settings(server.port), lambda: "", USERNAME, [TO], data)
        assert server.messages == [] and server.connections == 1
    with FaultServer(eightbit=False) as server:  # 7-bit data needs nothing
        smtp.send(plain_settings(server.port), lambda: "", USERNAME, [TO], MESSAGE)
        assert server.mail_params == [""] and len(server.messages) == 1


def test_dot_lines_are_stuffed_and_arrive_intact():
    from jobmail.smtp import client as smtp

    data = b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nend\r\n"
    with FaultServer() as server:
        smtp.send(plain_settings(server.port), lambda: "", USERNAME, [TO], data)
        assert server.messages[0].data == data


def test_the_password_is_never_sent_without_tls(password):
    """login() refuses a plaintext connection unless SMTP_SECURITY=none to loopback; the keyring is not even read."""
    import smtplib

    from jobmail.errors import SendError
    from jobmail.smtp import client as smtp

    asked = []

    def secret() -> str:
        asked.append(1)
        return password

    with FaultServer(credentials=(USERNAME, password), auth_without_tls=True) as server:
        conn = smtplib.SMTP(LOOPBACK, server.port, timeout=5)
        try:
            conn.ehlo()
            session = smtp.Session(conn, None, None)
            with pytest.raises(SendError, match="not encrypted, so the password was not sent"):
                smtp.login(session, plain_settings(server.port, SMTP_SECURITY="starttls"), secret)
        finally:
            conn.close()
        assert server.auth_attempts == [] and asked == []
        # with SMTP_SECURITY=none to 127.0.0.1 a login is allowed (a local bridge)
        smtp.send(plain_settings(server.port), secret, USERNAME, [TO], MESSAGE)
        assert server.auth_attempts == [(USERNAME, False)] and len(server.messages) == 1


def test_tls_context_always_checks_the_certificate_and_host_name(ca_file):
    import ssl

    from jobmail.smtp import client as smtp

    for extra in ({}, {"SMTP_SECURITY": "starttls", "SMTP_CA_FILE": str(ca_file)}):
        context = smtp.ssl_context(plain_settings(1, **extra))
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize(
    ("exc", "expected", "transient"),
    [
        (lambda: __import__("socket").gaierror(-2, "Name or service not known"), "was not found", False),
        (lambda: ConnectionRefusedError(111, "Connection refused"), "refused the connection", True),
        (lambda: TimeoutError("timed out"), "did not answer within 5s while connecting", True),
        (lambda: __import__("ssl").SSLCertVerificationError(1, "certificate verify failed"), "not trusted", False),
        (lambda: __import__("smtplib").SMTPConnectError(421, b"Too busy"), "421 Too busy", True),
        (lambda: __import__("smtplib").SMTPConnectError(554, b"No \x1b[31mservice"), "554 No ?[31mservice", False),
    ],
    ids=["host-not-found", "refused", "timeout", "cert", "421", "554-with-escape"],
)
def test_classify_says_what_happened_in_one_line(exc, expected, transient):
    from jobmail.smtp import client as smtp

    error = smtp.classify(exc(), plain_settings(2525), stage="connect")
    assert expected in str(error) and "\n" not in str(error)
    assert error.transient is transient


def test_a_very_long_or_multiline_reply_stays_one_short_line():
    from jobmail.smtp import client as smtp

    text = smtp.reply_text(b"5.7.1 first line\n550-5.7.1 " + b"x" * 2000)
    assert "\n" not in text and len(text) <= smtp.MAX_REPLY_CHARS


# -- exit codes, and the scan itself ---------------------------------------------------------------------


def test_a_good_send_with_debug_shows_no_secret(fault_account, password):
    account = fault_account()
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr  # debug logging really was on
    assert len(account.server.messages) == 1
    assert account.server.auth_attempts == [(USERNAME, True)]


def test_the_secrets_scan_finds_a_leak(tmp_path, password):
    home = tmp_path / "home"
    (home / "log").mkdir(parents=True)
    account = FaultAccount(None, home / ".env", home, home / "log", {})
    since = time.time() - 1
    assert leaks(password, [account], since) == []
    (home / "log" / "debug.txt").write_text("AUTH PLAIN " + secret_forms(password)[2], encoding="utf-8")
    assert leaks(password, [account], since) == [str(home / "log" / "debug.txt")]
    account.outputs.append(f"error: bad password {password}")
    assert len(leaks(password, [account], since)) == 2


def test_exit_codes_are_one_table():
    from jobmail import errors

    assert (errors.EXIT_OK, errors.EXIT_SEND_FAILED, errors.EXIT_BAD_INPUT, errors.EXIT_UNKNOWN) == (0, 1, 2, 3)
    assert errors.EXIT_INTERRUPTED == 130
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |"):
        assert code in readme


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGKILL is POSIX")
def test_a_send_killed_between_retries_is_settled_as_failed_by_the_next_log(fault_account, tls_context, password):
    """Nothing was accepted when a send dies in its retry wait: `log` says failed, not `retrying` forever."""
    server = tls_server(tls_context, password, always={"data": "451 4.3.0 try later"})
    account = sent_account(fault_account, password, server, SEND_RETRY_DELAY="30")
    proc = account.start(*WITHDRAW_ARGS)
    wait_until(lambda: any(r["status"] == "retrying" for r in account.records()), "the first retry")
    proc.kill()
    proc.communicate(timeout=10)
    shown = account.run("log")
    assert shown.returncode == 0, shown.stderr
    assert [r["status"] for r in account.records()][-2:] == ["retrying", "failed"]
    assert "failed" in shown.stdout
    assert server.messages == []


# -- hostile servers (#17): a password quoted in a success reply, endless and dripping replies -----------


def quoted_password_account(fault_account, tls_context, secret: str, **faults: str) -> FaultAccount:
    server = FaultServer(tls=tls_context, credentials=(USERNAME, secret), always=faults)
    account = fault_account(server)
    account.store_password(secret)
    return account


def shown_forms(secret: str) -> list[str]:
    """What must not be seen: the password, its white space run together, its first 8 characters."""
    return [secret, " ".join(secret.split()), secret[:8], *secret_forms(secret)[1:]]


@pytest.mark.parametrize(
    ("secret", "reply"),
    [
        ("pw-" + "q" * 12, "250 2.0.0 Ok: queued for me:{secret}"),
        ("pw-a  \tb-" + "s" * 12, "250 2.0.0 Ok: queued as {secret}"),  # two spaces and a tab
        ("pw-cut-" + "c" * 20, "250 2.0.0 " + "x" * 270 + " {secret}"),  # across the 300-character cut
        ("pw-b64-" + "d" * 12, "250 2.0.0 Ok AUTH PLAIN {plain}"),
    ],
    ids=["plain", "white-space", "cut", "base64"],
)
def test_a_password_quoted_in_the_success_reply_is_hidden_everywhere(fault_account, tls_context, secret, reply):
    plain = base64.b64encode(f"\0{USERNAME}\0{secret}".encode()).decode()
    account = quoted_password_account(fault_account, tls_context, secret, eod=reply.format(secret=secret, plain=plain))
    sent = account.run(*WITHDRAW_ARGS)
    assert sent.returncode == 0, sent.stderr
    assert "Sent via" in sent.stdout and "[password hidden]" in sent.stdout
    record = account.records()[-1]
    assert record["status"] == "sent" and "[password hidden]" in record["reply"]["text"]
    short = record["id"][:8]
    outputs = [sent, account.run("log", "show", short), account.run("log", "--csv"), account.run("log", "--json")]
    log_text = (account.log_dir / "sent.jsonl").read_text(encoding="utf-8")
    for text in [log_text, *(r.stdout + r.stderr for r in outputs)]:
        assert not any(form in text for form in shown_forms(secret)), text


def test_a_password_quoted_in_the_login_reply_is_hidden_from_check_and_debug(fault_account, tls_context):
    secret = "pw-check-" + "k" * 12
    account = quoted_password_account(fault_account, tls_context, secret, auth=f"235 2.7.0 Welcome back {secret}")
    for result in (account.run("check"), account.run(*WITHDRAW_ARGS, "--debug")):
        assert result.returncode == 0, result.stderr
        assert not any(form in result.stdout + result.stderr for form in shown_forms(secret))


def test_an_oauth_access_token_quoted_back_is_hidden(fault_account, tls_context, password):
    token = "ya29.token-" + "t" * 16
    server = FaultServer(
        tls=tls_context,
        credentials=(USERNAME, password),
        oauth_token=token,
        always={"auth": f"235 2.7.0 Accepted {token}", "eod": f"250 2.0.0 Ok: queued for token {token}"},
    )
    helper = f"{sys.executable} -c \"print('{token}')\""
    account = fault_account(server, SMTP_AUTH="oauth2", OAUTH_PROVIDER="custom", OAUTH_TOKEN_COMMAND=helper)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 0, result.stderr
    assert account.server.messages, "the token logged in"
    shown = result.stdout + result.stderr + (account.log_dir / "sent.jsonl").read_text(encoding="utf-8")
    assert token not in shown and token[:8] not in shown and "[password hidden]" in shown


@pytest.mark.parametrize("stage", ["connect", "ehlo", "eod"])
def test_an_endless_reply_is_cut_off_with_one_line(fault_account, password, tls_context, stage):
    server = tls_server(tls_context, password, always={stage: "endless"})
    account = sent_account(fault_account, password, server, SEND_ATTEMPTS="1")
    result = account.run(*WITHDRAW_ARGS, timeout=120)  # without a limit: never ends, its memory growing
    line = error_line(result)
    if stage == "eod":  # the message data went out: it may have been kept
        assert result.returncode == 3, line
        assert account.statuses()[-1] == "unknown"
    else:
        assert result.returncode == 1, line
        assert "more than 100 lines" in line and "check SMTP_HOST and SMTP_PORT" in line
        assert account.statuses() == ["failed"] and account.server.messages == []


@pytest.mark.parametrize("stage", ["connect", "mail"])
def test_a_server_dripping_one_byte_at_a_time_is_cut_off_at_smtp_timeout(fault_account, password, tls_context, stage):
    server = tls_server(tls_context, password, always={stage: "drip"}, drip_interval=0.5)
    account = sent_account(fault_account, password, server, SMTP_TIMEOUT="2", SEND_ATTEMPTS="1")
    result = account.run(*WITHDRAW_ARGS, timeout=120)  # without a deadline for the whole reply: never ends
    assert result.returncode == 1, result.stderr
    assert "did not answer within 2s" in error_line(result)
    assert account.statuses() == ["failed"] and account.server.messages == []


# -- the log folder is the user's own (#17) ------------------------------------------------------------


def forge_scheduled(account: FaultAccount, message_id: str, eml_name: str | None = None) -> None:
    """What another local user who can write to LOG_DIR would plant: a message due a minute ago, and its copy."""
    from datetime import UTC, datetime, timedelta

    due = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    data = b"From: alex@example.com\r\nTo: victim@example.com\r\nSubject: forged\r\n\r\nforged\r\n"
    messages = account.log_dir / "messages"
    messages.mkdir(parents=True, exist_ok=True)
    (messages / f"{eml_name or message_id}.eml").write_bytes(data)
    record = {
        "id": message_id,
        "time": due.replace("+00:00", ".000+00:00"),
        "status": "scheduled",
        "due": due,
        "from": USERNAME,
        "to": ["victim@example.com"],
        "recipients": ["victim@example.com", "extra@example.com"],
        "subject": "forged",
    }
    with open(account.log_dir / "sent.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_a_log_folder_others_can_write_is_refused_and_nothing_forged_is_sent(fault_account, password):
    account = sent_account(fault_account, password)
    forge_scheduled(account, "aaaa00000001")
    os.chmod(account.log_dir, 0o1777)  # /tmp-like: anyone may add files
    for argv in (("outbox", "run", "--once"), WITHDRAW_ARGS, ("outbox", "cancel", "aaaa00000001")):
        result = account.run(*argv)
        assert result.returncode == 2, result.stderr
        line = error_line(result)
        assert "others can write to the log folder" in line and "chmod go-w" in line, line
    assert nothing_went_out(account.server)
    assert os.stat(account.log_dir).st_mode & 0o7777 == 0o1777  # not ours to change


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a folder of another user needs root")
def test_a_log_folder_of_another_user_is_refused(fault_account, password):
    account = sent_account(fault_account, password)
    account.log_dir.mkdir(mode=0o700)
    os.chown(account.log_dir, 65534, 65534)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2
    assert "belongs to another user (uid 65534)" in error_line(result)
    assert nothing_went_out(account.server)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_sent_log_that_is_a_symbolic_link_is_not_followed(fault_account, password, tmp_path):
    account = sent_account(fault_account, password)
    account.log_dir.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.txt"
    target.write_text("someone else's file\n", encoding="utf-8")
    os.chmod(target, 0o644)
    (account.log_dir / "sent.jsonl").symlink_to(target)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2
    assert "is a symbolic link" in error_line(result)
    assert target.read_text(encoding="utf-8") == "someone else's file\n" and os.stat(target).st_mode & 0o777 == 0o644
    assert account.server.messages == []


def test_a_record_whose_id_is_a_path_is_skipped_never_sent(fault_account, password, tmp_path):
    account = sent_account(fault_account, password)
    account.log_dir.mkdir(mode=0o700)
    outside = tmp_path / "x.eml"
    forge_scheduled(account, "../../x", eml_name="placeholder")
    outside.write_bytes(b"Subject: outside\r\n\r\nnot ours\r\n")
    result = account.run("outbox", "run", "--once")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0 and "is not one of jobmail's" in result.stderr, result.stderr
    now = account.run("outbox", "send-now", "../../x")
    assert now.returncode == 2 and "Traceback" not in now.stderr
    assert account.server.messages == []
    assert outside.read_bytes() == b"Subject: outside\r\n\r\nnot ours\r\n"


# -- exit codes after delivery (#17) -------------------------------------------------------------------


@pytest.mark.parametrize("argv", [WITHDRAW_ARGS, ("log",)])
def test_a_closed_stdout_is_quiet_and_a_delivered_message_exits_0(fault_account, password, argv):
    import subprocess

    account = sent_account(fault_account, password)
    if argv == ("log",):
        assert account.run(*WITHDRAW_ARGS).returncode == 0
    process = subprocess.Popen(
        account.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=account.env, cwd=account.home
    )
    process.stdout.close()  # `send.py ... | head -0`: the reader is gone before anything is written
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode("utf-8", "replace")
    assert process.returncode == 0, text
    assert text == "", text
    assert len(account.server.messages) == 1 and account.statuses()[-1] == "sent"


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u2066", "\ufeff"])
def test_an_invisible_format_character_in_a_header_is_refused_and_nothing_sent(fault_account, char):
    account = fault_account()
    argv = list(WITHDRAW_ARGS)
    argv[argv.index("Data Analyst")] = f"Data Analyst{char}fdp.exe"
    result = account.run(*argv)
    assert result.returncode == 2
    line = error_line(result)
    assert "invisible format character" in line and f"U+{ord(char):04X}" in line, line
    assert nothing_went_out(account.server) and account.records() == []


@pytest.mark.parametrize("debug", [(), ("--debug",)], ids=["plain", "debug"])
def test_a_greeting_that_quotes_the_password_shows_it_nowhere(fault_account, password, tls_context, debug):
    """A server that learnt the password in an earlier session quotes it in its very first words: the
    refusal is shown and logged with it hidden (the fixture then finds it in no file or output), --debug
    included: the connection opened ahead reads no reply before it is handed the password."""
    server = tls_server(tls_context, password, always={"connect": f"554 5.7.1 no service for {password} today"})
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS, *debug)
    assert result.returncode == 1
    line = error_line(result)
    assert "no service for" in line and password not in line
    assert [r["status"] for r in account.records()] == ["failed"]
    if debug:
        assert "S: 554 5.7.1 no service for [password hidden] today" in result.stderr


@pytest.mark.parametrize("code", ["220", "554"])
def test_a_password_quoted_across_the_cut_of_a_long_reply_shows_no_part_of_it(
    fault_account, password, tls_context, code
):
    """Replies are cut to 300 characters where shown: the password is hidden before the cut, so that no
    prefix of it is left at the end of the line, in --debug or in the error and the log (the connection
    opened ahead reads no reply before it is handed the password)."""
    greeting = f"{code} {'x' * 290}{password} ESMTP"
    server = tls_server(tls_context, password, always={"connect": greeting})
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == (0 if code == "220" else 1), result.stderr
    assert password[:6] not in result.stderr + result.stdout
    assert password[:6] not in (account.log_dir / "sent.jsonl").read_text(encoding="utf-8")


def test_debug_hides_the_password_a_greeting_quotes_also_when_the_send_goes_on(fault_account, password, tls_context):
    server = tls_server(tls_context, password, always={"connect": f"220 hello, {password} ESMTP"})
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 0, result.stderr
    assert "S: 220 hello, [password hidden] ESMTP" in result.stderr  # and nowhere in clear (the scan)


def test_a_host_name_that_cannot_be_encoded_is_a_config_error_not_a_retried_failure(fault_account):
    account = fault_account(SMTP_HOST="bü..example.com")  # no password can be stored for it either
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "Traceback" not in result.stderr and "SMTP_HOST='bü..example.com' is not a host name" in line
    assert account.statuses() == []  # refused before anything was stored or sent


# -- the wire, as --debug shows it (#19) -----------------------------------------------------------------


def test_debug_shows_the_grouped_envelope_the_chunk_and_the_round_trips_never_the_password(
    fault_account, password, tls_context
):
    server = tls_server(tls_context, password, pipelining="on", chunking="on")
    account = sent_account(fault_account, password, server)
    result = account.run(*WITHDRAW_ARGS, "--debug")
    assert result.returncode == 0, result.stderr
    said = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("DEBUG jobmail.smtp")]
    assert f"C: MAIL FROM:<{USERNAME}> | RCPT TO:<{TO}>" in said  # one write: the pipelined group
    size = len(server.messages[0].data)
    assert f"C: BDAT {size} LAST (message, {size} bytes)" in said
    assert "C: AUTH [hidden]" in said
    trips = "round trips: 8 (greeting, EHLO, STARTTLS, TLS handshake, EHLO, AUTH, MAIL+RCPT, BDAT)"
    assert any(line.startswith(trips) for line in said), said
    assert server.commands[-4:] == ["MAIL", "RCPT", "BDAT", "QUIT"] or server.commands[-3:] == ["MAIL", "RCPT", "BDAT"]
    # and the password appears nowhere: the scan after every test here reads this output too


def test_bad_input_is_told_first_even_when_the_connection_opened_ahead_failed(fault_account, password, tls_context):
    """The connection is opened while the message is checked; a server that refuses it does not hide what
    is wrong with the input (its refusal would only count once the message went to it)."""
    server = tls_server(tls_context, password, always={"connect": "554 5.7.1 No SMTP service here"})
    account = sent_account(fault_account, password, server)
    argv = list(WITHDRAW_ARGS)
    argv[argv.index("--to") + 1] = "jordan.lee@@acme"
    result = account.run(*argv)
    assert result.returncode == 2, result.stderr
    assert "--to" in error_line(result) and "554" not in result.stderr
    assert nothing_went_out(account.server) and account.records() == []


def test_check_hides_a_password_the_greeting_quotes(fault_account, password, tls_context):
    """`check` reads the stored password before it connects (its keyring step still comes later), so a
    refusal that quotes it, in the very first words, shows it hidden."""
    server = tls_server(tls_context, password, always={"connect": f"554 5.7.1 no service for {password} today"})
    account = sent_account(fault_account, password, server)
    result = account.run("check")
    assert result.returncode != 0
    assert "no service for" in result.stdout + result.stderr
    assert password not in result.stdout + result.stderr  # the scan after the test reads it too
