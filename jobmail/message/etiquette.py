"""Check a rendered withdrawal or decline email against the seven-step guide.

``check(subject, body, sender_name, language)`` returns a ``Report`` of
``Finding`` objects, each tied to one step of ../shared/withdrawal-guide.txt.
Errors stop a send, warnings ask for a second look, infos are suggestions.

All checks are heuristics on plain English text (regular expressions and a
whitespace sentence splitter), tuned to catch the usual mistakes in a short
email, not to understand it:

- The body is split into a greeting (first non-empty line), a sign-off (the
  bottom-most closing phrase among the last six non-empty lines) and the
  text between them; gratitude, intent, reasons and the offer to help are
  looked for in that text only, so a "Thank you," sign-off does not count as
  thanking the reader.
- Words are counted from the first body line down to the sign-off line; the
  signature below it (name, phone, links) is not counted.
- The sender's name must appear, case-insensitively, on the sign-off line itself
  or on the first non-empty line after it: in full, or the first name alone as the
  whole signature ("Best regards,\nAlex").
- Position and company names flow into the text, so the word rules (pay talk,
  criticism, reasons) skip a capitalized word that does not start a sentence:
  "the Benefits Analyst position at Acme Relocation" is taken as names. The
  same words in lower case, or opening a sentence, are flagged.

Only the placeholder and empty-subject checks are language-free; for any
language other than English (``en``, ``en-GB``, ...) only they run and the
report carries a ``note`` saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

SEVERITIES = ("error", "warning", "info")

STEP_TITLES: dict[int, str] = {
    1: "Reasons kept brief",
    2: "Prompt timing",
    3: "Intent in the first sentence",
    4: "Gratitude",
    5: "Concise and respectful",
    6: "Offer to help",
    7: "Professional sign-off",
}

MAX_WORDS = 150

_TIMING_HINT = "not checked: send promptly, e.g. --at next-business-morning"
_SIGNOFF_WINDOW = 6  # the sign-off is looked for among this many last lines
_QUOTE_LIMIT = 60

# --- placeholders ---------------------------------------------------------

_PLACEHOLDER_PATTERNS = (
    re.compile(r"\{\{.{0,200}?\}\}|\{%.{0,200}?%\}|\{#.{0,200}?#\}"),  # Jinja2 left unrendered
    re.compile(r"\{[A-Za-z_][\w ]{0,40}\}"),  # {name} format fields
    re.compile(r"\[[^\[\]\n]{2,60}\](?!\()"),  # [Interviewer's Name]
    re.compile(r"<[^\W\d_][\w'’ -]{0,40}>"),  # <name>; not <a@b.com>, <https://..>
    re.compile(r"\b(?:TODO|FIXME|TBD|TBA)\b"),
    re.compile(r"\bX{3,}\b", re.IGNORECASE),
    re.compile(r"_{3,}"),  # fill-in blank
)
_FILL_IN_TEXT = re.compile(r"[^\W\d_](?:[^\W\d_]|['’ ./-])*")  # letters, any script
_NOT_FILL_INS = frozenset({"sic", "sic!"})
_HTML_TAGS = frozenset({"b", "i", "u", "p", "br", "hr", "em", "div", "span", "html", "body", "strong"})

# --- layout: greeting, sign-off ------------------------------------------

_GREETING = re.compile(
    r"^\s*(?:dear|hello|hi|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|to\s+whom\s+it\s+may\s+concern)\b[^,:]*[,:]?(?P<rest>.*)$",
    re.IGNORECASE,
)
_PROFESSIONAL_SIGNOFFS = frozenset(
    {
        "all the best",
        "best",
        "best regards",
        "best wishes",
        "kind regards",
        "kindest regards",
        "many thanks",
        "regards",
        "respectfully",
        "respectfully yours",
        "sincerely",
        "sincerely yours",
        "thank you",
        "thank you again",
        "warm regards",
        "warmest regards",
        "with appreciation",
        "with best regards",
        "with gratitude",
        "with kind regards",
        "with thanks",
        "yours faithfully",
        "yours sincerely",
        "yours truly",
    }
)
_INFORMAL_SIGNOFFS = frozenset(
    {
        "bye",
        "cheers",
        "ciao",
        "hugs",
        "later",
        "laters",
        "love",
        "lots of love",
        "peace",
        "see ya",
        "see you",
        "speak soon",
        "take care",
        "talk soon",
        "thanks",
        "thanks a lot",
        "thanks again",
        "thanks so much",
        "thx",
        "ttyl",
        "xo",
        "xoxo",
    }
)


def _phrase_pattern(phrases: frozenset[str]) -> str:
    longest_first = sorted(phrases, key=len, reverse=True)
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in longest_first)


_SIGNOFF = re.compile(
    r"^\s*(?P<phrase>"
    + _phrase_pattern(_PROFESSIONAL_SIGNOFFS | _INFORMAL_SIGNOFFS)
    + r")(?![\w'’])[\s,.!:;-]*(?P<rest>.*?)\s*$",
    re.IGNORECASE,
)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_HAS_WORD_CHAR = re.compile(r"\w")

# --- sentences ------------------------------------------------------------

_ENDS_SENTENCE = re.compile(r"[.!?][\"'”’)\]]*$")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "mx.", "dr.", "prof.", "st.", "jr.", "sr.", "e.g.", "i.e."})

# --- content rules --------------------------------------------------------

_INTENT = re.compile(
    r"\bwithdraw|\bdeclin|\bturn(?:ing)?\s+down\b|\brescind|\bdecided\s+against\b"
    r"|\bpull(?:ing)?\s+(?:out|my\s+application)\b|\bend(?:ing)?\s+my\s+candidacy\b"
    r"|\bstep(?:ping)?\s+(?:back|away|aside)\b"
    r"|(?:\bnot|n't|\bcannot|\bunable\s+to)\b.{0,40}?\b(?:accept|pursu|proceed|continu"
    r"|join|mov(?:e|ing)\s+forward|go(?:ing)?\s+forward)"
    r"|\bno\s+longer\b.{0,40}?\b(?:interested|pursu|available|consider|seeking"
    r"|a\s+candidate)"
    r"|\bremov(?:e|ing)\b.{0,40}?\b(?:application|candidacy|name|consideration)",
    re.IGNORECASE,
)
_PLEASANTRY = re.compile(r"^(?:I\s+)?(?:hope|trust)\b", re.IGNORECASE)
_PLEASANTRY_MAX_WORDS = 15
_GRATITUDE = re.compile(r"\b(?:thank|grateful|gratitude|appreciat)", re.IGNORECASE)
_HELP = re.compile(
    r"\b(?:help|assist|facilitat|recommend|refer|be\s+of\s+(?:any\s+)?(?:use|service))",
    re.IGNORECASE,
)
_OFFER_CUE = re.compile(
    r"\b(?:if|anything|happy\s+to|glad\s+to|would\s+be|let\s+me\s+know|hesitate"
    r"|feel\s+free|I\s+can|I\s+could|I'd|I\s+would)\b",
    re.IGNORECASE,
)
# "since" and "as I" start a reason, except where they tell time or recall ("Since our call on Monday",
# "As I mentioned"): those are not reasons, and used to count as one.
_REASON = re.compile(
    r"\bbecause\b|\bdue\s+to\b"
    r"|\bsince\b(?!\s+(?:our|my|we|the|last|then|yesterday|monday|tuesday|wednesday|thursday|friday|saturday"
    r"|sunday|january|february|march|april|may|june|july|august|september|october|november|december|\d))"
    r"|\bas\s+I\b(?!\s+(?:mentioned|said|noted|explained|discussed|told|wrote|indicated|promised))"
    r"|\b(?:the|my|main)\s+reasons?\b"
    r"|\bdecided\s+to\s+accept\b"
    r"|\baccepted\s+(?:a|an|another|the)\s+(?:\w+\s+)?(?:offer|position|role|job)\b"
    r"|\bmy\s+current\b|\bpersonal\s+(?:reasons|circumstances|matters)\b"
    r"|\b(?:family|health)\s+(?:reasons|matters|circumstances|issues)\b"
    r"|\b(?:right|good|best|better)\s+fit\b|\bdifferent\s+direction\b|\brelocat",
    re.IGNORECASE,
)
# money: $120k, € 90,000, 85,000, 120k, 90000 dollars
_MONEY = re.compile(
    r"[$€£¥]\s?\d[\d,.]*(?:\s?[km]\b)?|\b\d[\d,.]*\s?k\b|\b\d{1,3}(?:,\d{3})+\b"
    r"|\b\d[\d,.]*\s?(?:dollars|euros|pounds|usd|eur|gbp)\b",
    re.IGNORECASE,
)
_PAY_TALK = re.compile(
    r"\b(?:salary|salaries|pay|paid|compensation|benefits|bonus|wages?|underpaid"
    r"|lowball(?:ed)?|counter-?offer|stock\s+options)\b",
    re.IGNORECASE,
)
# criticism of the company, the people or the process
_CRITICISM = re.compile(
    r"\b(?:rude|rudely|disorgani[sz]ed|unorgani[sz]ed|unprofessional|disappointed"
    r"|waste\s+of\s+(?:my\s+)?time|wasted\s+my\s+time|terrible|poor(?:ly)?|awful"
    r"|horrible|worst|frustrat(?:ed|ing|ion)|unacceptable|chaotic|incompetent"
    r"|toxic|insulting|ridiculous|ghosted|never\s+heard\s+back|lack\s+of|sloppy"
    r"|dismissive|arrogant|condescending|hostile|underwhelm(?:ed|ing))\b",
    re.IGNORECASE,
)
_SENTENCE_OPENERS = frozenset('.!?:;"“(')


# --- public records -------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One departure from the guide, tied to the guide step it belongs to."""

    step: int
    severity: str
    rule: str
    message: str
    line: int | None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if self.step not in STEP_TITLES:
            raise ValueError(f"step must be 1..7, not {self.step!r}")


@dataclass(frozen=True)
class Report:
    """All findings for one message, in guide-step order."""

    findings: tuple[Finding, ...]
    language: str
    note: str | None
    timing: str | None = None  # what the step 2 check found ("checked: ..."); None: it could not run

    @property
    def errors(self) -> tuple[Finding, ...]:
        return self._with_severity("error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return self._with_severity("warning")

    @property
    def infos(self) -> tuple[Finding, ...]:
        return self._with_severity("info")

    def _with_severity(self, severity: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == severity)

    def checklist(self) -> list[tuple[int, str, bool, tuple[Finding, ...]]]:
        """One row per guide step: (step, title, passed, findings of that step).

        A step passes when it has no error and no warning; infos do not fail it.
        """
        rows = []
        for step, title in STEP_TITLES.items():
            findings = tuple(f for f in self.findings if f.step == step)
            passed = all(f.severity == "info" for f in findings)
            if step == 2:
                title = f"{title} ({self.timing or _TIMING_HINT})"
            rows.append((step, title, passed, findings))
        return rows


# --- internal records -----------------------------------------------------


@dataclass(frozen=True)
class _Sentence:
    text: str
    line: int  # 1-based body line the sentence starts on


@dataclass(frozen=True)
class _Layout:
    lines: tuple[str, ...]
    greeting: int | None  # 0-based index of the greeting line
    greeting_rest: str  # text after the greeting on the same line
    signoff: int | None  # 0-based index of the sign-off line
    signoff_phrase: str
    name_on_signoff_line: bool


# --- entry point ----------------------------------------------------------


def check(subject: str, body: str, sender_name: str, language: str = "en") -> Report:
    """Check one rendered message against the guide; never raises on odd text."""
    language = language.strip()
    findings = _check_placeholders(subject, body) + _check_subject(subject)
    note = None
    if _is_english(language):
        findings += _check_english(body, sender_name)
    else:
        note = (
            f"no rules for language {language!r}: only the language-free checks ran "
            "(leftover placeholders, empty subject)"
        )
    ordered = sorted(findings, key=lambda f: (f.step, f.line or 0, f.rule))
    return Report(findings=tuple(ordered), language=language, note=note)


SOON = timedelta(hours=24)


def check_timing(
    report: Report, send_at: datetime, *, interview_on: datetime | None = None, deadline: datetime | None = None
) -> Report:
    """Guide step 2 on the facts the user gave: the send time (now, or the --at time) against the interview
    it cancels or the offer's deadline. After it: an error; within a day of it: a warning."""
    findings: list[Finding] = []
    summaries = []
    for event, what in ((interview_on, "the interview"), (deadline, "the offer's deadline")):
        if event is None:
            continue
        zone = event.tzinfo
        when = f"{event:%a %d %b %H:%M}"
        sent = f"{send_at.astimezone(zone):%a %d %b %H:%M}"
        left = event - send_at
        if left <= timedelta(0):
            fix = (
                "send it now and call them as well, or give an earlier --at"
                if what == "the interview"
                else "answer them now, by phone as well, and ask whether the offer still stands"
            )
            findings.append(
                Finding(2, "error", "after-event", f"this would arrive after {what} ({when}; sent {sent}): {fix}", None)
            )
            summaries.append(f"checked: it would arrive after {what}")
        elif left < SOON:
            hours = max(1, int(left.total_seconds() // 3600))
            findings.append(
                Finding(
                    2,
                    "warning",
                    "close-to-event",
                    f"{what} is only {hours} hour{'s' if hours != 1 else ''} after this arrives ({when}): send it "
                    "now rather than later, and call them as well",
                    None,
                )
            )
            summaries.append(f"checked: {hours} h before {what}")
        else:
            days = left.days
            ahead = f"{days} day{'s' if days != 1 else ''}" if days else f"{int(left.total_seconds() // 3600)} hours"
            summaries.append(f"checked: arrives {ahead} before {what}, {when}")
    ordered = sorted((*report.findings, *findings), key=lambda f: (f.step, f.line or 0, f.rule))
    return replace(report, findings=tuple(ordered), timing="; ".join(summaries) or report.timing)


def _is_english(language: str) -> bool:
    return re.split(r"[-_]", language.lower(), maxsplit=1)[0] == "en"


def _check_english(body: str, sender_name: str) -> list[Finding]:
    layout = _layout(body, sender_name)
    sentences = _sentences(_text_lines(layout))
    return (
        _check_greeting(layout)
        + _check_intent(sentences)
        + _check_gratitude(sentences)
        + _check_length(layout)
        + _check_shouting(layout)
        + _check_reason_count(sentences)
        + _check_details(layout)
        + _check_offer_help(sentences)
        + _check_signoff(layout, sender_name)
    )


# --- helpers --------------------------------------------------------------


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3].rstrip() + "..."
    return f'"{text}"'


def _where(line: int | None) -> str:
    return "subject" if line is None else f"line {line}"


def _contains_name(text: str, name: str) -> bool:
    wanted = " ".join(name.split()).casefold()
    return bool(wanted) and wanted in " ".join(text.split()).casefold()


def _signs_with(text: str, name: str) -> bool:
    """The sender's full name anywhere in `text`, or `text` is the first name alone ("Alex", "Alex.")."""
    words = name.split()
    return _contains_name(text, name) or bool(words) and text.strip(" \t.,;:!-").casefold() == words[0].casefold()


def _count_words(lines: tuple[str, ...]) -> int:
    return sum(1 for line in lines for token in line.split() if _HAS_WORD_CHAR.search(token))


# --- language-free checks -------------------------------------------------


def suggest_highlight(report: Report) -> Report:
    """The shipped templates thank in general terms: suggest one specific sentence (an info, not a fault)."""
    tip = Finding(
        4,
        "info",
        "generic-thanks",
        "the thanks are general: one sentence about something specific makes them sincere, e.g. "
        "--highlight 'I especially enjoyed meeting the data platform team.'",
        None,
    )
    return replace(report, findings=tuple(sorted((*report.findings, tip), key=lambda f: (f.step, f.line or 0, f.rule))))


def check_signature(report: Report, signature: str) -> Report:
    """The signature (SIGNATURE_FILE) is not part of the letter's words, but a leftover placeholder there
    ("[phone]") is an error all the same."""
    found = [
        Finding(
            3,
            "error",
            "placeholder",
            f"the signature, line {line}: leftover placeholder {_quote(text)}: "
            "replace it with the real text in SIGNATURE_FILE",
            None,
        )
        for line, content in enumerate(signature.splitlines(), start=1)
        for text in _placeholders_in(content)
    ]
    return replace(report, findings=(*report.findings, *found)) if found else report


def _check_placeholders(subject: str, body: str) -> list[Finding]:
    located = [(None, subject)] + list(enumerate(body.splitlines(), start=1))
    return [
        Finding(
            3,
            "error",
            "placeholder",
            f"{_where(line)}: leftover placeholder {_quote(text)}: replace it with the real text",
            line,
        )
        for line, content in located
        for text in _placeholders_in(content)
    ]


def _placeholders_in(text: str) -> list[str]:
    """Placeholders in one line, left to right, none counted twice."""
    spans: list[tuple[int, int]] = []
    for pattern in _PLACEHOLDER_PATTERNS:
        for match in pattern.finditer(text):
            overlaps = any(match.start() < end and start < match.end() for start, end in spans)
            if not overlaps and _is_fill_in(match.group()):
                spans.append(match.span())
    return [text[start:end] for start, end in sorted(spans)]


def _is_fill_in(candidate: str) -> bool:
    inner = candidate[1:-1].strip()
    if candidate.startswith("["):
        return bool(_FILL_IN_TEXT.fullmatch(inner)) and inner.lower() not in _NOT_FILL_INS
    if candidate.startswith("<"):
        return inner.lower() not in _HTML_TAGS
    return True


def _check_subject(subject: str) -> list[Finding]:
    if subject.strip():
        return []
    message = (
        'the subject is empty: add one that names the position, e.g. "Withdrawing my '
        'application for the Data Analyst position"'
    )
    return [Finding(3, "error", "empty-subject", message, None)]


# --- layout ---------------------------------------------------------------


def _layout(body: str, sender_name: str) -> _Layout:
    lines = tuple(body.splitlines())
    greeting, rest = _find_greeting(lines)
    signoff, phrase, name_inline = _find_signoff(lines, sender_name, after=greeting)
    return _Layout(lines, greeting, rest, signoff, phrase, name_inline)


def _first_nonempty(lines: tuple[str, ...], start: int = 0) -> int | None:
    return next((i for i in range(start, len(lines)) if lines[i].strip()), None)


def _find_greeting(lines: tuple[str, ...]) -> tuple[int | None, str]:
    first = _first_nonempty(lines)
    if first is None:
        return None, ""
    match = _GREETING.match(lines[first])
    return (first, match.group("rest")) if match else (None, "")


def _find_signoff(lines: tuple[str, ...], sender_name: str, after: int | None) -> tuple[int | None, str, bool]:
    """The bottom-most closing line among the last few non-empty lines."""
    floor = -1 if after is None else after
    candidates = [i for i in range(len(lines)) if lines[i].strip() and i > floor]
    for index in reversed(candidates[-_SIGNOFF_WINDOW:]):
        match = _SIGNOFF.match(lines[index])
        if not match:
            continue
        rest = match.group("rest")
        name_inline = _signs_with(rest, sender_name)
        if name_inline or not _HAS_LETTER.search(rest):
            return index, " ".join(match.group("phrase").split()), name_inline
    return None, "", False


def _text_lines(layout: _Layout) -> list[tuple[int, str]]:
    """(1-based line, text) of the message between greeting and sign-off."""
    numbered: list[tuple[int, str]] = []
    start = 0
    if layout.greeting is not None:
        numbered.append((layout.greeting + 1, layout.greeting_rest))
        start = layout.greeting + 1
    stop = len(layout.lines) if layout.signoff is None else layout.signoff
    numbered += [(i + 1, layout.lines[i]) for i in range(start, stop)]
    return numbered


def _sentences(numbered_lines: list[tuple[int, str]]) -> list[_Sentence]:
    """Split text into sentences at . ! ? and at blank lines, keeping line numbers."""
    sentences: list[_Sentence] = []
    words: list[str] = []
    start = 0
    for number, text in numbered_lines:
        tokens = text.split()
        if not tokens and words:
            sentences.append(_Sentence(" ".join(words), start))
            words = []
        for token in tokens:
            if not words:
                start = number
            words.append(token)
            if _ENDS_SENTENCE.search(token) and token.lower() not in _ABBREVIATIONS:
                sentences.append(_Sentence(" ".join(words), start))
                words = []
    if words:
        sentences.append(_Sentence(" ".join(words), start))
    return sentences


# --- English checks, in guide-step order ----------------------------------


def _check_reason_count(sentences: list[_Sentence]) -> list[Finding]:
    reasons = [s for s in sentences if _word_matches(_REASON, s.text)]
    if len(reasons) < 2:
        return []
    second = reasons[1]
    message = (
        f"line {second.line}: the reason runs to more than one sentence "
        f"({_quote(second.text)}): keep it to one short neutral sentence, or leave it out"
    )
    return [Finding(1, "warning", "reason-long", message, second.line)]


def _check_details(layout: _Layout) -> list[Finding]:
    stop = len(layout.lines) if layout.signoff is None else layout.signoff
    findings = []
    for index in range(stop):
        found = _details_in(layout.lines[index])
        if found:
            quoted = ", ".join(_quote(word) for word in found)
            message = (
                f"line {index + 1}: {quoted}: leave out pay details and criticism of the "
                "company, the people or the process; one neutral sentence is enough"
            )
            findings.append(Finding(1, "warning", "reason-details", message, index + 1))
    return findings


def _details_in(line: str) -> list[str]:
    matches = [*_MONEY.finditer(line), *_word_matches(_PAY_TALK, line), *_word_matches(_CRITICISM, line)]
    matches.sort(key=lambda m: m.start())
    return [m.group().strip().rstrip(".,") for m in matches]


def _word_matches(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """Matches of a word rule, minus those inside a name ("Benefits Analyst", "Acme Relocation")."""
    return [m for m in pattern.finditer(text) if not _inside_name(text, m.start())]


def _inside_name(text: str, start: int) -> bool:
    """A capitalized word that does not start a sentence is taken as part of a name."""
    if not text[start].isupper():
        return False
    before = text[:start].split()
    return bool(before) and (before[-1][-1] not in _SENTENCE_OPENERS or before[-1].lower() in _ABBREVIATIONS)


# casual: "Hey Jordan,", "Hiya", a bare "Hi," with no name, "Hi guys," / "Hello there," ("Hi Ms. Rivera," passes)
_INFORMAL_GREETING = re.compile(
    r"^\s*(?:(?:hey|hiya|howdy|yo)\b|(?:hi|hello)\s*[,!.:]?\s*$|(?:hi|hello)\s+(?:there|guys|folks|y'all|all)\b)",
    re.IGNORECASE,
)


def _check_greeting(layout: _Layout) -> list[Finding]:
    if layout.greeting is not None:
        line = layout.lines[layout.greeting]
        if not _INFORMAL_GREETING.match(line):
            return []
        message = (
            f"line {layout.greeting + 1}: {_quote(line.strip())} is a casual opening for this email: open "
            'politely, with "Dear Ms. Lee," or "Dear Hiring Team,"'
        )
        return [Finding(3, "warning", "informal-greeting", message, layout.greeting + 1)]
    first = _first_nonempty(layout.lines)
    if first is None:
        message = 'the body is empty: start with a greeting such as "Dear Ms. Lee,"'
        return [Finding(3, "error", "no-greeting", message, None)]
    message = (
        f"line {first + 1}: the email opens with {_quote(layout.lines[first])}, not a "
        'greeting: start with "Dear Ms. Lee," or "Dear Hiring Team,"'
    )
    return [Finding(3, "error", "no-greeting", message, first + 1)]


_HEDGES = re.compile(
    r"\b(?:maybe|perhaps|probably|possibly|I\s+guess|I\s+suppose|not\s+(?:entirely\s+)?sure|kind\s+of|sort\s+of"
    r"|(?:thinking|considering|contemplating)\s+(?:about\s+)?(?:withdraw\w*|declin\w*|whether|if|to)"
    r"|leaning\s+towards?|might\s+(?:have\s+to|need\s+to|want\s+to|be\s+(?:best|better))"
    r"|may\s+(?:have\s+to|need\s+to|want\s+to)|I\s+think\s+I\s+(?:might|may|should|will|would)"
    r"|for\s+now|at\s+least\s+for\s+the\s+moment|unless)\b",
    re.IGNORECASE,
)


def _hedged(sentence: _Sentence) -> list[Finding]:
    found = _HEDGES.search(sentence.text)
    if not found:
        return []
    message = (
        f"line {sentence.line}: {_quote(sentence.text)} hedges the decision ({_quote(found.group(0))}): say it "
        'plainly, e.g. "I have decided to withdraw my application."'
    )
    return [Finding(3, "warning", "hedged-intent", message, sentence.line)]


def _check_intent(sentences: list[_Sentence]) -> list[Finding]:
    example = '"I am writing to let you know that I have decided to withdraw my application."'
    if not sentences:
        message = f"nothing follows the greeting: state your decision first, e.g. {example}"
        return [Finding(3, "warning", "intent-first", message, None)]
    first = sentences[0]
    if _INTENT.search(first.text):
        return _hedged(first)
    if len(sentences) > 1 and _is_pleasantry(first.text):
        first = sentences[1]
        if _INTENT.search(first.text):
            return _hedged(first)
    message = (
        f"line {first.line}: the first sentence {_quote(first.text)} does not say you "
        f"are withdrawing or declining: state your decision first, e.g. {example}"
    )
    return [Finding(3, "warning", "intent-first", message, first.line)]


def _is_pleasantry(text: str) -> bool:
    return bool(_PLEASANTRY.match(text)) and len(text.split()) <= _PLEASANTRY_MAX_WORDS


def _check_gratitude(sentences: list[_Sentence]) -> list[Finding]:
    if any(_GRATITUDE.search(s.text) for s in sentences):
        return []
    message = 'no thanks in the message: thank them for their time, e.g. "Thank you for your time and consideration."'
    return [Finding(4, "warning", "no-thanks", message, None)]


_CAPS_RUN = re.compile(r"\b[A-Z]{2,}(?:[\s,]+[A-Z]{2,})+\b")
_CAPS_WORD = re.compile(r"\b[A-Z]{4,}\b")
_BANGS = re.compile(r"[!?]{2,}")


def _check_shouting(layout: _Layout) -> list[Finding]:
    """Capitals and runs of exclamation marks read as shouting (guide step 5: respectful)."""
    stop = len(layout.lines) if layout.signoff is None else layout.signoff  # the name may be in capitals
    for number, line in enumerate(layout.lines[:stop], start=1):
        run = _CAPS_RUN.search(line)
        words = _CAPS_WORD.findall(line)
        bangs = _BANGS.search(line)
        if run and len(run.group(0)) >= 6:
            what = _quote(run.group(0))
        elif len(words) >= 2:
            what = _quote(" ".join(words))
        elif bangs:
            what = _quote(bangs.group(0))
        else:
            continue
        message = f"line {number}: {what} reads as shouting: write it in ordinary case, with one full stop"
        return [Finding(5, "warning", "shouting", message, number)]
    return []


def _check_length(layout: _Layout) -> list[Finding]:
    stop = len(layout.lines) if layout.signoff is None else layout.signoff + 1
    words = _count_words(layout.lines[:stop])
    if words <= MAX_WORDS:
        return []
    message = (
        f"the body has {words} words (at most {MAX_WORDS}, counted down to the sign-off): "
        "keep to the decision, your thanks and at most one short reason"
    )
    return [Finding(5, "warning", "too-long", message, None)]


def _check_offer_help(sentences: list[_Sentence]) -> list[Finding]:
    if any(_HELP.search(s.text) and _OFFER_CUE.search(s.text) for s in sentences):
        return []
    message = (
        'optional: offer to help with the hiring process, e.g. "If there is anything I '
        "can do to help, please don't hesitate to ask.\""
    )
    return [Finding(6, "info", "no-offer-help", message, None)]


def _check_signoff(layout: _Layout, sender_name: str) -> list[Finding]:
    if layout.signoff is None:
        message = 'no sign-off near the end: close with "Best regards," and your name below it'
        return [Finding(7, "error", "no-signoff", message, None)]
    line = layout.signoff + 1
    findings = []
    if layout.signoff_phrase.lower() in _INFORMAL_SIGNOFFS:
        message = (
            f'line {line}: the sign-off "{layout.signoff_phrase}" is too casual: use "Best regards," or "Sincerely,"'
        )
        findings.append(Finding(7, "warning", "signoff-unprofessional", message, line))
    if sender_name.strip() and not _name_follows(layout, layout.signoff, sender_name):
        message = (
            f'line {line}: the sign-off "{layout.signoff_phrase}" is not followed by your '
            f"name {_quote(sender_name)}: put it on the next line"
        )
        findings.append(Finding(7, "error", "signoff-name", message, line))
    return findings


def _name_follows(layout: _Layout, signoff: int, sender_name: str) -> bool:
    if layout.name_on_signoff_line:
        return True
    after = _first_nonempty(layout.lines, signoff + 1)
    return after is not None and _signs_with(layout.lines[after], sender_name)
