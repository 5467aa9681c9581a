"""Render a template (Jinja2, StrictUndefined) and build the email.message.EmailMessage to send.

A template is `NAME.txt.j2` in the templates folder: a header block (`Subject:`, optional `Cc:`,
`Reply-To:`, `Language:`), one blank line, then the plain-text body. When `NAME.html.j2` sits beside
it, its rendering (autoescaped) becomes the HTML alternative of a multipart/alternative message.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid, parsedate_to_datetime
from pathlib import Path

import jinja2

from jobmail.addresses import check_header_value, normalize_address
from jobmail.errors import InputError, TemplateError
from jobmail.message.model import FLAG_VARIABLES, Draft, Envelope

TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
HEADER_KEYS = {"subject": "Subject", "cc": "Cc", "reply-to": "Reply-To", "language": "Language"}
_UNDEFINED = re.compile(r"'([^']+)' is undefined")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # the whole name (fullmatch: `$` would allow a final newline)


def list_templates(templates_dir: Path) -> list[str]:
    if not templates_dir.is_dir():
        return []
    names = (p.name[: -len(TEXT_SUFFIX)] for p in templates_dir.glob("*" + TEXT_SUFFIX))
    return sorted(name for name in names if _NAME.fullmatch(name))  # a file whose name is not one is not listed


def render(templates_dir: Path, name: str, variables: dict[str, object], fill_missing: bool = False) -> Draft:
    """Render NAME.txt.j2 (and NAME.html.j2 when present) into a Draft, or raise TemplateError. With
    `fill_missing`, a variable not given is shown as [name] (and listed in Draft.filled) instead."""
    text_path = _template_path(templates_dir, name)
    filled: dict[str, int | None] = {}
    text = _render_file(templates_dir, text_path.name, name, variables, filled if fill_missing else None)
    headers, body = _split_headers(text, text_path)
    html_path = templates_dir / (name + HTML_SUFFIX)
    html = (
        _render_file(templates_dir, html_path.name, name, variables, filled if fill_missing else None)
        if html_path.is_file()
        else None
    )
    if not body.strip():
        raise InputError(f"template '{name}' renders an empty body: write the message below the header block")
    if "subject" not in headers:
        raise TemplateError(f"{text_path}: no Subject: line in the header block: add one at the top")
    subject = headers["subject"]
    check_header_value(subject, "Subject")
    cc = tuple(normalize_address(a, "Cc") for a in _split_list(headers.get("cc", "")))
    reply_to = headers.get("reply-to", "").strip()
    if reply_to:
        reply_to = normalize_address(reply_to, "Reply-To")
    language = headers.get("language", "en").strip().lower() or "en"
    return Draft(name, subject, body, html, cc, reply_to, language, tuple(filled))


def _template_path(templates_dir: Path, name: str) -> Path:
    if not Path(templates_dir).is_dir():
        raise TemplateError(
            f"the templates folder {templates_dir} does not exist: set TEMPLATES_DIR (in .env) to the folder "
            f"that holds your NAME{TEXT_SUFFIX} files, or unset it to use the project's templates/"
        )
    known = ", ".join(list_templates(templates_dir)) or "none"
    if not _NAME.fullmatch(name):
        raise TemplateError(
            f"template name {name!r} is not a name: a template's name is letters, digits, '_', '.' and '-'; "
            f"choose one of {known}"
        )
    path = templates_dir / (name + TEXT_SUFFIX)
    if not path.is_file():
        raise TemplateError(
            f"unknown template '{name}': choose one of {known} (files NAME{TEXT_SUFFIX} in {templates_dir})"
        )
    return path


def _environment(templates_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir), encoding="utf-8"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
    )


MAX_MISSING = 40  # variables collected in one message before giving up


def _render_file(
    templates_dir: Path, filename: str, name: str, variables: dict[str, object], filled: dict | None = None
) -> str:
    """Render one template file. Every variable it needs and was not given is named in one error, with
    the template file's own line where each is first used; or, given `filled`, shown as [name] and
    recorded there."""
    path = templates_dir / filename
    missing: dict[str, int | None] = {}
    trial = dict(variables)
    while True:
        try:
            text = _environment(templates_dir).get_template(filename).render(trial)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{path}, line {exc.lineno}: template syntax error: {exc.message}") from None
        except jinja2.UndefinedError as exc:
            found = _UNDEFINED.search(str(exc.message))
            if not found or found.group(1) in missing or len(missing) >= MAX_MISSING:
                if missing:
                    break
                raise TemplateError(f"{path}, line {_template_line(exc, path)}: {exc.message}") from None
            missing[found.group(1)] = _template_line(exc, path)
            trial[found.group(1)] = _Stand_in(f"[{found.group(1)}]" if filled is not None else found.group(1))
            continue
        except UnicodeDecodeError:
            raise TemplateError(f"{path} is not UTF-8 text: save it as UTF-8") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{path}: {exc}") from None
        if not missing:
            return text
        if filled is not None:
            filled.update(missing)
            return text
        break
    named = ", ".join(f"'{var}' (line {line})" if line else f"'{var}'" for var, line in missing.items())
    how = " ".join(f'--{var} "..."' if var in FLAG_VARIABLES else f'--var {var}="..."' for var in missing)
    noun = "the variable" if len(missing) == 1 else "the variables"
    raise TemplateError(f"template '{name}' ({path}) needs {noun} {named}: add {how} to the command")


class _Stand_in(str):  # noqa: N801
    """A missing variable's stand-in while the others are looked for: text, and an empty mapping/list."""

    def __getattr__(self, attr: str) -> _Stand_in:
        return _Stand_in(attr)

    def __getitem__(self, key: object) -> _Stand_in:
        return _Stand_in(str(key))


def _template_line(exc: BaseException, path: Path) -> int | None:
    """The line of the template file where a rendering error happened (Jinja2 maps it into the traceback)."""
    wanted = str(path)
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == wanted:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def template_variables_used(templates_dir: Path, name: str) -> set[str]:
    """Every variable NAME's text and HTML templates refer to (for a --var the template never uses)."""
    from jinja2 import meta

    env = _environment(templates_dir)
    names: set[str] = set()
    for suffix in (TEXT_SUFFIX, HTML_SUFFIX):
        file = templates_dir / (name + suffix)
        if file.is_file():
            try:
                names |= meta.find_undeclared_variables(env.parse(file.read_text(encoding="utf-8")))
            except (jinja2.TemplateError, OSError, UnicodeDecodeError):
                continue
    return names


def _split_headers(text: str, path: Path) -> tuple[dict[str, str], str]:
    lines = text.replace("\r\n", "\n").split("\n")
    headers: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            return headers, "\n".join(lines[number:]).strip("\n") + "\n"
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in HEADER_KEYS:
            raise TemplateError(
                f"{path}, line {number}: {line.strip()[:40]!r} is not a header "
                f"({', '.join(HEADER_KEYS.values())}): the header block ends at the first blank line"
            )
        headers[key] = value.strip()
    raise TemplateError(f"{path}: no blank line after the header block: put one between the headers and the body")


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


REDATE_TOLERANCE = 60.0  # seconds: a queued message sent this close to its Date keeps it


def redate(data: bytes, when: datetime) -> bytes | None:
    """The message with its Date header set to `when` (shown in the local zone, as build_message does),
    or None when its Date is already within REDATE_TOLERANCE of `when`.

    A scheduled message is dated at its due time when it is queued; one sent early (`outbox send-now`),
    late (held as overdue, or retried after a failure) would otherwise carry a date in the future or
    the past, which readers and spam filters see. Only the Date line changes; Message-ID stays.
    """
    head, separator, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for index, line in enumerate(lines):
        if line[:5].lower() != b"date:":
            continue
        unfolded = b" ".join([line[5:], *_continuation(lines, index + 1)])
        try:
            stamp = parsedate_to_datetime(unfolded.decode("ascii").strip())
        except (UnicodeDecodeError, TypeError, ValueError):
            stamp = None
        if stamp is not None and stamp.tzinfo is not None and abs((stamp - when).total_seconds()) <= REDATE_TOLERANCE:
            return None
        end = index + 1 + len(_continuation(lines, index + 1))  # a folded Date goes whole
        lines[index:end] = [b"Date: " + format_datetime(when.astimezone()).encode("ascii")]
        return b"\r\n".join(lines) + separator + body
    return None


def _continuation(lines: list[bytes], start: int) -> list[bytes]:
    """The folded continuation lines (starting with a space or tab) of the header line before `start`."""
    end = start
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return lines[start:end]


def build_message(draft: Draft, envelope: Envelope, now: datetime, max_bytes: int) -> EmailMessage:
    """Build the EmailMessage: every header a careful server and spam filter expect."""
    check_header_value(envelope.from_name, "FROM_NAME")
    check_header_value(envelope.in_reply_to, "--in-reply-to")
    domain = envelope.from_address.rpartition("@")[2]
    # 7bit: a non-ASCII body goes out quoted-printable, safe on any path (no 8BITMIME needed)
    msg = EmailMessage(policy=SMTP.clone(cte_type="7bit"))
    msg.set_raw("From", _mailbox(envelope.from_name, envelope.from_address))
    msg.set_raw("To", _recipients(envelope, envelope.to))
    if envelope.cc:
        msg.set_raw("Cc", _recipients(envelope, envelope.cc))
    if envelope.reply_to:
        msg["Reply-To"] = envelope.reply_to
    if draft.subject.isascii():
        msg["Subject"] = draft.subject
    else:  # encoded words made and folded by email.header: the decoded text comes back exactly
        msg.set_raw("Subject", _encoded(draft.subject, "Subject"))
    msg["Date"] = format_datetime(now.astimezone())
    msg["Message-ID"] = make_msgid(domain=domain)
    if envelope.in_reply_to:
        ref = envelope.in_reply_to.strip()
        ref = ref if ref.startswith("<") else f"<{ref}>"
        msg["In-Reply-To"] = ref
        msg["References"] = " ".join(envelope.references) if envelope.references else ref
    msg.set_content(draft.body, charset="utf-8")
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8")
    size = len(message_bytes(msg))
    if size > max_bytes:
        raise InputError(
            f"the message is {size:,} bytes, over the limit of {max_bytes:,} bytes (MAX_MESSAGE_KB): "
            "shorten it, or raise MAX_MESSAGE_KB in .env"
        )
    return msg


def _recipients(envelope: Envelope, addresses: tuple[str, ...]) -> str:
    """`Jordan Lee <jordan@acme.example>, hr@acme.example`: each with the name it was typed with."""
    return ",\r\n ".join(_mailbox(envelope.display(a), a) if envelope.display(a) else a for a in addresses)


def _encoded(text: str, header_name: str) -> str:
    return Header(text, "utf-8", header_name=header_name).encode(linesep="\r\n")


def _mailbox(name: str, address: str) -> str:
    """`Name <address>`, folded by us: the name quoted or RFC 2047-encoded as needed, the address never
    encoded, and no line over 78 characters (a longer one would be refolded by the email package,
    which can drop the quotes around a name with a colon in it)."""
    if not name:
        return address
    if name.isascii():
        display = formataddr((name, address))[: -(len(address) + 3)]
    else:
        display = _encoded(name, "From")
    last = display.rsplit("\r\n", 1)[-1]
    used = len(last) + (len("From: ") if "\r\n" not in display else 0)
    joiner = " " if used + len(address) + 3 <= 78 else "\r\n "
    return f"{display}{joiner}<{address}>"


def message_bytes(msg: EmailMessage) -> bytes:
    """The exact bytes that go over the wire (CRLF line ends)."""
    return msg.as_bytes()


MAX_SIGNATURE_LINES = 8
MAX_SIGNATURE_CHARS = 600


def read_signature(path: str) -> str:
    """SIGNATURE_FILE's text: a few short lines, added under the sender's name (not counted in the words)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_SIGNATURE_CHARS * 4 + 1)
    except UnicodeDecodeError:
        raise InputError(f"SIGNATURE_FILE {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"SIGNATURE_FILE {path}: cannot read it ({exc.strerror or exc})") from None
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").strip("\n").split("\n")]
    if len(lines) > MAX_SIGNATURE_LINES or len(text) > MAX_SIGNATURE_CHARS:
        raise InputError(
            f"SIGNATURE_FILE {path} is too long: keep it to {MAX_SIGNATURE_LINES} short lines (a phone number, "
            "a profile link), not a letter"
        )
    for number, line in enumerate(lines, start=1):
        if any((ord(ch) < 32 and ch != "\t") or 127 <= ord(ch) < 160 for ch in line):
            raise InputError(f"SIGNATURE_FILE {path}, line {number}: a control character: remove it")
    return "\n".join(lines)


def with_signature(draft: Draft, signature: str) -> Draft:
    """The draft with the signature under the sign-off (and in the HTML alternative, escaped)."""
    if not signature:
        return draft
    body = draft.body.rstrip("\n") + "\n" + signature + "\n"
    html = draft.html
    if html is not None:
        from html import escape

        block = "<p>" + "<br>\n".join(escape(line) for line in signature.split("\n")) + "</p>\n"
        html = html.replace("</body>", block + "</body>", 1) if "</body>" in html else html + block
    return replace(draft, body=body, html=html)


_TEMPLATE_CODE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")


def template_line(templates_dir: Path, name: str, body: str, body_line: int) -> int | None:
    """The line of NAME.txt.j2 that a line of the rendered body came from (its fixed text matched), so that
    a finding points where the user edits; None when no line of the template matches well."""
    import difflib

    lines = body.splitlines()
    if not 1 <= body_line <= len(lines) or not lines[body_line - 1].strip():
        return None
    target = lines[body_line - 1].strip()
    try:
        source = (templates_dir / (name + TEXT_SUFFIX)).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    best, found = 0.0, None
    for number, text in enumerate(source, start=1):
        fixed = " ".join(_TEMPLATE_CODE.sub(" ", text).split())
        if not fixed:
            continue
        ratio = difflib.SequenceMatcher(None, fixed, target, autojunk=False).ratio()
        if ratio > best:
            best, found = ratio, number
    return found if best >= 0.5 else None
