"""Templates render strictly; the lint command checks them (and .eml files) against the guide."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobmail.errors import InputError, TemplateError
from jobmail.message.compose import Envelope, build_message, list_templates, redate, render
from jobmail.settings import PROJECT_DIR

VARS = {
    "interviewer": "",
    "position": "Analyst",
    "company": "Acme",
    "reason": "",
    "offer_help": True,
    "sender_name": "Alex Example",
    "sender_email": "alex@example.com",
}


def test_shipped_templates_are_listed():
    assert list_templates(PROJECT_DIR / "templates") == ["decline-offer", "withdraw"]


def test_missing_variable_names_it_the_template_file_and_its_line():
    with pytest.raises(TemplateError) as missing:
        render(PROJECT_DIR / "templates", "withdraw", {k: v for k, v in VARS.items() if k != "company"})
    assert str(missing.value) == (
        f"template 'withdraw' ({PROJECT_DIR / 'templates' / 'withdraw.txt.j2'}) needs the variable 'company' "
        '(line 13): add --company "..." to the command'
    )


def test_every_missing_variable_is_named_in_one_message():
    given = {k: v for k, v in VARS.items() if k not in ("company", "position")}
    with pytest.raises(TemplateError, match=r"needs the variables 'position' \(line 1\), 'company' \(line 13\): "
                       r'add --position "\.\.\." --company "\.\.\." to the command'):
        render(PROJECT_DIR / "templates", "withdraw", given)


def test_lint_without_values_fills_in_placeholders_and_checks_the_rest():
    given = {k: v for k, v in VARS.items() if k not in ("company", "position")}
    draft = render(PROJECT_DIR / "templates", "withdraw", given, fill_missing=True)
    assert draft.filled == ("position", "company")
    assert "[position] position at [company]" in draft.body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Subject: Hi\n\nDear {{ name ,\n", "x.txt.j2, line 3: template syntax error"),
        ("Dear you,\n\nbody\n", "x.txt.j2, line 1: 'Dear you,' is not a header"),
        ("Subject: Hi\nDear you\n", "x.txt.j2, line 2: 'Dear you' is not a header"),
        ("Subject: Hi\nCc: hr@acme.example.com", "no blank line after the header block"),
        ("Cc: a@example.com\n\nDear you,\n", "no Subject: line"),
        ("Subject: Hi\n\n   \n", "renders an empty body"),
    ],
)
def test_template_errors_say_where(tmp_path, text, expected):
    (tmp_path / "x.txt.j2").write_text(text, encoding="utf-8")
    with pytest.raises((TemplateError, InputError)) as caught:
        render(tmp_path, "x", VARS)
    assert expected in str(caught.value)


def test_non_utf8_template(tmp_path):
    (tmp_path / "x.txt.j2").write_bytes("Subject: Caf\xe9\n\nDear you,\n".encode("latin-1"))
    with pytest.raises(TemplateError, match="is not UTF-8"):
        render(tmp_path, "x", VARS)


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(TemplateError, match="unknown template 'withdrawl': choose one of decline-offer, withdraw"):
        render(PROJECT_DIR / "templates", "withdrawl", VARS)


def test_header_block_cc_reply_to_language(tmp_path):
    (tmp_path / "x.txt.j2").write_text(
        "Subject: About {{ position }}\nCc: hr@acme.example.com\nReply-To: me@example.org\nLanguage: fr\n\nBonjour,\n",
        encoding="utf-8",
    )
    draft = render(tmp_path, "x", VARS)
    assert (draft.subject, draft.cc, draft.reply_to, draft.language) == (
        "About Analyst",
        ("hr@acme.example.com",),
        "me@example.org",
        "fr",
    )


def test_message_over_the_size_limit_is_refused():
    draft = render(PROJECT_DIR / "templates", "withdraw", VARS)
    envelope = Envelope("Alex Example", "alex@example.com", ("j@acme.example.com",))
    with pytest.raises(
        InputError, match=r"the message is [\d,]+ bytes, over the limit of 512 bytes \(MAX_MESSAGE_KB\)"
    ):
        build_message(draft, envelope, datetime.now(UTC), max_bytes=512)


def test_lint_a_template_passes_clean(make_account):
    account = make_account("starttls")
    result = account.run("lint", "withdraw", "--position", "Analyst", "--company", "Acme")
    assert result.returncode == 0, result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout
    assert result.stdout.count("[ok  ]") == 7


def test_lint_stops_a_leftover_placeholder_quoting_it_and_its_line(make_account, tmp_path):
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "mine.txt.j2").write_text(
        "Subject: Withdrawing my application\n\nDear [Interviewer's Name],\n\n"
        "I am writing to withdraw my application for the {{ position }} role. Thank you for your time.\n\n"
        "Best regards,\n{{ sender_name }}\n",
        encoding="utf-8",
    )
    account = make_account("starttls", TEMPLATES_DIR=str(templates))
    result = account.run("lint", "mine", "--position", "Analyst")
    assert result.returncode == 2
    assert "[Interviewer's Name]" in result.stdout
    assert f"{templates / 'mine.txt.j2'}, line 3:" in result.stdout  # the template file's own line, not the body's
    send = account.run("send", "mine", "--to", "j@acme.example.com", "--position", "Analyst")
    assert send.returncode == 2 and "breaks the guide" in send.stderr
    assert account.server.messages == [] and account.records() == []


def test_lint_an_eml_file(make_account, tmp_path):
    eml = tmp_path / "draft.eml"
    eml.write_bytes(
        b"From: Alex Example <alex@example.com>\r\nTo: j@acme.example.com\r\nSubject: Application\r\n\r\n"
        b"Dear Jordan,\r\n\r\nI have decided to withdraw my application. The salary of $40k was too low "
        b"and the process was disorganized.\r\n\r\nCheers,\r\nAlex Example\r\n"
    )
    account = make_account("starttls")
    result = account.run("lint", "--file", str(eml))
    assert result.returncode == 0, result.stdout  # warnings only
    assert "$40k" in result.stdout and "disorganized" in result.stdout  # the details to cut, quoted
    assert "[warn] 1. Reasons kept brief" in result.stdout
    assert "Cheers" in result.stdout and "[warn] 7. Professional sign-off" in result.stdout


def test_redate_replaces_the_date_line_alone_and_only_when_it_is_off():
    head = b"From: a@example.com\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\nSubject: Hi\r\n\r\nBody\r\n"
    assert redate(head, datetime(2026, 11, 2, 9, 0, 45, tzinfo=UTC)) is None  # within a minute: kept
    later = datetime(2026, 11, 3, 10, 30, tzinfo=UTC)
    new = redate(head, later)
    lines = new.split(b"\r\n")
    assert lines[0] == b"From: a@example.com" and lines[2] == b"Subject: Hi"
    assert new.endswith(b"\r\n\r\nBody\r\n")
    from email.utils import parsedate_to_datetime

    assert parsedate_to_datetime(lines[1][5:].decode().strip()) == later

    folded = head.replace(b"Date: Mon,", b"Date:\r\n Mon,")  # a Date folded by another program
    new = redate(folded, later)
    assert b"02 Nov" not in new and new.count(b"Date:") == 1 and b"Subject: Hi" in new
    assert redate(b"Subject: no date\r\n\r\nBody\r\n", later) is None
