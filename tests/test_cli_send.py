"""The heart of it: one command sends a well-formed withdrawal through a real (loopback) SMTP server."""

from __future__ import annotations

import email
import email.policy
import re

from conftest import USERNAME, WITHDRAW_ARGS


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def text_of(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def test_starttls_send_delivers_a_well_formed_message_and_logs_it(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--reason", "another-offer")
    assert result.returncode == 0, result.stderr
    assert len(account.server.messages) == 1
    got = account.server.messages[0]
    assert got.mail_from == USERNAME
    assert got.rcpt_tos == ["jordan.lee@acme.example.com"]
    msg = parse(got.data)
    assert msg["From"] == "Alex Example <alex@example.com>"
    assert msg["To"] == "jordan.lee@acme.example.com"
    assert msg["Subject"] == "Withdrawing my application for the Data Analyst position"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"]
    assert re.fullmatch(r"<[^@<>\s]+@example\.com>", msg["Message-ID"])
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    body = text_of(msg)
    assert body.startswith("Dear Jordan Lee,\n")
    assert "withdraw my application for the Data Analyst position at Acme" in body
    assert body.rstrip().endswith("Alex Example")
    assert b"\r\n" in got.data and b"\n" not in got.data.replace(b"\r\n", b"")
    # what a strict server or spam filter looks at: no parse defects, short lines, 7-bit clean
    assert msg.defects == [] and all(msg[h].defects == () for h in msg.keys())
    assert max(len(line) for line in got.data.split(b"\r\n")) <= 78
    assert got.data.isascii()
    # the record
    records = account.records()
    assert [r["status"] for r in records] == ["sending", "sent"]
    sent = records[-1]
    assert sent["reply"]["code"] == 250
    assert got.queue_id in sent["reply"]["text"]
    assert sent["tls"].startswith("TLSv1")
    assert sent["message_id"] == msg["Message-ID"]
    assert sent["to"] == ["jordan.lee@acme.example.com"]
    assert sent["attempts"] == 1
    assert len({r["id"] for r in records}) == 1
    stored = (account.log_dir / "messages" / f"{sent['id']}.eml").read_bytes()
    assert stored == got.data
    assert "Sent via" in result.stdout and "250" in result.stdout


def test_implicit_tls_send(make_account, password):
    account = make_account("ssl")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 0, result.stderr
    assert len(account.server.messages) == 1
    assert account.records()[-1]["status"] == "sent"


def test_non_ascii_name_subject_and_body_are_encoded(make_account, password):
    account = make_account("starttls", FROM_NAME="Zoë Ångström")
    account.store_password(password)
    result = account.run(
        "send",
        "withdraw",
        "--to",
        "rh@société.example",
        "--position",
        "Ingénieur logiciel",
        "--company",
        "Société Générale d'Exemple",
        "--interviewer",
        "Jérôme Müller",
    )
    assert result.returncode == 0, result.stderr
    raw = account.server.messages[0].data
    assert raw.isascii()  # every header and the body are encoded for a 7-bit path
    assert b"<alex@example.com>" in raw  # the address part of From is never encoded
    msg = parse(raw)
    assert str(msg["From"]) == "Zoë Ångström <alex@example.com>"
    assert msg["Subject"] == "Withdrawing my application for the Ingénieur logiciel position"
    assert msg["To"] == "rh@xn--socit-esab.example"
    body = text_of(msg)
    assert "Dear Jérôme Müller," in body and body.rstrip().endswith("Zoë Ångström")


def test_html_template_makes_multipart_alternative(make_account, password, tmp_path):
    templates = tmp_path / "tpl"
    templates.mkdir()
    from conftest import PROJECT

    (templates / "withdraw.txt.j2").write_text((PROJECT / "templates" / "withdraw.txt.j2").read_text("utf-8"), "utf-8")
    (templates / "withdraw.html.j2").write_text("<p>Dear {{ interviewer }},</p><p>{{ company }}</p>\n", "utf-8")
    account = make_account("starttls", TEMPLATES_DIR=str(templates))
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS[:-1], "Acme & Sons")
    assert result.returncode == 0, result.stderr
    msg = parse(account.server.messages[0].data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = list(msg.iter_parts())[1].get_content()
    assert "Acme &amp; Sons" in html and "Acme & Sons" not in html  # autoescaped


def test_wrong_password_fails_with_the_servers_reply(make_account):
    account = make_account("starttls")
    account.store_password("not-the-password")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert "535" in result.stderr and "app password" in result.stderr
    assert "Traceback" not in result.stderr
    assert account.server.messages == []
    failed = account.records()[-1]
    assert failed["status"] == "failed" and failed["reply"]["code"] == 535


def test_untrusted_certificate_is_refused(make_account, password):
    account = make_account("starttls", ca=False)
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert "not trusted" in result.stderr and "SMTP_CA_FILE" in result.stderr
    assert account.server.messages == [] and account.server.auth_attempts == []


def test_no_starttls_offered_sends_nothing_in_plaintext(make_account, password):
    account = make_account("starttls", plain_server=True)
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 1
    assert "does not offer STARTTLS" in result.stderr
    assert "SMTP_SECURITY=none" in result.stderr  # the server is on this machine: a test server
    assert account.server.messages == [] and account.server.auth_attempts == []


def test_missing_variable_exits_2_and_sends_nothing(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run("send", "withdraw", "--to", "jordan.lee@acme.example.com", "--company", "Acme")
    assert result.returncode == 2
    assert "'position'" in result.stderr and "withdraw" in result.stderr
    assert account.server.messages == [] and account.records() == []


def test_password_in_env_file_is_refused(make_account, password):
    account = make_account("starttls")
    with account.env_file.open("a", encoding="utf-8") as f:
        f.write(f"SMTP_PASSWORD={password}\n")
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2
    assert "keyring" in result.stderr and "SMTP_PASSWORD" in result.stderr
    assert password not in result.stderr + result.stdout
    assert account.server.messages == []


def test_password_in_environment_is_refused(make_account, password):
    account = make_account("starttls")
    account.env["SMTP_PASSWORD"] = password
    result = account.run(*WITHDRAW_ARGS)
    assert result.returncode == 2 and "keyring" in result.stderr
    assert password not in result.stderr + result.stdout


def test_dry_run_prints_the_message_and_sends_nothing(make_account, password):
    account = make_account("starttls")
    result = account.run(*WITHDRAW_ARGS, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Subject: Withdrawing my application for the Data Analyst position" in result.stdout
    assert "Message-ID: <" in result.stdout and "Dear Jordan Lee," in result.stdout
    assert "dry run" in result.stdout
    assert account.server.messages == [] and account.records() == []


def test_bcc_self_reply_to_and_thread_headers(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(
        *WITHDRAW_ARGS,
        "--bcc-self",
        "--reply-to",
        "alex.personal@example.org",
        "--in-reply-to",
        "<abc.123@mail.acme.example.com>",
        "--cc",
        "hr@acme.example.com",
    )
    assert result.returncode == 0, result.stderr
    got = account.server.messages[0]
    assert got.rcpt_tos == ["jordan.lee@acme.example.com", "hr@acme.example.com", USERNAME]
    msg = parse(got.data)
    assert msg["Bcc"] is None and b"Bcc" not in got.data
    assert msg["Cc"] == "hr@acme.example.com"
    assert msg["Reply-To"] == "alex.personal@example.org"
    assert msg["In-Reply-To"] == "<abc.123@mail.acme.example.com>"
    assert msg["References"] == "<abc.123@mail.acme.example.com>"


def test_each_message_gets_its_own_message_id(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    first = account.run(*WITHDRAW_ARGS)
    second = account.run(*WITHDRAW_ARGS[:-1], "Other Co")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    ids = [parse(m.data)["Message-ID"] for m in account.server.messages]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_decline_offer_template(make_account, password):
    account = make_account("ssl")
    account.store_password(password)
    result = account.run(
        "send",
        "decline-offer",
        "--to",
        "jordan.lee@acme.example.com",
        "--position",
        "Data Analyst",
        "--company",
        "Acme",
        "--reason",
        "personal",
        "--no-offer-help",
    )
    assert result.returncode == 0, result.stderr
    body = text_of(parse(account.server.messages[0].data))
    assert "decline your offer for the Data Analyst position at Acme" in body
    assert body.startswith("Dear Hiring Team,")
    assert "help" not in body.lower()


def test_log_lists_what_was_sent(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    table = account.run("log")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:3] == ["TIME", "STATUS", "TO"]
    assert "sent" in row and "jordan.lee@acme.example.com" in row and "Withdrawing my application" in row
    as_json = account.run("log", "--json")
    import json

    lines = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["status"] == "sent" and lines[0]["reply"]["code"] == 250


def test_log_files_are_private(make_account, password):
    import os
    import stat
    import sys

    account = make_account("starttls")
    account.store_password(password)
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    if sys.platform.startswith("win"):
        return
    assert stat.S_IMODE(os.stat(account.log_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(account.log_dir / "sent.jsonl").st_mode) == 0o600
    eml = next((account.log_dir / "messages").glob("*.eml"))
    assert stat.S_IMODE(os.stat(eml).st_mode) == 0o600


def test_demo_needs_no_account_and_says_nothing_left(tmp_path):
    import subprocess
    import sys

    from conftest import SEND_PY, clean_environ

    env = clean_environ(tmp_path)
    env["LOG_DIR"] = str(tmp_path / "log")
    result = subprocess.run(
        [sys.executable, str(SEND_PY), "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1" in result.stdout and "nothing leaves this machine" in result.stdout
    assert "Subject: Withdrawing my application for the Data Analyst position" in result.stdout
    assert '"status": "sent"' in result.stdout
    assert (tmp_path / "log" / "demo" / "sent.jsonl").is_file()
    assert not (tmp_path / "log" / "sent.jsonl").exists()  # kept apart from the real log


def test_an_existing_readable_log_folder_is_used_as_it_is_and_its_files_are_private(make_account, password):
    import os
    import stat
    import sys

    if sys.platform.startswith("win"):
        return
    account = make_account("starttls")
    account.store_password(password)
    account.log_dir.mkdir(mode=0o755)
    os.chmod(account.log_dir, 0o755)  # as git makes the project's log/ folder
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    assert stat.S_IMODE(os.stat(account.log_dir).st_mode) == 0o755  # never chmodded: we did not make it
    assert stat.S_IMODE(os.stat(account.log_dir / "sent.jsonl").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(account.log_dir / "messages").st_mode) == 0o700
