"""Guide step 2 for real (--interview-on, --deadline), a reply in the recruiter's own thread
(--reply-to-message), and a personal touch (--highlight, SIGNATURE_FILE).

Timing runs on a clock passed in; the thread is checked in the bytes the loopback server received.
Calendar (2026): Sat Dec 5, Mon Dec 7; New York is on EST (UTC-5) then.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import WITHDRAW_ARGS

from jobmail import settings as config
from jobmail.app.requests import SendRequest, check_highlight
from jobmail.app.sending import prepare
from jobmail.errors import InputError
from jobmail.message.original import parse_original
from jobmail.when import BusinessHours, parse_when

NEW_YORK = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York
MONDAY_9 = datetime(2026, 12, 7, 9, 0, tzinfo=NEW_YORK)

RECRUITER_EMAIL = b"""Return-Path: <jordan.lee@acme.example.com>\r
Received: from mail.acme.example.com by mx.example.com; Tue, 01 Dec 2026 10:00:01 -0500\r
From: "Lee, Jordan" <jordan.lee@acme.example.com>\r
Reply-To: Talent Team <talent@acme.example.com>\r
To: Alex Example <alex@example.com>\r
Subject: =?UTF-8?Q?Re:_RE:_Your_interview_=E2=80=94_next_steps?=\r
Message-ID: <CAB+x.y_z=123$!#@mail.acme.example.com>\r
References: <first@acme.example.com>\r
 <second@acme.example.com>\r
Date: Tue, 01 Dec 2026 10:00:00 -0500\r
MIME-Version: 1.0\r
Content-Type: multipart/alternative; boundary="b1"\r
\r
--b1\r
Content-Type: text/plain; charset=utf-8\r
\r
Hi Alex, shall we meet on Monday?\r
--b1\r
Content-Type: text/html; charset=utf-8\r
\r
<p>Hi Alex, shall we meet on Monday?</p>\r
--b1--\r
"""


@pytest.fixture
def settings(tmp_path):
    return config.from_values(
        {"SMTP_HOST": "127.0.0.1", "FROM_ADDRESS": "alex@example.com", "FROM_NAME": "Alex Example"}, base=tmp_path
    )


def withdraw(**fields) -> SendRequest:
    base = dict(to=("jordan.lee@acme.example.com",), interviewer="Jordan Lee", position="Data Analyst", company="Acme")
    return SendRequest("withdraw", **{**base, **fields})


def step_2(prepared) -> tuple[str, bool, list[str]]:
    (row,) = [row for row in prepared.report.checklist() if row[0] == 2]
    _, title, passed, findings = row
    return title, passed, [f"{f.severity}: {f.message}" for f in findings]


# --- step 2: timing ---------------------------------------------------------------------------------


def test_without_a_date_step_2_says_it_was_not_checked(settings):
    title, passed, findings = step_2(prepare(settings, withdraw(), SATURDAY))
    assert "not checked" in title and passed and findings == []


def test_an_interview_two_days_ahead_is_checked_and_mentioned_in_the_letter(settings):
    prepared = prepare(settings, withdraw(interview_on=MONDAY_9), SATURDAY)
    title, passed, findings = step_2(prepared)
    assert title.endswith("(checked: arrives 1 day before the interview, Mon 07 Dec 09:00)") and passed
    assert "and so I will not attend our interview on Monday, 7 December." in prepared.draft.body
    assert prepared.report.errors == ()


@pytest.mark.parametrize(
    ("before", "severity"),
    [
        (timedelta(hours=25), None),
        (timedelta(hours=24), None),
        (timedelta(hours=23, minutes=59), "warning"),
        (timedelta(minutes=30), "warning"),
        (timedelta(0), "error"),
        (-timedelta(minutes=1), "error"),
    ],
)
def test_step_2_at_its_boundaries(settings, before, severity):
    interview = MONDAY_9
    send_at = interview.astimezone(UTC) - before
    _, passed, findings = step_2(prepare(settings, withdraw(interview_on=interview), send_at))
    if severity is None:
        assert passed and findings == []
    else:
        (finding,) = findings
        assert finding.startswith(severity)
        if severity == "error":
            assert "this would arrive after the interview (Mon 07 Dec 09:00" in finding
        else:
            assert "send it now rather than later, and call them as well" in finding


def test_next_business_morning_crossing_a_monday_9_interview_is_refused_before_it_queues(settings):
    due = parse_when("next-business-morning", SATURDAY, NEW_YORK, BusinessHours.parse("09:00-17:00"))
    assert due == MONDAY_9  # Monday 09:00 New York: the very minute of the interview
    prepared = prepare(settings, withdraw(interview_on=MONDAY_9), due)
    (error,) = prepared.report.errors
    assert error.step == 2 and "would arrive after the interview" in error.message
    assert "give an earlier --at" in error.message


def test_a_decline_after_the_offers_deadline_is_an_error(settings):
    request = SendRequest(
        "decline-offer", to=("jordan.lee@acme.example.com",), position="Data Analyst", company="Acme",
        deadline=datetime(2026, 12, 4, 17, 0, tzinfo=NEW_YORK),
    )
    (error,) = prepare(settings, request, SATURDAY).report.errors
    assert "after the offer's deadline" in error.message


def test_send_at_after_the_interview_is_refused_from_the_command_line(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--interview-on", "+1h", "--at", "+2h")
    assert result.returncode == 2
    assert "this would arrive after the interview" in result.stdout
    assert "nothing sent" in result.stderr
    assert account.records() == [] and account.server.messages == []


def test_lint_checks_step_2_too(make_account):
    account = make_account("starttls")
    result = account.run(
        "lint", "withdraw", "--position", "Data Analyst", "--company", "Acme", "--interview-on", "+2h"
    )
    assert result.returncode == 0, result.stderr
    assert "2. Prompt timing (checked: 2 h before the interview)" in result.stdout
    bad = account.run("lint", "withdraw", "--position", "Data Analyst", "--company", "Acme", "--interview-on", "x")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --interview-on: cannot understand the time")


# --- a reply in the recruiter's thread ------------------------------------------------------------------


def test_a_reply_joins_their_thread_in_the_bytes_the_server_received(make_account, password, tmp_path):
    account = make_account("starttls")
    account.store_password(password)
    saved = tmp_path / "recruiter.eml"
    saved.write_bytes(RECRUITER_EMAIL)
    args = [a for a in WITHDRAW_ARGS if a not in ("--to", "jordan.lee@acme.example.com")]
    result = account.run(*args, "--reply-to-message", str(saved))
    assert result.returncode == 0, result.stderr
    (received,) = account.server.messages
    assert received.rcpt_tos == ["talent@acme.example.com"]  # their Reply-To
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    assert msg["Subject"] == "Re: Your interview — next steps"  # no "Re: RE:"
    assert msg["In-Reply-To"] == "<CAB+x.y_z=123$!#@mail.acme.example.com>"
    assert msg["References"].split() == [
        "<first@acme.example.com>",
        "<second@acme.example.com>",
        "<CAB+x.y_z=123$!#@mail.acme.example.com>",
    ]


def test_to_overrides_their_address_and_from_is_used_without_reply_to():
    original = parse_original(RECRUITER_EMAIL.replace(b"Reply-To: Talent Team <talent@acme.example.com>\r\n", b""), "x")
    assert original.reply_address == "jordan.lee@acme.example.com"
    assert original.reply_subject == "Re: Your interview — next steps"


def test_pasted_source_with_leading_blank_lines_and_lf_endings_is_read():
    pasted = b"\n\n" + RECRUITER_EMAIL.replace(b"\r\n", b"\n")
    assert parse_original(pasted, "x").message_id == "<CAB+x.y_z=123$!#@mail.acme.example.com>"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Dear Alex, thanks for applying.\n", "is not an email"),
        (b"From: jordan@acme.example.com\nSubject: Hello\n\nHi\n", "has no Message-ID header"),
    ],
)
def test_a_file_that_cannot_be_answered_is_a_one_line_error(make_account, tmp_path, content, message):
    account = make_account("starttls")
    saved = tmp_path / "not-it.eml"
    saved.write_bytes(content)
    result = account.run("send", "withdraw", "--reply-to-message", str(saved), "--position", "X", "--company", "Y")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert account.records() == []


def test_a_file_too_large_or_missing_is_a_one_line_error(make_account, tmp_path):
    account = make_account("starttls")
    big = tmp_path / "big.eml"
    with open(big, "wb") as handle:
        handle.truncate(11 * 1024 * 1024)
    for path, message in ((big, "too large"), (tmp_path / "none.eml", "no such file")):
        result = account.run("send", "withdraw", "--reply-to-message", str(path), "--position", "X", "--company", "Y")
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_no_to_and_no_saved_email_says_what_to_give(make_account):
    account = make_account("starttls")
    result = account.run("send", "withdraw", "--position", "X", "--company", "Y")
    assert result.returncode == 2 and "--to is missing" in result.stderr


# --- a personal touch --------------------------------------------------------------------------------


def test_highlight_adds_one_sentence_of_specific_thanks(settings):
    request = withdraw(highlight="I especially enjoyed meeting the data platform team")
    prepared = prepare(settings, request, SATURDAY)
    assert "learn more about Acme. I especially enjoyed meeting the data platform team." in prepared.draft.body
    assert not [f for f in prepared.report.findings if f.rule == "generic-thanks"]
    plain = prepare(settings, withdraw(), SATURDAY)
    assert [f.severity for f in plain.report.findings if f.rule == "generic-thanks"] == ["info"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Great team. Loved the office.", "more than one sentence"),
        ("The salary was generous", "pay or benefits"),
        ("I liked it\nvery much", "line break"),
        ("   ", "is empty"),
    ],
)
def test_highlight_is_checked(text, message):
    with pytest.raises(InputError, match=message):
        check_highlight(text)


def test_a_signature_goes_under_the_name_and_its_placeholders_are_errors(tmp_path):
    signature = tmp_path / "signature.txt"
    signature.write_text("+1 555 0100\nlinkedin.com/in/alex-example\n", encoding="utf-8")
    settings = config.from_values(
        {"SMTP_HOST": "127.0.0.1", "FROM_ADDRESS": "alex@example.com", "FROM_NAME": "Alex Example",
         "SIGNATURE_FILE": "signature.txt"},
        base=tmp_path,
    )
    prepared = prepare(settings, withdraw(), SATURDAY)
    body = email.message_from_bytes(prepared.data, policy=email.policy.default).get_body().get_content()
    assert body.replace("\r\n", "\n").rstrip().endswith("Alex Example\n+1 555 0100\nlinkedin.com/in/alex-example")
    assert prepared.report.errors == ()
    signature.write_text("[your phone]\n", encoding="utf-8")
    (error,) = prepare(settings, withdraw(), SATURDAY).report.errors
    assert "the signature, line 1: leftover placeholder" in error.message


def test_a_missing_signature_file_is_named(tmp_path):
    with pytest.raises(config.ConfigError, match="SIGNATURE_FILE=sig.txt: no such file"):
        config.from_values({"SIGNATURE_FILE": "sig.txt"}, base=tmp_path)
