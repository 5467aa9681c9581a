"""The Sent folder copy and `track`, against a real IMAP server (pymap) on 127.0.0.1, over TLS.

Each test asserts on what the IMAP server holds (read with imaplib, as any client would) and on the
sent log, running the CLI as a subprocess as a user does.
"""

from __future__ import annotations

import socket

import pytest
from conftest import USERNAME, WITHDRAW_ARGS, imports_package
from imapserver import ImapServer

from jobmail.errors import MailboxError
from jobmail.imap import client as imap
from jobmail.settings import from_values


@pytest.fixture
def imap_server(tls_context, password):
    started: list[ImapServer] = []

    def start(implicit_tls: bool = True, folders: tuple[str, ...] = ("Sent",)) -> ImapServer:
        server = ImapServer(USERNAME, password, tls_context, implicit_tls=implicit_tls, folders=folders).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def closed_port() -> int:
    """A port nothing listens on (the OS picked it free; closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def imap_settings(server: ImapServer, **extra: str) -> dict[str, str]:
    return {
        "IMAP_HOST": "127.0.0.1",
        "IMAP_PORT": str(server.port),
        "IMAP_SECURITY": "ssl" if server.implicit_tls else "starttls",
        **extra,
    }


def with_imap(make_account, password, server: ImapServer, **extra: str):
    account = make_account("starttls", **imap_settings(server, **extra))
    account.store_password(password)
    return account


def sent_copy_states(account) -> list[str | None]:
    return [record.get("sent_copy") for record in account.records() if record["status"] == "sent"]


def reply_to(message_id: str, sender: str = "Jordan Lee <jordan.lee@acme.example.com>", n: int = 1) -> bytes:
    return (
        f"From: {sender}\r\nTo: {USERNAME}\r\nSubject: Re: your application\r\n"
        f"Date: Fri, 04 Dec 2026 10:0{n}:00 +0000\r\nMessage-ID: <answer-{n}@acme.example.com>\r\n"
        f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n\r\n"
        "Thank you for letting us know, Alex.\r\nWe wish you the best.\r\n\r\n> quoted text of yours\r\n"
    ).encode()


@pytest.mark.parametrize("implicit_tls", [True, False], ids=["ssl", "starttls"])
def test_a_send_puts_the_exact_bytes_in_sent_once_and_marked_seen(make_account, password, imap_server, implicit_tls):
    server = imap_server(implicit_tls=implicit_tls)
    account = with_imap(make_account, password, server)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert "saved in your Sent folder (Sent)" in result.stdout
    [(flags, data)] = server.messages("Sent")
    [sent_id] = {record["id"] for record in account.records()}
    assert data == (account.log_dir / "messages" / f"{sent_id}.eml").read_bytes()  # the exact bytes
    assert b"\\Seen" in flags.split()
    assert sent_copy_states(account) == ["pending", "saved"]  # `sent` first, then the copy's outcome
    shown = account.run("log", "show", sent_id[:8])
    assert "copy saved in Sent folder 'Sent'" in shown.stdout and shown.stdout.count("  sent  ") >= 2
    assert shown.stdout.count("server replied 250") == 1  # one delivery, said once

    for again in (("track",), ("outbox", "run", "--once")):  # nothing pending: nothing appended again
        assert account.run(*again).returncode == 0
    assert len(server.messages("Sent")) == 1
    assert "sent 250" in account.run("log").stdout  # the delivery's code, on the copy's record too
    twice = account.run(*WITHDRAW_ARGS)  # the same message again: refused, as without a Sent copy
    assert twice.returncode == 2 and "already sent" in twice.stderr, twice.stderr
    assert len(account.server.messages) == 1 and len(server.messages("Sent")) == 1


@pytest.mark.parametrize("when", [(), ("--at", "+2s")], ids=["now", "waited-for"])
def test_the_sent_line_comes_before_the_copy_and_names_the_server(make_account, password, imap_server, when):
    """The copy is made after the server's 250, and is said after it; a send waited for in the terminal
    says through which server it went, though its latest record is the copy's."""
    server = imap_server()
    account = with_imap(make_account, password, server)
    result = account.run(*WITHDRAW_ARGS, *when)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    sent = next(i for i, line in enumerate(lines) if line.startswith("Sent via "))
    copied = next(i for i, line in enumerate(lines) if "saved in your Sent folder" in line)
    assert sent < copied, result.stdout
    assert lines[sent].startswith(f"Sent via 127.0.0.1:{account.server.port} (TLSv1.3): 250"), lines[sent]


@pytest.mark.parametrize("password", ["pässwörd-ünïcode-42"])
def test_a_password_beyond_ascii_logs_in_with_authenticate_plain(make_account, password, imap_server):
    """LOGIN's quoted strings cannot carry it (imaplib raised UnicodeEncodeError, a traceback after the
    message had gone): AUTHENTICATE PLAIN in UTF-8 does."""
    server = imap_server()
    account = with_imap(make_account, password, server)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "saved in your Sent folder" in result.stdout
    assert len(server.messages("Sent")) == 1 and sent_copy_states(account) == ["pending", "saved"]


def test_with_imap_unreachable_the_message_is_sent_and_a_later_run_copies_it_once(make_account, password, imap_server):
    server = imap_server()
    account = make_account("starttls", **imap_settings(server, IMAP_PORT=str(closed_port())))
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr  # sent: the copy never makes a send fail
    assert len(account.server.messages) == 1
    assert "not made yet" in result.stdout and "refused the connection" in result.stdout
    assert account.records()[-1]["status"] == "sent" and account.records()[-1]["sent_copy"] == "pending"
    assert server.messages("Sent") == []

    account.write_env(**{**_env(account), "IMAP_PORT": str(server.port)})
    again = account.run("outbox", "run", "--once")
    assert again.returncode == 0, again.stderr
    assert "saved in your Sent folder" in again.stdout
    assert len(server.messages("Sent")) == 1
    assert account.run("outbox", "run", "--once").returncode == 0
    assert account.run("track").returncode == 0
    assert len(server.messages("Sent")) == 1  # once, after every retry
    assert account.records()[-1]["sent_copy"] == "saved"
    assert len(account.server.messages) == 1  # and the message itself was never sent again


def test_a_copy_already_in_sent_is_not_appended_again(make_account, password, imap_server):
    """The provider filed it, or an APPEND whose answer was lost went through: the retry finds it."""
    server = imap_server()
    account = make_account("starttls", **imap_settings(server, IMAP_PORT=str(closed_port())))
    account.store_password(password)
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    [sent_id] = {record["id"] for record in account.records()}
    server.deliver("Sent", (account.log_dir / "messages" / f"{sent_id}.eml").read_bytes(), r"(\Seen)")
    account.write_env(**{**_env(account), "IMAP_PORT": str(server.port)})
    result = account.run("track")
    assert result.returncode == 0, result.stderr
    assert "already in your Sent folder" in result.stdout
    assert len(server.messages("Sent")) == 1
    assert account.records()[-1]["sent_copy"] == "found"


def test_track_logs_one_replied_record_per_answer_and_changes_nothing_in_the_mailbox(
    make_account, password, imap_server
):
    server = imap_server()
    account = with_imap(make_account, password, server)
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    [sent] = [record for record in account.records() if record["status"] == "sent"][-1:]
    message_id = sent["message_id"]
    server.deliver("INBOX", reply_to(message_id))
    server.deliver("INBOX", reply_to(message_id, sender=f"Alex Example <{USERNAME}>", n=2))  # our own follow-up
    server.deliver("INBOX", reply_to("<someone-else@example.com>", n=3))  # answers something else

    result = account.run("track")
    assert result.returncode == 0, result.stderr
    assert "1 new reply" in result.stdout and "jordan.lee@acme.example.com" in result.stdout
    replied = [record for record in account.records() if record["status"] == "replied"]
    assert len(replied) == 1
    assert replied[0]["id"] == sent["id"]
    assert replied[0]["reply_message_id"] == "<answer-1@acme.example.com>"
    assert replied[0]["reply_from"] == "Jordan Lee <jordan.lee@acme.example.com>"
    assert replied[0]["reply_subject"] == "Re: your application"
    assert replied[0]["sent_copy"] == "saved"  # the copy's state rides along
    assert all(flags == b"" for flags, _ in server.messages("INBOX"))  # read-only: nothing marked read

    again = account.run("track")
    assert again.returncode == 0 and "No new replies" in again.stdout
    assert len([record for record in account.records() if record["status"] == "replied"]) == 1
    twice = account.run(*WITHDRAW_ARGS)  # answered, and the same message again: refused
    assert twice.returncode == 2 and "already" in twice.stderr, twice.stderr
    assert len(account.server.messages) == 1

    listed = account.run("log", "--status", "replied")
    assert listed.returncode == 0 and "replied" in listed.stdout and sent["id"][:8] in listed.stdout
    assert account.run("log", "--status", "sent").stdout.count(sent["id"][:8]) == 0
    shown = account.run("log", "show", sent["id"][:8])
    assert "Replies (local time):" in shown.stdout
    assert "| Thank you for letting us know, Alex." in shown.stdout
    assert "quoted text" not in shown.stdout.split("Replies (local time):")[1].split("Stored message")[0]


def test_track_without_imap_host_says_what_to_set(make_account, password):
    account = make_account("starttls")
    result = account.run("track")
    assert result.returncode == 2
    assert "IMAP_HOST is not set" in result.stderr


def test_a_wrong_password_gets_the_login_hint(make_account, password, imap_server):
    server = imap_server()
    account = make_account("starttls", **imap_settings(server))
    account.store_password("not-" + password)
    result = account.run("track")
    assert result.returncode == 1
    assert "refused the login" in result.stderr and "password set" in result.stderr
    assert "not-" + password not in result.stderr


def test_the_wrong_tls_mode_gets_the_mode_hint(make_account, password, imap_server):
    server = imap_server(implicit_tls=False)  # STARTTLS on the port
    account = make_account("starttls", **imap_settings(server, IMAP_SECURITY="ssl"))
    account.store_password(password)
    result = account.run("track")
    assert result.returncode == 1
    assert "IMAP_SECURITY=ssl with port 993 and starttls with port 143" in result.stderr


def test_no_sent_folder_names_the_folders_there_are(password, imap_server, ca_file):
    server = imap_server(folders=("Archive", "Drafts"))
    settings = from_values(
        {
            "SMTP_HOST": "127.0.0.1",
            "FROM_ADDRESS": USERNAME,
            "FROM_NAME": "Alex",
            "SMTP_CA_FILE": str(ca_file),
            **imap_settings(server),
        }
    )
    with imap.connect(settings, lambda: password) as box, pytest.raises(MailboxError) as caught:
        box.sent_folder()
    assert "no Sent folder found" in str(caught.value)
    assert "'Archive', 'Drafts'" in str(caught.value) and "SENT_FOLDER" in str(caught.value)


def test_a_certificate_from_an_unknown_ca_is_refused(password, imap_server):
    server = imap_server()
    settings = from_values(
        {"SMTP_HOST": "127.0.0.1", "FROM_ADDRESS": USERNAME, "FROM_NAME": "A", **imap_settings(server)}
    )
    with pytest.raises(MailboxError, match="certificate could not be verified"):
        with imap.connect(settings, lambda: password):
            pass


@pytest.mark.parametrize(
    ("args", "imap_on", "extra"),
    [
        (("log",), True, {}),
        (("--help",), True, {}),
        (WITHDRAW_ARGS, True, {"SENT_COPY": "never"}),
        (WITHDRAW_ARGS, False, {}),  # no IMAP_HOST
    ],
    ids=["log", "help", "send-never", "send-no-imap"],
)
def test_paths_that_do_not_use_imap_never_import_imaplib(make_account, password, args, imap_on, extra):
    values = {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(closed_port()), **extra} if imap_on else {}
    account = make_account("starttls", **values)
    account.store_password(password)
    imported, _, stderr = imports_package(account, tuple(args), "imaplib")
    assert not imported, stderr
    if args == WITHDRAW_ARGS:
        assert account.records()[-1]["status"] == "sent" and "sent_copy" not in account.records()[-1]


def _env(account) -> dict[str, str]:
    lines = account.env_file.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_a_scheduled_message_gets_its_copy_when_the_outbox_sends_it(make_account, password, imap_server):
    server = imap_server()
    account = with_imap(make_account, password, server)
    queued = account.run(*WITHDRAW_ARGS, "--at", "+1h", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    [message_id] = {record["id"] for record in account.records()}
    sent = account.run("outbox", "send-now", message_id[:8])
    assert sent.returncode == 0, sent.stderr
    lines = sent.stdout.splitlines()
    said = next(i for i, line in enumerate(lines) if line.startswith(f"Sent {message_id[:8]} to "))
    copied = next(i for i, line in enumerate(lines) if "saved in your Sent folder" in line)
    assert said < copied and ": 250 " in lines[said], sent.stdout  # the 250 first: the copy came after it
    [(flags, data)] = server.messages("Sent")
    assert data == (account.log_dir / "messages" / f"{message_id}.eml").read_bytes() and b"\\Seen" in flags.split()


def test_check_logs_in_over_imap_and_says_where_the_sent_folder_is(make_account, password, imap_server):
    server = imap_server(folders=("Sent Items",))
    account = with_imap(make_account, password, server)
    result = account.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"IMAP login as {USERNAME} at 127.0.0.1:{server.port} ... ok (TLSv1.3)" in result.stdout
    assert "Sent folder ... ok ('Sent Items' (found by its name); a copy of each message sent goes there)" in (
        result.stdout
    )
    assert server.messages("Sent Items") == []  # nothing was sent or copied


def test_check_says_when_imap_refuses_the_login(make_account, password, imap_server):
    server = imap_server()
    account = with_imap(make_account, password, server, IMAP_USERNAME="someone.else@example.com")
    result = account.run("check")
    assert result.returncode == 1
    assert "Sending works, but IMAP does not yet" in result.stdout
    assert "refused the login as someone.else@example.com" in result.stderr


def test_folder_names_in_modified_utf7_and_list_lines():
    assert imap.encode_name("Envoyés") == "Envoy&AOk-s"
    assert imap.encode_name("A&B") == "A&-B"
    assert imap.decode_name(imap.encode_name("Gesendete Objekte ✓")) == "Gesendete Objekte ✓"
    folder = imap._parse_list(b'(\\HasNoChildren \\Sent) "/" "Sent Items"')
    assert folder is not None and folder.name == "Sent Items" and "\\sent" in folder.flags
    assert imap._parse_list(b'(\\Noselect) "/" "[Gmail]"') is None


def test_reply_to_latest_answers_their_latest_email_in_inbox_in_its_thread(make_account, password, imap_server):
    server = imap_server()
    account = with_imap(make_account, password, server, SENT_COPY="never")
    older = reply_to("<first@acme.example.com>", n=1).replace(b"answer-1", b"older-1")
    latest = (
        b"From: Jordan Lee <jordan.lee@acme.example.com>\r\nTo: " + USERNAME.encode() + b"\r\n"
        b"Subject: Next steps for the Data Analyst role\r\nMessage-ID: <latest-2@acme.example.com>\r\n"
        b"References: <first@acme.example.com>\r\n\r\nShall we meet on Thursday?\r\n"
    )
    server.deliver("INBOX", older)
    server.deliver("INBOX", reply_to("<x@y.example.com>", sender="Someone Else <else@other.example.com>", n=3))
    server.deliver("INBOX", latest)
    args = [a for a in WITHDRAW_ARGS if a not in ("--to", "jordan.lee@acme.example.com")]
    result = account.run(*args, "--reply-to-latest", "jordan.lee@acme.example.com")
    assert result.returncode == 0, result.stderr
    (received,) = account.server.messages
    assert received.rcpt_tos == ["jordan.lee@acme.example.com"]
    assert b"\r\nSubject: Re: Next steps for the Data Analyst role\r\n" in received.data
    assert b"\r\nIn-Reply-To: <latest-2@acme.example.com>\r\n" in received.data
    assert b"References: <first@acme.example.com> <latest-2@acme.example.com>" in received.data
    nobody = account.run(*args, "--reply-to-latest", "nobody@acme.example.com")
    assert nobody.returncode == 2 and "no message from nobody@acme.example.com in INBOX" in nobody.stderr


def test_reply_to_latest_without_imap_says_what_to_set(make_account, password):
    account = make_account("starttls")
    result = account.run("send", "withdraw", "--reply-to-latest", "j@acme.example.com", "--position", "X",
                         "--company", "Y")
    assert result.returncode == 2 and "set IMAP_HOST" in result.stderr


def test_a_fault_of_ours_in_the_copy_leaves_it_pending_and_the_message_sent(tmp_path, monkeypatch):
    """The copy is made after the 250: whatever goes wrong in it, the message stays `sent` (exit 0) and
    the copy `pending`, retried later; the error names the fault, never its text (it could hold anything)."""
    from jobmail.app import sentcopy
    from jobmail.store.sentlog import SentLog

    def broken(settings, secret):
        raise RuntimeError(f"a bug that quotes {secret()}")

    monkeypatch.setattr(sentcopy.imap, "connect", broken)
    log = SentLog(tmp_path / "log")
    sent = {"id": "0123456789ab", "status": "sent", "from": USERNAME, "to": ["jordan@acme.example"], "cc": []}
    sent = log.append({**sent, "subject": "Withdrawing", "sent_copy": "pending"})
    outcome = sentcopy.save_after_send(None, log, sent, b"the message", lambda: "pw-secret")
    assert outcome["status"] == "sent" and outcome["sent_copy"] == "pending"
    assert "unexpected RuntimeError" in outcome["sent_copy_error"] and "pw-secret" not in outcome["sent_copy_error"]
    assert log.current(sent["id"])["sent_copy"] == "pending"
