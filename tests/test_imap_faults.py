"""The Sent folder copy against a hostile IMAP server (tests/imapfaults.py): a full mailbox, a connection
lost around the APPEND, a BYE after the login, a server that quotes the password back.

Each test runs the CLI as a subprocess, as a user does (SMTP: a well-behaved tests/faultserver.py over
implicit TLS; IMAP: the scripted server over implicit TLS, both with trustme certificates), and asserts on
what a user would check: the exit code, the one line that says what happened, the sent log's records and
the bytes the IMAP server holds. After every test, the password must appear in no file or output (the
scan of tests/test_faults.py).
"""

from __future__ import annotations

import time

import pytest
from conftest import USERNAME, WITHDRAW_ARGS, account_values, clean_environ
from faultserver import FaultServer
from imapfaults import ImapFaultServer
from test_faults import FaultAccount, leaks

from jobmail.loopback import LOOPBACK

QUOTA = "NO [OVERQUOTA] Quota exceeded"


class ImapAccounts:
    """imap_account(always=None, script=None) -> (FaultAccount, ImapFaultServer): an account whose SMTP
    server behaves and whose IMAP server (SENT_COPY=always, IMAP_SECURITY=ssl) has the faults given."""

    def __init__(self, tmp_path, tls_context, ca_file, password):
        self.tmp_path, self.tls_context, self.ca_file, self.password = tmp_path, tls_context, ca_file, password
        self.accounts: list[FaultAccount] = []
        self.servers: list[FaultServer | ImapFaultServer] = []
        self.since = time.time() - 1
        self.scanned = False

    def __call__(self, always: dict[str, str] | None = None, script: list[dict[str, str]] | None = None):
        tls, password = self.tls_context, self.password
        smtp = FaultServer(tls=tls, implicit_tls=True, credentials=(USERNAME, password)).start()
        self.servers.append(smtp)
        imap = ImapFaultServer(user=USERNAME, password=password, tls=tls, always=always, script=script)
        self.servers.append(imap.start())
        home = self.tmp_path / f"user{len(self.accounts)}"
        home.mkdir()
        values = {
            **account_values(smtp.port, "ssl", home),
            "SMTP_CA_FILE": str(self.ca_file),
            "IMAP_HOST": LOOPBACK,
            "IMAP_PORT": str(imap.port),
            "IMAP_SECURITY": "ssl",
            "SENT_COPY": "always",
        }
        account = FaultAccount(smtp, home / ".env", home, home / "log", clean_environ(home))
        account.write_env(**values)
        account.store_password(password)
        self.accounts.append(account)
        return account, imap

    def leaks(self) -> list[str]:
        """Where the password is (tests/test_faults.py's scan): every file of the accounts' folders, every
        output, every file of the project changed since the test began."""
        self.scanned = True
        return leaks(self.password, self.accounts, self.since)


@pytest.fixture
def imap_account(tmp_path, tls_context, ca_file, password):
    """See ImapAccounts. Afterwards the servers stop and the password must have leaked nowhere (unless
    the test ran the scan itself)."""
    made = ImapAccounts(tmp_path, tls_context, ca_file, password)
    yield made
    for server in made.servers:
        server.stop()
    if not made.scanned:
        found = made.leaks()
        assert not found, f"the password leaked into: {found}"


# -- helpers ------------------------------------------------------------------------------------------


def copy_records(account: FaultAccount) -> list[dict]:
    """The records of the (one) message that carry a Sent copy state, in order."""
    return [record for record in account.records() if "sent_copy" in record]


def stored_message(account: FaultAccount) -> bytes:
    [sent_id] = {record["id"] for record in account.records()}
    return (account.log_dir / "messages" / f"{sent_id}.eml").read_bytes()


def copy_line(result) -> str:
    """The one line about the Sent copy, and no traceback anywhere."""
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "Sent folder" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def assert_sent_and_pending(account: FaultAccount, result, imap: ImapFaultServer) -> tuple[dict, str]:
    """The send succeeded (exit 0, the message delivered once, `sent`) and the copy is pending, said in one
    line that names the retry. Returns the latest record and that line."""
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(account.server.messages) == 1  # delivered, once
    latest = account.records()[-1]
    assert latest["status"] == "sent"
    assert latest["sent_copy"] == "pending", latest
    assert latest["sent_copy_error"]
    line = copy_line(result)
    assert "not made yet" in line and "the message itself was sent" in line, line
    assert "track" in line and "outbox run --once" in line, line
    assert imap.idle(), "an IMAP connection was left open"
    return latest, line


def assert_a_retry_saves_one_copy(account: FaultAccount, imap: ImapFaultServer) -> None:
    """`outbox run --once` makes the pending copy: says so, records `saved`, and the server holds the exact
    stored bytes, once."""
    retried = account.run("outbox", "run", "--once")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "saved in your Sent folder (Sent)" in copy_line(retried)
    assert account.records()[-1]["sent_copy"] == "saved" and account.records()[-1]["status"] == "sent"
    assert imap.messages("Sent") == [stored_message(account)]  # the exact bytes, once


# -- 1. over quota ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["append", "literal"], ids=["after-the-literal", "before-the-literal"])
def test_over_quota_the_send_succeeds_and_the_copy_is_made_once_when_there_is_room(imap_account, stage):
    account, imap = imap_account(always={stage: QUOTA})
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "over its quota" in latest["sent_copy_error"] and "OVERQUOTA" in latest["sent_copy_error"]
    assert "make room" in latest["sent_copy_error"]
    assert "over its quota" in line and "make room" in line
    assert imap.messages("Sent") == []  # nothing appended
    assert [r["sent_copy"] for r in copy_records(account)] == ["pending", "pending"]

    again = account.run("outbox", "run", "--once")  # still full: the same failure, nothing new logged
    assert again.returncode == 0, again.stderr
    assert imap.messages("Sent") == []
    assert len(copy_records(account)) == 2

    imap.always.clear()  # room made
    assert_a_retry_saves_one_copy(account, imap)
    assert imap.flags("Sent") == [("\\Seen",)]

    for later in (("outbox", "run", "--once"), ("track",)):  # nothing pending any more: nothing appended
        assert account.run(*later).returncode == 0
    assert len(imap.messages("Sent")) == 1
    assert len(account.server.messages) == 1  # and the message itself never went again


# -- 2. the connection lost after the literal, before the APPEND's answer -----------------------------


def test_an_append_whose_answer_was_lost_is_found_by_the_retry_not_appended_twice(imap_account):
    account, imap = imap_account(script=[{"append": "close"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "saving the copy in Sent" in latest["sent_copy_error"]
    assert imap.messages("Sent") == [stored_message(account)]  # it did happen

    retried = account.run("track")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "already in your Sent folder (Sent): no second copy made" in copy_line(retried)
    assert account.records()[-1]["sent_copy"] == "found"
    assert imap.messages("Sent") == [stored_message(account)]  # still one copy
    assert imap.idle()
    message_id = latest["message_id"]
    retry_verbs = imap.verbs(connection=1)
    assert "APPEND" not in retry_verbs and "UID SEARCH" in retry_verbs
    assert any(f"HEADER Message-ID {message_id}" in text.replace('"', "") for _, text in imap.commands)
    assert len(imap.appends) == 1  # the server only ever read one APPEND

    assert account.run("outbox", "run", "--once").returncode == 0
    assert len(imap.messages("Sent")) == 1


# -- 3. the connection lost in the middle of the literal ----------------------------------------------


def test_an_append_cut_off_mid_literal_is_made_once_by_the_retry(imap_account):
    account, imap = imap_account(script=[{"literal": "close"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "saving the copy in Sent" in latest["sent_copy_error"]
    assert imap.messages("Sent") == [] and imap.appends == []  # nothing stored

    assert_a_retry_saves_one_copy(account, imap)
    assert account.run("track").returncode == 0
    assert len(imap.messages("Sent")) == 1


# -- 4. BYE right after the login ---------------------------------------------------------------------


def test_bye_right_after_the_login_leaves_the_copy_pending_in_one_clear_line(imap_account):
    account, imap = imap_account(script=[{"login": "OK LOGIN completed\n* BYE Server shutting down for maintenance"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "Server shutting down for maintenance" in latest["sent_copy_error"]
    assert "Server shutting down for maintenance" in line
    assert imap.messages("Sent") == []

    assert_a_retry_saves_one_copy(account, imap)


def test_bye_instead_of_the_login_answer_is_not_called_a_wrong_password(imap_account):
    """A server going down during the login is not a refused login: no "store the password again"."""
    account, imap = imap_account(script=[{"login": "* BYE Server shutting down for maintenance"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "Server shutting down for maintenance" in line
    assert "refused the login" not in line and "password set" not in line, line


def test_a_login_the_server_cannot_do_now_is_not_called_a_wrong_password(imap_account):
    """NO [UNAVAILABLE] (RFC 5530): the server's own trouble, for now: no "store the password again"."""
    account, imap = imap_account(script=[{"login": "NO [UNAVAILABLE] Authentication backend down"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "cannot log anyone in right now" in line and "Authentication backend down" in line, line
    assert "refused the login" not in line and "password set" not in line, line


def test_bye_as_the_greeting_leaves_the_copy_pending(imap_account):
    account, imap = imap_account(script=[{"greeting": "* BYE Too many connections from your address"}])
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "Too many connections" in line
    assert imap.logins == []


# -- 5. a server that quotes the password ------------------------------------------------------------


@pytest.mark.parametrize(
    "stage",
    [
        "greeting",
        "login",
        "select",
        "search",
        "append",
    ],
)
@pytest.mark.parametrize("password", ["pw-plain-" + "x" * 12, "pw-back\\slash-\"q'-z9"], ids=["plain", "escaped"])
def test_a_reply_quoting_the_password_is_hidden_everywhere(imap_account, password, stage):
    quoted = f'NO [UNAVAILABLE] Backend error for LOGIN {USERNAME} "{password}", try later'
    account, imap = imap_account(always={stage: quoted})
    result = account.run(*WITHDRAW_ARGS)
    latest, line = assert_sent_and_pending(account, result, imap)
    assert "Backend error" in line  # the server's words are still quoted, the password left out
    shown = account.run("log", "show", latest["id"][:8])
    assert shown.returncode == 0
    assert account.run("outbox", "run", "--once").returncode == 0  # the retry fails the same way
    found = imap_account.leaks()  # stdout, stderr, sent.jsonl, messages/, every file the test made
    assert not found, f"the password leaked into: {found}"
