"""The sent log's line layout and the byte-level reader: the named offsets against a real encoded record,
`_head` on good and adversarial lines, and the prefilters that let a reader skip parsing."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobmail.status import Status
from jobmail.store.records import (
    ID_START,
    MESSAGE_FIELDS,
    STAMP_LEN,
    STATUS_START,
    TIME_START,
    TO_START,
    _head,
    _id_needle,
    _literal,
    _matching_lines,
    _recipients_may_hold,
    _stamp_bytes,
    _unterminated_tail,
    _within,
    encode_record,
    new_id,
    timestamp,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STAMP = b"2026-03-02T12:00:00.000+00:00"


def line_of(message_id: str = "3f2a1b9c0d4e", status: str = "sent", to: str = "jordan@acme.example") -> bytes:
    record = {"id": message_id, "status": status, "from": "alex@example.com", "to": [to], "cc": [], "subject": "Hi"}
    return encode_record(record, T0)[1].rstrip(b"\n")


# -- the layout and its offsets --------------------------------------------------------------------


def test_the_named_offsets_find_each_value_in_a_real_encoded_record():
    line = line_of("3f2a1b9c0d4e", "scheduled")
    assert line[:ID_START] == b'{"id":"'
    id_end = ID_START + len("3f2a1b9c0d4e")
    assert line[ID_START:id_end] == b"3f2a1b9c0d4e"
    assert line[id_end : id_end + TIME_START] == b'","time":"'
    time_end = id_end + TIME_START + STAMP_LEN
    assert line[id_end + TIME_START : time_end] == STAMP
    assert line[time_end : time_end + STATUS_START] == b'","status":"'
    assert line[time_end + STATUS_START :].startswith(b'scheduled",')
    at = line.find(b'"to":[')
    assert line[at + TO_START :].startswith(b'"jordan@acme.example"],"')


def test_the_offsets_are_the_lengths_of_the_keys_they_skip():
    assert (ID_START, TIME_START, STATUS_START, TO_START) == (7, 10, 12, 6)
    assert STAMP_LEN == len(timestamp(T0)) == len(timestamp(datetime(1999, 12, 31, 23, 59, 59, 999999, UTC)))


def test_a_record_starts_with_id_time_status_and_is_compact_utf8():
    full, line = encode_record({"status": "sent", "subject": "Zoë", "id": "aaaa00000001", "to": ["a@b.example"]}, T0)
    assert list(full)[:3] == ["id", "time", "status"]
    expected = '{"id":"aaaa00000001","time":"2026-03-02T12:00:00.000+00:00","status":"sent","subject":"Zoë",'
    assert line == (expected + '"to":["a@b.example"]}\n').encode()
    assert json.loads(line) == full


def test_every_status_is_valid_and_nothing_else():
    for status in Status:
        assert encode_record({"id": "x1", "status": status}, T0)[0]["status"] == status
        assert encode_record({"id": "x1", "status": str(status)}, T0)[0]["status"] == str(status)
    for bad in ({"id": "x1", "status": "delivered"}, {"id": "x1"}, {"status": "sent"}, {"id": 7, "status": "sent"}):
        with pytest.raises(ValueError):
            encode_record(bad)


def test_message_fields_and_ids():
    assert MESSAGE_FIELDS == ("from", "to", "cc", "subject", "template", "company", "position", "body_sha256")
    ids = {new_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)


def test_timestamp_is_utc_with_milliseconds():
    assert timestamp(datetime(2026, 3, 2, 13, 0, 0, 123456, timezone(timedelta(hours=1)))) == (
        "2026-03-02T12:00:00.123+00:00"
    )


# -- _head -----------------------------------------------------------------------------------------


def test_head_reads_id_time_and_status_from_a_line_in_the_layout():
    assert _head(line_of("3f2a1b9c0d4e", "unknown")) == (b"3f2a1b9c0d4e", STAMP, b"unknown")
    assert _head(line_of("ünï-cödé", "sent")) == ("ünï-cödé".encode(), STAMP, b"sent")


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"{",
        b'{"id":"',
        b'{"id":"abc',  # torn inside the id
        b'{"id":"","time":"2026-03-02T12:00:00.000+00:00","status":"sent"}',  # an empty id
        b'{"id":"a\\"","time":"2026-03-02T12:00:00.000+00:00","status":"sent"}',  # the id's quote is escaped
        b'{"id": "abc", "time": "2026-03-02T12:00:00.000+00:00", "status": "sent"}',  # json.dumps' default layout
        b'{"status":"sent","id":"abc","time":"2026-03-02T12:00:00.000+00:00"}',  # keys in another order
        b'{"id":"abc","status":"sent","time":"2026-03-02T12:00:00.000+00:00"}',
        b'{"id":"abc","time":"2026-03-02T12:0',  # torn inside the time
        b'{"id":"abc","time":"2026-03-02T12:00:00.000+00:00"}',  # no status
        b'{"id":"abc","time":"2026-03-02T12:00:00.000+00:00","status":"se',  # torn inside the status
        b'{"id":"abc","time":2026,"status":"sent"}',
        b"not json at all",
        b'["id","abc"]',
    ],
)
def test_head_gives_none_for_any_line_it_cannot_read_for_sure(line):
    assert _head(line) is None


def test_head_reads_the_first_bytes_only_the_rest_may_be_anything():
    assert _head(b'{"id":"abc","time":"t","status":"sent", torn and not json') == (b"abc", b"t", b"sent")


# -- the prefilters ----------------------------------------------------------------------------------


def test_within_compares_append_times_as_bytes_and_parses_any_other():
    since, until = _stamp_bytes(T0), _stamp_bytes(T0 + timedelta(days=1))
    assert _within(STAMP, since, until) and _within(_stamp_bytes(T0 + timedelta(days=1)), since, until)  # inclusive
    assert not _within(b"2026-03-02T11:59:59.999+00:00", since, until)
    assert not _within(b"2026-03-03T12:00:00.001+00:00", since, until)
    assert _within(b"2026-03-02T13:00:00+01:00", since, since)  # another writer's offset: the same instant
    assert _within(b"2026-03-02T12:00:00", since, since)  # naive: taken as local time, then compared
    assert not _within(b"yesterday", since, until) and not _within(b"\xff", None, None)
    assert _within(STAMP, None, None) and _within(STAMP, None, until) and _within(STAMP, since, None)
    assert _stamp_bytes(None) is None


def test_naive_times_are_local_time():
    local = datetime(2026, 3, 2, 12, 0).astimezone()
    assert _within(b"2026-03-02T12:00:00", _stamp_bytes(local), _stamp_bytes(local))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme", b"acme"),
        ("ACME.example", b"acme.example"),
        ("Élodie@exämple.example", b"mple.example"),  # the longest ASCII stretch, lowercased
        ('a"quote', b"quote"),  # JSON escapes a quote: it is not in the line as typed
        ("back\\slash", b"slash"),
        ("tab\there", b"here"),
        ("zoë", b"zo"),
        ("ëü", None),
        ("", None),
    ],
)
def test_literal_is_the_longest_stretch_found_byte_for_byte_in_a_lowercased_line(text, expected):
    assert _literal(text) == expected


def test_literal_is_in_the_lowercased_line_of_a_record_holding_the_text():
    line = line_of(to="Élodie@Exämple.example").lower()
    needle = _literal("élodie@EXÄMPLE.EXAMPLE")
    assert needle is not None and needle in line


def test_id_needle_is_the_id_as_a_json_string_or_none():
    assert _id_needle("3f2a1b9c0d4e") == b'"3f2a1b9c0d4e"'
    assert _id_needle("3f2a1b9c0d4e") in line_of("3f2a1b9c0d4e")
    assert _id_needle('a"b') is None and _id_needle("a\\b") is None and _id_needle("a\nb") is None


def test_recipients_may_hold_is_false_only_when_the_to_and_cc_lists_surely_lack_the_text():
    line = line_of(to="jordan@acme.example").lower()
    assert _recipients_may_hold(line, b"acme")
    assert not _recipients_may_hold(line, b"alex@example.com")  # the sender is in the line, but not in To or Cc
    assert _recipients_may_hold(b'{"id":"x","status":"sent"}', b"acme")  # no To list: parse it to know
    assert _recipients_may_hold(b'{"id":"x","to":["a@acme', b"acme")  # a torn list: the rest of the line counts
    cc = b'{"id":"x","to":["a@acme.example"],"cc":["hr@initech.example"],"subject":"Hi"}'
    assert _recipients_may_hold(cc, b"initech") and not _recipients_may_hold(cc, b"umbrella")


def test_matching_lines_are_the_lines_holding_the_needle_last_first():
    block = b"one acme\ntwo\nthree ACME\nfour acme"
    assert list(_matching_lines(block, 0, b"acme", fold=False)) == [b"four acme", b"one acme"]
    assert list(_matching_lines(block, 0, b"acme", fold=True)) == [b"four acme", b"three ACME", b"one acme"]
    assert list(_matching_lines(block, len(b"one acme\n"), b"acme", fold=True)) == [b"four acme", b"three ACME"]
    assert list(_matching_lines(block, 0, b"none", fold=True)) == []
    assert list(_matching_lines(b"acme acme\n", 0, b"acme", fold=False)) == [b"acme acme"]  # each line once


@pytest.mark.parametrize(
    ("data", "tail"),
    [(b"", None), (b"a\n", None), (b"a\nb", b"b"), (b"torn", b"torn"), (b"a\n" + b"x" * 20000, b"x" * 20000)],
)
def test_unterminated_tail_is_the_last_line_when_no_newline_ends_it(data, tail):
    assert _unterminated_tail(io.BytesIO(data)) == tail
