"""The sent log's API (jobmail.store.sentlog) on disk: whole records, a torn last line survived, concurrent
writers, private files, queries, and reading backwards (lazily, with filters) that agrees with reading it
all forwards."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from conftest import PROJECT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobmail.errors import InputError
from jobmail.store import sentlog
from jobmail.store.sentlog import STATUSES, Query, SentLog, encode_record

POSIX_ONLY = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX permission bits")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Warnings(list):
    def __call__(self, text: str) -> None:
        self.append(text)


@pytest.fixture
def log(tmp_path) -> SentLog:
    return SentLog(tmp_path / "log", on_warning=Warnings())


def message(message_id: str, to: str = "jordan.lee@acme.example.com", subject: str = "Withdrawing") -> dict:
    return {"id": message_id, "from": "alex@example.com", "to": [to], "cc": [], "subject": subject}


def lines_of(log: SentLog) -> list[bytes]:
    return log.path.read_bytes().split(b"\n")


# -- writing -------------------------------------------------------------------------------------


def test_append_writes_one_compact_line_with_id_time_status_first(log):
    written = log.append({"status": "sent", **message("aaaa00000001"), "reply": {"code": 250, "text": "ok"}}, T0)
    assert list(written)[:3] == ["id", "time", "status"]
    assert written["time"] == "2026-03-02T12:00:00.000+00:00"
    raw = log.path.read_bytes()
    assert raw.endswith(b"}\n") and raw.count(b"\n") == 1
    assert raw.startswith(b'{"id":"aaaa00000001","time":"2026-03-02T12:00:00.000+00:00","status":"sent",')
    assert b": " not in raw and b", " not in raw  # compact
    assert json.loads(raw) == written


def test_append_keeps_non_ascii_readable_and_round_trips(log):
    written = log.append({"status": "sent", **message("aaaa00000001", subject="Zoë — offre déclinée")})
    assert "Zoë — offre déclinée".encode() in log.path.read_bytes()
    assert list(log.records()) == [written]


@pytest.mark.parametrize("bad", [{"id": "x1", "status": "delivered"}, {"status": "sent"}, {"id": "", "status": "sent"}])
def test_append_refuses_a_record_without_a_known_status_or_an_id(log, bad):
    with pytest.raises(ValueError):
        log.append(bad)
    assert not log.path.exists()


def test_a_record_lacking_the_message_fields_gets_them_from_the_previous_one(log):
    log.append({"status": "scheduled", **message("aaaa00000001", to="hr@globex.example", subject="Declining")}, T0)
    cancelled = log.append({"id": "aaaa00000001", "status": "cancelled"}, T0 + timedelta(minutes=1))
    assert cancelled["to"] == ["hr@globex.example"] and cancelled["subject"] == "Declining"
    assert [r["status"] for r in log.latest(Query(to="globex"))] == ["cancelled"]


def test_locked_is_reentrant_also_across_two_log_objects_of_one_folder(log):
    other = SentLog(log.directory)
    with log.locked(), log.locked(), other.locked():
        log.append({"status": "sent", **message("aaaa00000001")})
        other.append({"status": "sent", **message("aaaa00000002")})
    assert [r["id"] for r in log.records()] == ["aaaa00000001", "aaaa00000002"]


def test_store_message_keeps_the_exact_bytes(log):
    data = b"Subject: =?utf-8?q?Zo=C3=AB?=\r\n\r\nbody\r\n"
    path = log.store_message("aaaa00000001", data)
    assert path == log.message_path("aaaa00000001")
    assert log.read_message("aaaa00000001") == data
    assert log.read_message("bbbb00000001") is None
    assert not list(log.messages_dir.glob("*.tmp"))


@POSIX_ONLY
def test_folders_are_0700_and_files_0600(log):
    log.append({"status": "sent", **message("aaaa00000001")})
    log.store_message("aaaa00000001", b"x")
    for folder in (log.directory, log.messages_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in (log.path, Path(str(log.path) + ".lock"), log.message_path("aaaa00000001")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@POSIX_ONLY
def test_a_log_file_readable_by_others_is_made_private_on_the_next_append(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / "sent.jsonl").write_bytes(b"")
    os.chmod(folder / "sent.jsonl", 0o644)
    SentLog(folder).append({"status": "sent", **message("aaaa00000001")})
    assert stat.S_IMODE((folder / "sent.jsonl").stat().st_mode) == 0o600


# -- a torn last line ----------------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_with_one_warning_and_the_next_append_is_whole(log):
    for n in range(3):
        log.append({"status": "sent", **message(f"aaaa0000000{n}")}, T0 + timedelta(minutes=n))
    whole = log.path.read_bytes()
    with open(log.path, "r+b") as handle:  # a crash in the middle of writing the third record
        handle.truncate(len(whole) - 40)
    assert [r["id"] for r in log.records()] == ["aaaa00000000", "aaaa00000001"]
    assert [r["id"] for r in log.records_newest_first()] == ["aaaa00000001", "aaaa00000000"]
    assert [r["id"] for r in log.latest()] == ["aaaa00000001", "aaaa00000000"]
    assert len(log.on_warning) == 1 and "torn last line" in log.on_warning[0]

    written = log.append({"status": "sent", **message("aaaa00000009")}, T0 + timedelta(hours=1))
    lines = lines_of(log)
    assert lines[-1] == b"" and json.loads(lines[-2]) == written  # intact, on a line of its own
    parsed = []
    for line in lines[:-1]:
        try:
            parsed.append(json.loads(line)["id"])
        except ValueError:
            parsed.append("torn")
    assert parsed == ["aaaa00000000", "aaaa00000001", "torn", "aaaa00000009"]
    assert [r["id"] for r in log.records()] == ["aaaa00000000", "aaaa00000001", "aaaa00000009"]
    assert [r["id"] for r in log.latest()] == ["aaaa00000009", "aaaa00000001", "aaaa00000000"]
    assert len(log.on_warning) == 1  # the same bad line is reported once
    fresh = SentLog(log.directory, on_warning=Warnings())
    assert [r["id"] for r in fresh.latest()] == ["aaaa00000009", "aaaa00000001", "aaaa00000000"]
    assert len(fresh.on_warning) == 1 and "unreadable line" in fresh.on_warning[0]  # no longer the last line


def test_a_torn_newest_record_of_a_message_leaves_its_previous_state_current(log):
    log.append({"status": "sending", **message("aaaa00000001")}, T0)
    log.append({"status": "sent", **message("aaaa00000001")}, T0 + timedelta(seconds=1))
    whole = log.path.read_bytes()
    log.path.write_bytes(whole[:-2])  # only the closing brace and the newline are missing
    assert [r["status"] for r in log.latest()] == ["sending"]
    assert log.current("aaaa00000001")["status"] == "sending"
    assert len(log.on_warning) == 1


def test_without_a_callback_the_warning_goes_to_the_module_logger(tmp_path, caplog):
    log = SentLog(tmp_path)
    log.append({"status": "sent", **message("aaaa00000001")})
    with open(log.path, "ab") as handle:
        handle.write(b'{"id":"aaaa00000002","ti')
    with caplog.at_level("WARNING", logger="jobmail.store.sentlog"):
        assert [r["id"] for r in log.records_newest_first()] == ["aaaa00000001"]
    assert any("torn last line" in r.getMessage() for r in caplog.records)


# -- concurrent writers --------------------------------------------------------------------------

WRITER = """
import sys
from jobmail.store.sentlog import SentLog
folder, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = SentLog(folder)
for seq in range(count):
    log.append({"id": f"w{worker}-{seq:04d}", "status": "sent", "to": ["x@example.com"], "subject": "s" * (seq % 97),
                "worker": worker, "seq": seq})
"""


def test_eight_processes_appending_200_records_each_leave_1600_whole_records(tmp_path):
    folder = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(worker), "200"], env=env, cwd=tmp_path)
        for worker in range(8)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    raw = (folder / "sent.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.split(b"\n")[:-1]]  # every line parses
    assert len(records) == 1600
    for worker in range(8):
        assert [r["seq"] for r in records if r["worker"] == worker] == list(range(200))  # in order, none lost
    assert len({r["id"] for r in records}) == 1600


# -- reading -------------------------------------------------------------------------------------


def test_latest_gives_each_messages_current_record_newest_first(log):
    log.append({"status": "sending", **message("aaaa00000001")}, T0)
    log.append({"status": "scheduled", **message("aaaa00000002")}, T0 + timedelta(seconds=1))
    log.append({"status": "sent", **message("aaaa00000001")}, T0 + timedelta(seconds=2))
    assert [(r["id"], r["status"]) for r in log.latest()] == [("aaaa00000001", "sent"), ("aaaa00000002", "scheduled")]
    assert list(log.latest_states()) == list(log.latest())
    assert log.current("aaaa00000001")["status"] == "sent"
    assert log.current("ffff00000000") is None
    assert [r["status"] for r in log.history("aaaa00000001")] == ["sending", "sent"]


def test_filters_judge_the_current_state_and_the_to_addresses(log):
    log.append({"status": "sending", **message("aaaa00000001", to="Recruiter@Initech.example")}, T0)
    log.append({"status": "failed", **message("aaaa00000001", to="Recruiter@Initech.example")}, T0)
    log.append({"status": "sent", **message("aaaa00000002", to="jordan@acme.example")}, T0 + timedelta(days=3))
    ids = lambda query: [r["id"] for r in log.latest(query)]  # noqa: E731
    assert ids(Query(statuses={"sending"})) == []  # an old state does not count
    assert ids(Query(statuses={"failed", "sent"})) == ["aaaa00000002", "aaaa00000001"]
    assert ids(Query(to="INITECH")) == ["aaaa00000001"]
    assert ids(Query(to="alex@example.com")) == []  # the sender's address is in every line, but not in To
    assert ids(Query(since=T0 + timedelta(days=1))) == ["aaaa00000002"]
    assert ids(Query(until=T0)) == ["aaaa00000001"]
    assert ids(Query(where=lambda r: r["status"] == "sent")) == ["aaaa00000002"]
    assert ids(Query(to="acme", statuses={"failed"})) == []


def test_a_non_ascii_to_filter_matches_whatever_the_case(log):
    log.append({"status": "sent", **message("aaaa00000001", to="ÉLODIE@exämple.example")})
    log.append({"status": "sent", **message("aaaa00000002", to="weiß@straße.example")})
    assert [r["id"] for r in log.latest(Query(to="élodie@EXÄMPLE"))] == ["aaaa00000001"]
    assert [r["id"] for r in log.latest(Query(to="STRASSE"))] == []  # letters as typed, any case: not ß=ss
    assert [r["id"] for r in log.latest(Query(to="Straße"))] == ["aaaa00000002"]


def test_lines_written_by_hand_in_another_layout_are_still_read(log):
    log.append({"status": "sending", **message("aaaa00000001")}, T0)
    with open(log.path, "a", encoding="utf-8") as handle:  # spaces, keys in another order, escaped non-ASCII
        handle.write(json.dumps({"status": "sent", "to": ["józef@acme.example"], "id": "aaaa00000001"}) + "\n")
    assert [r["status"] for r in log.latest(Query(to="józef"))] == ["sent"]
    assert [r["status"] for r in log.latest(Query(statuses={"sent"}))] == ["sent"]


def test_the_newest_twenty_are_read_without_parsing_the_start_of_the_file(log):
    log.path.parent.mkdir(parents=True)
    junk = b"not json at all\n" * 2000  # any line the reader parsed here would raise a warning
    lines = [encode_record({"status": "sent", **message(f"{n:012x}")}, T0)[1] for n in range(5000)]
    log.path.write_bytes(junk + b"".join(lines))
    newest = list(islice(log.latest(), 20))
    assert [r["id"] for r in newest] == [f"{n:012x}" for n in range(4999, 4979, -1)]
    assert log.on_warning == []
    assert len(list(log.records())) == 5000 and log.on_warning  # reading it all does reach the junk


def test_a_line_longer_than_a_block_is_read_whole(log):
    long_subject = "x" * (3 * (1 << 16))
    log.append({"status": "sent", **message("aaaa00000001", subject=long_subject)}, T0)
    log.append({"status": "sent", **message("aaaa00000002")}, T0)
    assert [len(r["subject"]) for r in log.records_newest_first()] == [len("Withdrawing"), len(long_subject)]
    assert [r["id"] for r in log.latest(Query(to="jordan"))] == ["aaaa00000002", "aaaa00000001"]


def test_resolve_a_unique_prefix_a_full_id_and_errors(log):
    for message_id in ("abc123000001", "abc123000002", "def456000001"):
        log.append({"status": "sent", **message(message_id)}, T0)
    assert log.resolve("def") == "def456000001"
    assert log.resolve(" ABC123000002 ") == "abc123000002"
    with pytest.raises(InputError) as ambiguous:
        log.resolve("abc1")
    assert "ambiguous" in str(ambiguous.value)
    assert "abc123000001" in str(ambiguous.value) and "abc123000002" in str(ambiguous.value)
    with pytest.raises(InputError, match="no message with an id starting"):
        log.resolve("0ff")
    with pytest.raises(InputError, match="give a message id"):
        log.resolve("  ")


def test_reading_a_log_that_does_not_exist_yet(tmp_path):
    log = SentLog(tmp_path / "nothing")
    assert list(log.records()) == [] and list(log.latest()) == [] and log.history("x") == []
    with pytest.raises(InputError):
        log.resolve("abc")
    assert not (tmp_path / "nothing").exists()  # reading creates nothing


# -- Query ---------------------------------------------------------------------------------------


def test_a_query_is_an_immutable_record_its_statuses_a_frozenset():
    query = Query(statuses={"sent", "failed"}, to="acme")
    assert query.statuses == frozenset({"sent", "failed"}) and isinstance(query.statuses, frozenset)
    assert Query(statuses=("failed", "sent"), to="acme") == query
    assert hash(Query(statuses=["sent", "failed"], to="acme")) == hash(query)
    assert len({query, Query(statuses=frozenset({"failed", "sent"}), to="acme"), Query()}) == 2
    with pytest.raises(AttributeError):
        query.to = "globex"  # type: ignore[misc]
    assert repr(Query(to="x")) == "Query(statuses=frozenset(), to='x', since=None, until=None, where=None)"


def test_a_query_is_true_when_it_filters_anything():
    assert not Query() and not Query(statuses=(), to="")
    assert Query(statuses={"sent"}) and Query(to="acme") and Query(since=T0) and Query(until=T0)
    assert Query(where=lambda record: True)


# -- reading backwards agrees with reading forwards, at any block size ---------------------------

addresses = st.sampled_from(["jordan@acme.example", "HR@Globex.example", "ops@umbrella.example", "zoë@exämple.example"])


@st.composite
def logs(draw):
    """A log of records for a few messages (each keeping its own To), some lines in another layout."""
    ids = [f"{n:012x}" for n in range(draw(st.integers(1, 6)))]
    to = {message_id: draw(addresses) for message_id in ids}
    lines = []
    for n in range(draw(st.integers(1, 40))):
        message_id = draw(st.sampled_from(ids))
        record = {
            "status": draw(st.sampled_from(STATUSES)),
            **message(message_id, to=to[message_id], subject=draw(st.text(max_size=30))),
        }
        full, line = encode_record(record, T0 + timedelta(minutes=n))
        if draw(st.integers(0, 9)) == 0:
            line = (json.dumps(dict(reversed(list(full.items())))) + "\n").encode()  # another writer's layout
        lines.append(line)
    return b"".join(lines)


def brute_latest(records: list[dict]) -> list[dict]:
    last = {}
    for position, record in enumerate(records):
        last[record["id"]] = (position, record)
    return [record for _, record in sorted(last.values(), key=lambda item: -item[0])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=logs(),
    first=st.integers(1, 200),
    block=st.integers(1, 300),
    needle=st.sampled_from(["acme", "GLOBEX", "ë@"]),
)
def test_backward_reading_matches_forward_reading(data, first, block, needle):
    saved = sentlog._FIRST_BLOCK, sentlog._BLOCK
    sentlog._FIRST_BLOCK, sentlog._BLOCK = first, block
    try:
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "sent.jsonl").write_bytes(data)
            log = SentLog(Path(folder), on_warning=Warnings())
            forward = list(log.records())
            assert len(forward) == data.count(b"\n")
            assert list(log.records_newest_first()) == forward[::-1]
            latest = brute_latest(forward)
            assert list(log.latest()) == latest
            wanted = [r for r in latest if needle.lower() in r["to"][0].lower()]
            assert list(log.latest(Query(to=needle))) == wanted
            assert list(log.latest(Query(statuses={"sent", "failed"}))) == [
                r for r in latest if r["status"] in ("sent", "failed")
            ]
            for record in latest:
                assert log.current(record["id"]) == record
                assert log.history(record["id"]) == [r for r in forward if r["id"] == record["id"]]
            assert log.on_warning == []
    finally:
        sentlog._FIRST_BLOCK, sentlog._BLOCK = saved


@pytest.mark.parametrize("newline", [True, False], ids=["terminated", "last-unterminated"])
def test_a_line_over_1_mib_is_skipped_by_both_readers_with_one_warning(tmp_path, newline):
    warnings: list[str] = []
    log = SentLog(tmp_path / "log", on_warning=warnings.append)
    log.append({**message("aaa111111111"), "status": "sent"})
    with open(log.file, "ab") as f:
        f.write(b'{"id":"bbb222222222","status":"sent","subject":"' + b"x" * (3 << 20) + b'"}' + b"\n" * newline)
    if newline:
        log.append({**message("ccc333333333"), "status": "sent"})
    expected = ["aaa111111111", "ccc333333333"] if newline else ["aaa111111111"]
    assert [r["id"] for r in log.records()] == expected
    assert [r["id"] for r in log.records_newest_first()] == expected[::-1]
    assert [r["id"] for r in log.latest(Query(to="acme"))] == expected[::-1]
    assert len(warnings) == 1 and "skipped a line of 3,145,7" in warnings[0]
