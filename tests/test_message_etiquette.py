"""The guide's checks (jobmail.message.etiquette) and the shipped templates that must pass them."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobmail.message.etiquette import SEVERITIES, STEP_TITLES, Finding, Report, check

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_PATHS = sorted(TEMPLATES_DIR.glob("*.txt.j2"))
REASONS = ("", "another-offer", "personal", "role-fit", "career-change")
SENDER = "Alex Morgan"


# --- the shipped templates ------------------------------------------------


def render(path: Path, **overrides: object) -> tuple[str, dict[str, str], str]:
    """Render a template as the app does: (whole text, header fields, body)."""
    variables = {
        "interviewer": "Ms. Rivera",
        "position": "Data Analyst",
        "company": "Northwind Traders",
        "reason": "",
        "offer_help": True,
        "sender_name": SENDER,
        "sender_email": "alex.morgan@example.com",
    } | overrides
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.from_string(path.read_text(encoding="utf-8")).render(**variables)
    header_block, _, body = text.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in header_block.splitlines())
    return text, headers, body


def case_id(value: object) -> str:
    return value.name.split(".")[0] if isinstance(value, Path) else repr(value)


def test_both_templates_are_shipped():
    assert {p.name for p in TEMPLATE_PATHS} >= {"withdraw.txt.j2", "decline-offer.txt.j2"}


@pytest.mark.parametrize(
    ("path", "reason", "interviewer", "offer_help"),
    list(itertools.product(TEMPLATE_PATHS, REASONS, ("Ms. Rivera", ""), (True, False))),
    ids=case_id,
)
def test_every_template_variant_follows_the_guide(path, reason, interviewer, offer_help):
    text, headers, body = render(path, reason=reason, interviewer=interviewer, offer_help=offer_help)

    report = check(headers["Subject"], body, SENDER, headers.get("Language", "en"))

    assert report.errors == ()
    assert report.warnings == ()
    expected_infos = [] if offer_help else [("info", "no-offer-help")]
    assert [(f.severity, f.rule) for f in report.findings] == expected_infos
    assert report.note is None
    assert len(body.split()) <= 150
    assert set(headers) <= {"Subject", "Cc", "Reply-To", "Language"}
    assert "Data Analyst" in headers["Subject"]
    assert "\n\n\n" not in text
    assert [line for line in text.splitlines() if line != line.rstrip()] == []
    assert text.endswith("\n") and not text.endswith("\n\n")
    lines = body.splitlines()
    assert lines[0] == ("Dear Ms. Rivera," if interviewer else "Dear Hiring Team,")
    assert lines[1] == ""
    assert lines[-2] in ("Best regards,", "Sincerely,")
    assert lines[-1] == SENDER


@pytest.mark.parametrize(("path", "reason"), list(itertools.product(TEMPLATE_PATHS, REASONS)), ids=case_id)
def test_names_that_look_like_rule_words_do_not_trip_the_checks(path, reason):
    position, company = "Benefits & Compensation Analyst", "Relocation Health Partners Inc."
    _, headers, body = render(path, reason=reason, position=position, company=company, interviewer="Dr. Poor")

    report = check(headers["Subject"], body, SENDER)

    assert report.findings == ()
    assert f"{position} position at {company}" in body


@pytest.mark.parametrize("path", TEMPLATE_PATHS, ids=lambda p: p.name)
def test_each_reason_adds_one_short_distinct_sentence_after_the_intent(path):
    plain = render(path, reason="")[2].splitlines()
    added = []
    for reason in REASONS[1:]:
        lines = render(path, reason=reason)[2].splitlines()
        assert lines[:2] + lines[3:] == plain[:2] + plain[3:]
        assert lines[2].startswith(plain[2] + " ")
        sentence = lines[2][len(plain[2]) + 1 :]
        assert re.fullmatch(r"[A-Z][^.!?]*\.", sentence), sentence
        assert len(sentence.split()) <= 20
        added.append(sentence)
    assert len(set(added)) == len(REASONS) - 1


@pytest.mark.parametrize("path", TEMPLATE_PATHS, ids=lambda p: p.name)
def test_an_unknown_reason_is_an_error_not_a_silent_gap(path):
    with pytest.raises(jinja2.UndefinedError):
        render(path, reason="better-pay")


@pytest.mark.parametrize("path", TEMPLATE_PATHS, ids=lambda p: p.name)
def test_a_blank_interviewer_greets_the_hiring_team(path):
    assert render(path, interviewer="   ")[2].splitlines()[0] == "Dear Hiring Team,"


# --- bad drafts: one or more per rule -------------------------------------

SUBJECT = "Withdrawing my application for the Data Analyst position"
GREETING = "Dear Ms. Rivera,"
INTENT = (
    "I hope this message finds you well. I am writing to let you know that I have decided "
    "to withdraw from the interview process for the Data Analyst role."
)
THANKS = "Thank you for your time and consideration; I appreciate the chance to meet your team."
OFFER = "If there is anything I can do to help with the hiring process, please don't hesitate to ask."
CLOSING = f"Best regards,\n{SENDER}"
FILLER = "I enjoyed our conversations about the data platform and the plans for the coming year."


def draft(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs) + "\n"


GOOD = draft(GREETING, INTENT, THANKS, OFFER, CLOSING)

ERROR_PLACEHOLDER = ("error", "placeholder")
BAD_DRAFTS = [
    # (id, subject, body, expected {(severity, rule)})
    ("good-draft", SUBJECT, GOOD, set()),
    ("guide-placeholder", SUBJECT, GOOD.replace(GREETING, "Dear [Interviewer's Name],"), {ERROR_PLACEHOLDER}),
    ("curly-apostrophe", SUBJECT, GOOD.replace(GREETING, "Dear [Interviewer’s Name],"), {ERROR_PLACEHOLDER}),
    ("subject-placeholder", "Withdrawal: [position name]", GOOD, {ERROR_PLACEHOLDER}),
    ("jinja-left-over", SUBJECT, GOOD.replace("Data Analyst role", "{{ position }} role"), {ERROR_PLACEHOLDER}),
    ("jinja-block", SUBJECT, GOOD.replace(OFFER, OFFER + " {% if x %}"), {ERROR_PLACEHOLDER}),
    ("angle-name", SUBJECT, GOOD.replace(GREETING, "Dear <name>,"), {ERROR_PLACEHOLDER}),
    ("todo", SUBJECT, GOOD.replace(THANKS, THANKS + " TODO"), {ERROR_PLACEHOLDER}),
    ("xxx", SUBJECT, GOOD.replace("Data Analyst role", "XXX role"), {ERROR_PLACEHOLDER}),
    ("tbd", SUBJECT, GOOD.replace("Data Analyst role", "TBD role"), {ERROR_PLACEHOLDER}),
    (
        "email-and-url-are-not-placeholders",
        SUBJECT,
        GOOD.replace(SENDER + "\n", f"{SENDER}\n<alex.morgan@example.com> <https://example.com/alex>\n"),
        set(),
    ),
    ("html-tag-is-not-a-placeholder", SUBJECT, GOOD.replace(THANKS, THANKS + "<br>"), set()),
    (
        "lowercase-pay-talk",
        SUBJECT,
        GOOD.replace(THANKS, THANKS + " The pay was low."),
        {("warning", "reason-details")},
    ),
    ("empty-subject", "   ", GOOD, {("error", "empty-subject")}),
    ("no-greeting", SUBJECT, draft(INTENT, THANKS, OFFER, CLOSING), {("error", "no-greeting")}),
    (
        "empty-body",
        SUBJECT,
        "",
        {
            ("error", "no-greeting"),
            ("warning", "intent-first"),
            ("warning", "no-thanks"),
            ("info", "no-offer-help"),
            ("error", "no-signoff"),
        },
    ),
    ("no-signoff", SUBJECT, draft(GREETING, INTENT, THANKS, OFFER, SENDER), {("error", "no-signoff")}),
    ("signoff-wrong-name", SUBJECT, GOOD.replace(SENDER, "Jordan Smith"), {("error", "signoff-name")}),
    (
        "signoff-without-name",
        SUBJECT,
        draft(GREETING, INTENT, THANKS, OFFER, "Best regards,"),
        {("error", "signoff-name")},
    ),
    ("name-then-phone-is-fine", SUBJECT, GOOD + "+1 555 0100\n", set()),
    ("first-name-only-is-fine", SUBJECT, GOOD.replace(SENDER, SENDER.split()[0]), set()),
    ("other-first-name", SUBJECT, GOOD.replace(SENDER, "Jordan"), {("error", "signoff-name")}),
    ("first-name-of-someone-else", SUBJECT, GOOD.replace(SENDER, "Alex Someone-Else"), {("error", "signoff-name")}),
    ("first-name-on-signoff-line", SUBJECT, draft(GREETING, INTENT, THANKS, OFFER, "Best regards, Alex"), set()),
    ("name-on-signoff-line", SUBJECT, draft(GREETING, INTENT, THANKS, OFFER, f"Best regards, {SENDER.upper()}"), set()),
    ("sincerely", SUBJECT, GOOD.replace("Best regards,", "Sincerely,"), set()),
    ("cheers", SUBJECT, GOOD.replace("Best regards,", "Cheers,"), {("warning", "signoff-unprofessional")}),
    ("thanks-bang", SUBJECT, GOOD.replace("Best regards,", "Thanks!"), {("warning", "signoff-unprofessional")}),
    ("xoxo", SUBJECT, GOOD.replace("Best regards,", "XOXO"), {("warning", "signoff-unprofessional")}),
    (
        "thanks-before-intent",
        SUBJECT,
        draft(GREETING, THANKS + " " + INTENT, OFFER, CLOSING),
        {("warning", "intent-first")},
    ),
    (
        "two-pleasantries",
        SUBJECT,
        draft(GREETING, "I hope you are well. I hope you had a good weekend. " + INTENT, THANKS, OFFER, CLOSING),
        {("warning", "intent-first")},
    ),
    (
        "intent-on-greeting-line",
        SUBJECT,
        draft("Hi Ms. Rivera, I will not be moving forward with my application.", THANKS, OFFER, CLOSING),
        set(),
    ),
    ("no-thanks", SUBJECT, draft(GREETING, INTENT, OFFER, CLOSING), {("warning", "no-thanks")}),
    (
        "thank-you-signoff-is-not-thanks",
        SUBJECT,
        draft(GREETING, INTENT, OFFER, f"Thank you,\n{SENDER}"),
        {("warning", "no-thanks")},
    ),
    (
        "too-long",
        SUBJECT,
        draft(GREETING, INTENT, THANKS, " ".join([FILLER] * 7), OFFER, CLOSING),
        {("warning", "too-long")},
    ),
    (
        "reason-long",
        SUBJECT,
        draft(
            GREETING,
            INTENT + " I have accepted another offer. The reason is that the commute is long.",
            THANKS,
            OFFER,
            CLOSING,
        ),
        {("warning", "reason-long")},
    ),
    (
        "reason-details-money",
        SUBJECT,
        draft(GREETING, INTENT + " The other offer pays a salary of $120k.", THANKS, OFFER, CLOSING),
        {("warning", "reason-details")},
    ),
    (
        "reason-details-criticism",
        SUBJECT,
        draft(GREETING, INTENT, "Frankly, the process was disorganized and a waste of time.", THANKS, OFFER, CLOSING),
        {("warning", "reason-details")},
    ),
    ("no-offer-help", SUBJECT, draft(GREETING, INTENT, THANKS, CLOSING), {("info", "no-offer-help")}),
    (
        "thanks-for-help-is-no-offer",
        SUBJECT,
        draft(GREETING, INTENT, "Thank you for your help.", CLOSING),
        {("info", "no-offer-help")},
    ),
]


@pytest.mark.parametrize(("subject", "body", "expected"), [c[1:] for c in BAD_DRAFTS], ids=[c[0] for c in BAD_DRAFTS])
def test_bad_drafts_give_exactly_the_expected_findings(subject, body, expected):
    report = check(subject, body, SENDER)
    assert {(f.severity, f.rule) for f in report.findings} == expected
    assert len(report.findings) == len(expected)


def test_placeholder_message_quotes_the_text_and_its_line():
    report = check(SUBJECT, GOOD.replace(GREETING, "Dear [Interviewer's Name],"), SENDER)
    assert report.findings == (
        Finding(
            step=3,
            severity="error",
            rule="placeholder",
            message='line 1: leftover placeholder "[Interviewer\'s Name]": replace it with the real text',
            line=1,
        ),
    )


def test_one_finding_per_placeholder_with_subject_first():
    body = GOOD.replace("Data Analyst role", "[position name] role at <Company>")
    report = check("About [Position]", body, SENDER)
    assert [(f.line, f.message.split('"')[1]) for f in report.findings] == [
        (None, "[Position]"),
        (3, "[position name]"),
        (3, "<Company>"),
    ]
    assert report.findings[0].message.startswith('subject: leftover placeholder "[Position]"')


def test_messages_point_at_the_offending_line_and_quote_it():
    body = draft(GREETING, INTENT, "Thank you. The salary was 85,000 and the recruiter was rude.", OFFER, CLOSING)
    (finding,) = check(SUBJECT, body, SENDER).findings
    assert (finding.rule, finding.line, finding.step) == ("reason-details", 5, 1)
    assert finding.message.startswith('line 5: "salary", "85,000", "rude": ')


def test_reason_long_points_at_the_second_reason():
    body = draft(GREETING, INTENT, "I have accepted another offer.\nThis is because of the commute.", THANKS, CLOSING)
    report = check(SUBJECT, body, SENDER)
    (finding,) = report.warnings
    assert (finding.rule, finding.line) == ("reason-long", 6)
    assert '"This is because of the commute."' in finding.message


def test_intent_first_quotes_the_first_sentence():
    body = draft(GREETING, THANKS + " " + INTENT, OFFER, CLOSING)
    (finding,) = check(SUBJECT, body, SENDER).findings
    assert (finding.rule, finding.line, finding.step) == ("intent-first", 3, 3)
    assert finding.message.startswith('line 3: the first sentence "Thank you for your time and consideration;')


def test_too_long_reports_the_word_count():
    body = draft(GREETING, INTENT, THANKS, " ".join([FILLER] * 7), OFFER, CLOSING)
    (finding,) = check(SUBJECT, body, SENDER).findings
    assert finding.message.startswith("the body has 172 words (at most 150")


def test_signoff_name_is_case_insensitive_and_ignores_the_lines_below():
    body = GOOD.replace(SENDER, "alex   MORGAN\nSenior Analyst\n+1 555 0100")
    assert check(SUBJECT, body, SENDER).findings == ()


def test_an_empty_sender_name_skips_the_name_check():
    assert check(SUBJECT, GOOD, "").findings == ()


# --- language, report and checklist ---------------------------------------


def test_other_languages_run_only_the_language_free_checks():
    body = "Bonjour [Prénom],\n\nJe retire ma candidature.\n\nCordialement,\nAlex Morgan\n"
    report = check("", body, SENDER, language="fr")
    assert {(f.severity, f.rule) for f in report.findings} == {("error", "empty-subject"), ERROR_PLACEHOLDER}
    assert report.language == "fr"
    assert report.note == (
        "no rules for language 'fr': only the language-free checks ran (leftover placeholders, empty subject)"
    )


@pytest.mark.parametrize("language", ["en", "EN", "en-GB", "en_US"])
def test_english_variants_get_the_english_rules(language):
    report = check(SUBJECT, draft(GREETING, INTENT, OFFER, CLOSING), SENDER, language)
    assert [f.rule for f in report.findings] == ["no-thanks"]
    assert report.note is None


def test_report_splits_findings_by_severity():
    body = draft(INTENT, CLOSING)  # no greeting, no thanks, no offer
    report = check(SUBJECT, body, SENDER)
    assert [f.rule for f in report.errors] == ["no-greeting"]
    assert [f.rule for f in report.warnings] == ["no-thanks"]
    assert [f.rule for f in report.infos] == ["no-offer-help"]


def test_checklist_has_one_row_per_step_and_fails_only_on_errors_and_warnings():
    body = draft(INTENT, CLOSING)
    rows = check(SUBJECT, body, SENDER).checklist()
    assert [(step, passed) for step, _, passed, _ in rows] == [
        (1, True),
        (2, True),
        (3, False),
        (4, False),
        (5, True),
        (6, True),
        (7, True),
    ]
    assert [title.split(" (")[0] for _, title, _, _ in rows] == list(STEP_TITLES.values())
    assert "send promptly" in rows[1][1]
    assert [f.rule for f in rows[5][3]] == ["no-offer-help"]


def test_step_titles_follow_the_guide():
    assert STEP_TITLES == {
        1: "Reasons kept brief",
        2: "Prompt timing",
        3: "Intent in the first sentence",
        4: "Gratitude",
        5: "Concise and respectful",
        6: "Offer to help",
        7: "Professional sign-off",
    }


def test_finding_rejects_an_unknown_severity_or_step():
    with pytest.raises(ValueError, match="severity"):
        Finding(3, "fatal", "placeholder", "x", None)
    with pytest.raises(ValueError, match="step"):
        Finding(8, "error", "placeholder", "x", None)


def test_the_module_imports_without_jinja2_or_email():
    import subprocess
    import sys

    code = "import sys, jobmail.message.etiquette; print(sorted(m for m in ('jinja2', 'email') if m in sys.modules))"
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@given(st.text(max_size=400), st.text(max_size=400), st.text(max_size=30), st.sampled_from(["en", "de", ""]))
def test_any_text_gives_a_well_formed_report(subject, body, sender_name, language):
    report = check(subject, body, sender_name, language)
    assert isinstance(report, Report)
    line_count = len(body.splitlines())
    for finding in report.findings:
        assert finding.severity in SEVERITIES
        assert finding.line is None or 1 <= finding.line <= line_count
        assert "\n" not in finding.message
    assert len(report.checklist()) == 7
