"""Scheduled sends and the outbox: persisted first, sent when due, exactly once.

The logic runs on an injected clock (no sleeping); a few tests run the real thing as a user does, in
subprocesses against the loopback server: one short real-time send through the `schedule` loop, a waiter
killed with SIGKILL, a cancel while a process waits, and two `outbox run --once` racing for six messages.

Calendar (2026): Sat Nov 28; Mon Nov 30. New York is on EST (UTC-5) then.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import WITHDRAW_ARGS, wait_until

from jobmail import settings as config
from jobmail.app.outbox import Entry, Outbox
from jobmail.app.requests import SendRequest
from jobmail.app.sending import prepare
from jobmail.app.wake import WakeSocket, wake_waiters
from jobmail.cli import main
from jobmail.cli.output import Console
from jobmail.cli.views import describe_due
from jobmail.errors import CredentialError, DuplicateError, InputError
from jobmail.store.locks import WAKE_DIR
from jobmail.store.sentlog import SentLog, utc_now

SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 10:00 EST
MONDAY_9_NEW_YORK = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


class Box:
    def __init__(self, account, password: str, clock: Clock):
        self.account = account
        self.settings = config.load(account.env_file, environ={})
        self.clock = clock
        self.outbox = Outbox(self.settings, clock=clock, password=lambda: password)
        self.log = self.outbox.log

    def prepare(self, company: str = "Acme", now: datetime | None = None):
        request = SendRequest(
            "withdraw", to=("jordan.lee@acme.example.com",), interviewer="Jordan Lee", position="Data Analyst",
            company=company,
        )
        return prepare(self.settings, request, now or self.clock())

    def schedule(self, due: datetime, company: str = "Acme", zone: str = "", force: bool = False):
        prepared = self.prepare(company)
        self.outbox.schedule(prepared, due, zone, force=force)
        return prepared

    def statuses(self, message_id: str) -> list[str]:
        return [r["status"] for r in self.log.history(message_id)]

    @property
    def received(self):
        return self.account.server.messages


@pytest.fixture
def box(make_account, password):
    return Box(make_account("starttls"), password, Clock(SATURDAY))


def message_id_of(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.default)["Message-ID"]


# --- the logic, on an injected clock ------------------------------------------------------------


def test_next_business_morning_on_a_saturday_queues_for_monday_9_new_york_then_sends_once(box):
    from jobmail.cli.scheduling import scheduled_parts
    from jobmail.when import BusinessHours, parse_when, resolve_zone

    zone = resolve_zone("America/New_York")
    due = parse_when("next-business-morning", SATURDAY, zone, BusinessHours.parse(box.settings.business_hours))
    prepared = box.prepare(now=SATURDAY)
    box.outbox.schedule(prepared, due, zone.key)
    shown = "\n".join(Console().render(parts) for parts in scheduled_parts(prepared.id, box.log.path, due, zone, True))
    assert describe_due(due, zone) in shown
    assert "Mon 2026-11-30 09:00 EST (America/New_York)" in shown
    assert "outbox run" in shown

    (scheduled,) = box.log.history(prepared.id)
    assert scheduled["status"] == "scheduled"
    assert scheduled["due"] == "2026-11-30T14:00:00.000+00:00"
    assert scheduled["zone"] == "America/New_York"
    assert scheduled["message_id"] == prepared.record["message_id"]
    assert box.log.read_message(prepared.id) == prepared.data  # the exact bytes, stored before any wait

    box.clock.set(MONDAY_9_NEW_YORK - timedelta(seconds=1))
    assert box.outbox.run_due() == []
    assert box.received == []

    box.clock.set(MONDAY_9_NEW_YORK + timedelta(milliseconds=300))
    (outcome,) = box.outbox.run_due()
    assert outcome.action == "sent"
    assert len(box.received) == 1
    assert box.received[0].data.startswith(prepared.data.split(b"\r\n\r\n")[0][:20])
    assert message_id_of(box.received[0].data) == prepared.record["message_id"]
    assert box.statuses(prepared.id) == ["scheduled", "sending", "sent"]
    sent = box.log.current(prepared.id)
    assert sent["due"] == scheduled["due"] and sent["reply"]["code"] == 250

    assert box.outbox.run_due() == []  # again: nothing more goes out
    assert len(box.received) == 1


def test_states_waiting_due_overdue_held(box):
    due = SATURDAY + timedelta(hours=1)
    prepared = box.schedule(due)
    (entry,) = box.outbox.entries()
    assert box.outbox.state(entry, due - timedelta(seconds=1)) == "waiting"
    assert box.outbox.state(entry, due) == "due"
    assert box.outbox.state(entry, due + timedelta(hours=12)) == "due"  # OVERDUE_AFTER_HOURS=12 by default
    assert box.outbox.state(entry, due + timedelta(hours=12, seconds=1)) == "overdue"
    held = Entry({**entry.record, "status": "overdue"})
    assert box.outbox.state(held, due) == "held"
    assert entry.id == prepared.id


def test_overdue_after_hours_zero_still_allows_a_minute(make_account, password):
    account = make_account("starttls", OVERDUE_AFTER_HOURS="0")
    box = Box(account, password, Clock(SATURDAY))
    box.schedule(SATURDAY)
    (entry,) = box.outbox.entries()
    assert box.outbox.state(entry, SATURDAY + timedelta(seconds=59)) == "due"
    assert box.outbox.state(entry, SATURDAY + timedelta(seconds=61)) == "overdue"


def test_a_message_due_during_downtime_is_sent_at_the_next_run_within_the_limit(box):
    prepared = box.schedule(SATURDAY + timedelta(minutes=5))
    box.clock.set(SATURDAY + timedelta(hours=11))  # nothing ran for eleven hours
    (outcome,) = box.outbox.run_due()
    assert outcome.action == "sent"
    assert len(box.received) == 1
    assert box.statuses(prepared.id) == ["scheduled", "sending", "sent"]


def test_too_late_is_held_as_overdue_and_only_send_now_sends_it(box):
    prepared = box.schedule(SATURDAY + timedelta(minutes=5))
    box.clock.set(SATURDAY + timedelta(hours=13))
    (outcome,) = box.outbox.run_due()
    assert outcome.action == "overdue"
    assert "OVERDUE_AFTER_HOURS=12" in outcome.error and "send-now" in outcome.error
    assert box.received == []
    assert box.statuses(prepared.id) == ["scheduled", "overdue"]

    box.clock.set(SATURDAY + timedelta(hours=14))
    assert box.outbox.run_due() == []  # held: no new record, nothing sent
    assert box.statuses(prepared.id) == ["scheduled", "overdue"]
    assert [e.status for e in box.outbox.entries()] == ["overdue"]

    outcome = box.outbox.send_now(prepared.id)
    assert outcome.action == "sent"
    assert len(box.received) == 1
    assert box.statuses(prepared.id) == ["scheduled", "overdue", "sending", "sent"]
    with pytest.raises(InputError, match="too late to send"):
        box.outbox.send_now(prepared.id)
    assert len(box.received) == 1


def test_send_now_sends_before_the_due_time(box):
    prepared = box.schedule(SATURDAY + timedelta(days=2))
    assert box.outbox.send_now(prepared.id).action == "sent"
    assert len(box.received) == 1
    box.clock.set(SATURDAY + timedelta(days=3))
    assert box.outbox.run_due() == []
    assert len(box.received) == 1


def date_of(data: bytes):
    from email.utils import parsedate_to_datetime

    head = data.partition(b"\r\n\r\n")[0].decode("ascii")
    (line,) = [line for line in head.split("\r\n") if line.lower().startswith("date:")]
    return parsedate_to_datetime(line[5:].strip())


@pytest.mark.parametrize("early", [True, False])
def test_a_message_sent_early_or_late_is_dated_when_it_goes_out(box, early):
    due = SATURDAY + timedelta(days=2)
    prepared = box.prepare(now=due)  # as `send --at` does: dated at its due time
    box.outbox.schedule(prepared, due, "")
    if early:  # send-now two days ahead
        sent_at = SATURDAY
        assert box.outbox.send_now(prepared.id).action == "sent"
    else:  # held as overdue, then sent on purpose the next day
        sent_at = due + timedelta(days=1)
        box.clock.set(sent_at)
        assert box.outbox.process(prepared.id).action == "overdue"
        assert box.outbox.send_now(prepared.id).action == "sent"
    (received,) = box.received
    assert date_of(received.data) == sent_at
    assert message_id_of(received.data) == prepared.record["message_id"]  # the same message
    assert box.outbox.log.read_message(prepared.id) == received.data  # the copy kept is what was sent
    body = prepared.data.partition(b"\r\n\r\n")[2]
    assert received.data.endswith(body)


def test_when_the_redated_copy_cannot_be_stored_it_goes_out_as_stored(box):
    due = SATURDAY + timedelta(days=2)
    prepared = box.prepare(now=due)
    box.outbox.schedule(prepared, due, "")
    blocker = box.log.messages_dir / f"{prepared.id}.tmp"
    blocker.mkdir()  # the temporary copy cannot be written (as on a full disk)
    assert box.outbox.send_now(prepared.id).action == "sent"
    (received,) = box.received
    assert received.data == prepared.data  # its due-time date, rather than not sent at all
    assert box.log.read_message(prepared.id) == received.data


def test_a_message_sent_on_time_keeps_its_bytes(box):
    due = SATURDAY + timedelta(hours=1)
    prepared = box.prepare(now=due)
    box.outbox.schedule(prepared, due, "")
    box.clock.set(due + timedelta(seconds=30))
    assert [o.action for o in box.outbox.run_due()] == ["sent"]
    assert box.received[0].data == prepared.data


def test_cancel_wins_before_the_send_and_is_told_it_lost_after(box):
    first = box.schedule(SATURDAY + timedelta(hours=1), company="Acme")
    record = box.outbox.cancel(first.id)
    assert record["status"] == "cancelled" and record["to"] == ["jordan.lee@acme.example.com"]
    box.clock.set(SATURDAY + timedelta(hours=2))
    assert box.outbox.run_due() == []
    assert box.received == []
    with pytest.raises(InputError, match=r"already cancelled \(since \d{4}-\d\d-\d\d \d\d:\d\d\);"):
        box.outbox.cancel(first.id)  # the time as people read it, not the log's ISO stamp
    with pytest.raises(InputError, match="already cancelled"):
        box.outbox.send_now(first.id)

    second = box.schedule(SATURDAY + timedelta(hours=2, minutes=30), company="Globex")
    box.clock.set(SATURDAY + timedelta(hours=3))
    assert [o.action for o in box.outbox.run_due()] == ["sent"]
    with pytest.raises(InputError, match=f"too late to cancel {second.id[:8]}: it was sent"):
        box.outbox.cancel(second.id)
    assert box.statuses(second.id) == ["scheduled", "sending", "sent"]
    assert len(box.received) == 1


def test_a_process_killed_after_sending_leaves_unknown_never_resent(box):
    prepared = box.schedule(SATURDAY)
    fields = {k: v for k, v in box.log.current(prepared.id).items() if k not in ("time", "status")}
    box.log.append({**fields, "status": "sending", "attempt": 1})  # its process died right after DATA
    (recovered,) = box.outbox.recover()
    assert recovered["status"] == "unknown" and "check your Sent folder" in recovered["error"]
    assert box.outbox.run_due() == []
    with pytest.raises(InputError, match="too late to cancel .* check your Sent folder"):
        box.outbox.cancel(prepared.id)
    assert box.received == []


def test_a_process_killed_while_retrying_before_data_is_sent_once(box):
    prepared = box.schedule(SATURDAY)
    fields = {k: v for k, v in box.log.current(prepared.id).items() if k not in ("time", "status")}
    box.log.append({**fields, "status": "retrying", "attempt": 1, "error": "421 try later", "retry_in": 2.0})
    assert [o.action for o in box.outbox.run_due()] == ["sent"]
    assert box.outbox.run_due() == []
    assert len(box.received) == 1


def test_an_identical_message_is_refused_unless_forced(box):
    box.schedule(SATURDAY + timedelta(hours=1))
    with pytest.raises(DuplicateError, match="already in the outbox .* outbox cancel"):
        box.schedule(SATURDAY + timedelta(hours=2))
    box.schedule(SATURDAY + timedelta(hours=2), force=True)
    assert len(box.outbox.entries()) == 2

    box.clock.set(SATURDAY + timedelta(hours=3))
    assert [o.action for o in box.outbox.run_due()] == ["sent", "sent"]
    with pytest.raises(DuplicateError, match="already sent"):
        box.schedule(SATURDAY + timedelta(hours=4))


def test_a_missing_password_leaves_the_message_scheduled(box):
    def no_password() -> str:
        raise CredentialError("no password stored for alex@example.com: run `python send.py password set`")

    prepared = box.schedule(SATURDAY)
    outbox = Outbox(box.settings, clock=box.clock, password=no_password)
    with pytest.raises(CredentialError):
        outbox.run_due()
    assert box.statuses(prepared.id) == ["scheduled"]
    assert box.received == []


def test_a_missing_stored_copy_fails_without_sending(box):
    prepared = box.schedule(SATURDAY)
    box.log.message_path(prepared.id).unlink()
    (outcome,) = box.outbox.run_due()
    assert outcome.action == "failed" and "is missing" in outcome.error
    assert box.received == []


def test_the_scheduler_loop_lets_utc_decide_when_schedules_local_clock_disagrees(box):
    from jobmail.app.outbox import _Waiter

    # schedule's own clock is the real, naive local one: 2099 is far ahead of it, 2020 long past.
    ahead = box.schedule(datetime(2099, 1, 1, 9, 0, tzinfo=UTC), company="Ahead")
    behind = box.schedule(datetime(2020, 1, 1, 9, 0, tzinfo=UTC), company="Behind")
    box.clock.set(datetime(2019, 12, 31, 9, 0, tzinfo=UTC))
    waiter = _Waiter(box.outbox, only=None)
    waiter._plan()
    assert sorted(waiter.entry_of[job].id for job in waiter.scheduler.get_jobs()) == sorted([ahead.id, behind.id])
    assert waiter._run_due() is False  # schedule runs `behind`'s job, but by UTC it is not due yet
    assert box.received == []

    box.clock.set(datetime(2099, 1, 1, 9, 0, 1, tzinfo=UTC))
    waiter._plan()
    assert waiter._run_due() is True  # by UTC both are due; `ahead` is far ahead of schedule's clock
    assert len(box.received) == 1  # `behind` is a lifetime late: held as overdue
    assert box.statuses(ahead.id)[-1] == "sent"
    assert box.statuses(behind.id)[-1] == "overdue"


def test_wait_for_a_due_message_sends_it_and_returns_its_last_record(box):
    prepared = box.schedule(SATURDAY)
    events = []
    record = box.outbox.wait_for(prepared.id, on_event=lambda status, rec: events.append(status))
    assert record["status"] == "sent"
    assert events == ["sending", "sent"]
    assert len(box.received) == 1


def test_wake_reaches_live_waiters_and_cleans_up_after_dead_ones(tmp_path):
    log = SentLog(tmp_path / "log")
    with WakeSocket(log) as waiter:
        assert wake_waiters(log) == 1
        assert waiter.wait(5) is True  # poked
        assert waiter.wait(0) is False  # drained
    assert list((log.directory / WAKE_DIR).glob("*.lock")) == []
    stale = log.directory / WAKE_DIR / "40000-deadbeef.lock"  # left by a killed process: its lock is free
    stale.write_bytes(b"")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    assert wake_waiters(log) == 0
    assert not stale.exists()


def test_outbox_lists_due_time_local_and_in_its_zone(box, monkeypatch, capsys):
    monkeypatch.setenv("TZ", "Europe/Paris")
    monkeypatch.setenv("COLUMNS", "200")
    prepared = box.schedule(datetime(2099, 11, 30, 14, 0, tzinfo=UTC), zone="America/New_York")
    assert main(["outbox", "--env-file", str(box.account.env_file)]) == 0
    shown = capsys.readouterr().out
    line = next(line for line in shown.splitlines() if line.startswith(prepared.id[:8]))
    assert "scheduled" in line
    assert "2099-11-30 15:00 CET" in line  # local
    assert "2099-11-30 09:00 EST America/New_York" in line  # theirs
    assert "jordan.lee@acme.example.com" in line and "Withdrawing" in line

    assert main(["outbox", "cancel", prepared.id[:6], "--env-file", str(box.account.env_file)]) == 0
    assert "nothing will be sent" in capsys.readouterr().out
    assert main(["outbox", "list", "--env-file", str(box.account.env_file)]) == 0
    assert "The outbox is empty" in capsys.readouterr().out


def test_a_time_in_the_past_is_an_error_and_nothing_is_stored(box, capsys):
    code = main(
        [*WITHDRAW_ARGS, "--at", "2020-01-01 09:00", "--tz", "Europe/Paris", "--env-file", str(box.account.env_file)]
    )
    assert code == 2
    assert "in the past (understood as Wed 2020-01-01 09:00 CET)" in capsys.readouterr().err
    assert box.account.records() == []


def test_an_unknown_zone_is_an_error(box, capsys):
    code = main([*WITHDRAW_ARGS, "--at", "+1h", "--tz", "Mars/Olympus", "--env-file", str(box.account.env_file)])
    assert code == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert box.account.records() == []


# --- as a user runs it: subprocesses and the real clock ------------------------------------------


def waiting(account) -> bool:
    """A process is waiting: its wake-up file exists (it registers after storing the message)."""
    return any((account.log_dir / WAKE_DIR).glob("*.lock"))


def test_send_at_waits_in_the_foreground_and_sends_when_due(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--at", "+2s", "--tz", "Asia/Tokyo")
    assert result.returncode == 0, result.stderr
    assert "Send at:" in result.stdout and "JST (Asia/Tokyo)" in result.stdout
    assert "Sent via" in result.stdout
    assert len(account.server.messages) == 1  # it arrived
    records = account.records()
    assert [r["status"] for r in records] == ["scheduled", "sending", "sent"]
    assert len({r["id"] for r in records}) == 1
    assert message_id_of(account.server.messages[0].data) == records[0]["message_id"]
    assert datetime.fromisoformat(records[1]["time"]) >= datetime.fromisoformat(records[0]["due"])  # not early
    assert not waiting(account)  # cleaned up after itself


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_waiter_loses_nothing_and_run_once_sends_exactly_one_copy(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    waiter = account.start(*WITHDRAW_ARGS, "--at", "+2s")
    try:
        wait_until(lambda: waiting(account), "the waiter")
        os.kill(waiter.pid, signal.SIGKILL)
    finally:
        waiter.wait(10)
    assert account.server.messages == []
    (scheduled,) = account.records()
    due = datetime.fromisoformat(scheduled["due"])
    time.sleep(max(0.0, (due - utc_now()).total_seconds()) + 0.05)

    first = account.run("outbox", "run", "--once")
    assert first.returncode == 0, first.stderr
    assert f"Sent {scheduled['id'][:8]}" in first.stdout
    second = account.run("outbox", "run", "--once")
    assert second.returncode == 0, second.stderr
    assert len(account.server.messages) == 1
    assert message_id_of(account.server.messages[0].data) == scheduled["message_id"]
    assert [r["status"] for r in account.records()] == ["scheduled", "sending", "sent"]


def test_a_cancel_wakes_the_waiting_process_and_nothing_is_sent(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    waiter = account.start(*WITHDRAW_ARGS, "--at", "+1h")
    try:
        wait_until(lambda: waiting(account), "the waiter")
        (scheduled,) = account.records()
        cancel = account.run("outbox", "cancel", scheduled["id"][:8])
        assert cancel.returncode == 0, cancel.stderr
        stdout, stderr = waiter.communicate(timeout=20)  # it re-reads the log now, not in an hour
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, stderr
    assert "Cancelled" in stdout
    assert account.server.messages == []
    assert [r["status"] for r in account.records()] == ["scheduled", "cancelled"]


def test_outbox_run_wakes_up_for_a_message_added_while_it_waits(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    runner = account.start("outbox", "run")
    try:
        wait_until(lambda: waiting(account), "outbox run")
        box = Box(account, password, Clock(utc_now()))
        prepared = box.schedule(utc_now() + timedelta(seconds=1))  # wakes it; else it re-reads in a minute
        wait_until(lambda: account.server.messages, "the message", timeout=15)
    finally:
        runner.terminate()
        runner.wait(10)
    assert len(account.server.messages) == 1
    assert box.statuses(prepared.id) == ["scheduled", "sending", "sent"]


def test_two_concurrent_run_once_deliver_each_due_message_exactly_once(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    box = Box(account, password, Clock(utc_now()))
    due = utc_now() - timedelta(seconds=1)
    prepared = [box.schedule(due, company=f"Company {n}") for n in range(6)]

    runners = [account.start("outbox", "run", "--once") for _ in range(2)]
    results = [runner.communicate(timeout=60) for runner in runners]
    for runner, (_, stderr) in zip(runners, results, strict=True):
        assert runner.returncode == 0, stderr

    received = [message_id_of(m.data) for m in account.server.messages]
    assert sorted(received) == sorted(p.record["message_id"] for p in prepared)
    for p in prepared:
        assert box.statuses(p.id) == ["scheduled", "sending", "sent"]


def test_run_once_reports_an_interrupted_send_as_unknown(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    box = Box(account, password, Clock(utc_now()))
    prepared = box.schedule(utc_now())
    fields = {k: v for k, v in box.log.current(prepared.id).items() if k not in ("time", "status")}
    box.log.append({**fields, "status": "sending", "attempt": 1})

    result = account.run("outbox", "run", "--once")
    assert result.returncode == 3
    assert f"Outcome unknown for {prepared.id[:8]}" in result.stderr and "check your Sent folder" in result.stderr
    assert account.server.messages == []
    assert box.statuses(prepared.id)[-1] == "unknown"


def test_send_now_from_the_command_line(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    result = account.run(*WITHDRAW_ARGS, "--at", "+2d", "--no-wait")
    assert result.returncode == 0, result.stderr
    assert "Not waiting (--no-wait)" in result.stdout
    (scheduled,) = account.records()
    result = account.run("outbox", "send-now", scheduled["id"][:8])
    assert result.returncode == 0, result.stderr
    assert len(account.server.messages) == 1
    again = account.run("outbox", "send-now", scheduled["id"][:8])
    assert again.returncode == 2 and "too late to send" in again.stderr
    assert len(account.server.messages) == 1


def test_parse_errors_come_before_anything_is_stored(box, capsys):
    path = Path(box.account.env_file)
    code = main([*WITHDRAW_ARGS, "--at", "whenever", "--env-file", str(path)])
    assert code == 2
    assert 'cannot understand the time "whenever"' in capsys.readouterr().err
    assert box.account.records() == []


def test_a_send_now_of_a_message_already_in_the_outbox_is_refused(make_account, password):
    account = make_account("starttls")
    account.store_password(password)
    queued = account.run(*WITHDRAW_ARGS, "--at", "+1h", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    again = account.run(*WITHDRAW_ARGS)
    assert again.returncode == 2
    assert "already in the outbox" in again.stderr and "outbox send-now" in again.stderr
    assert account.server.messages == []
    forced = account.run(*WITHDRAW_ARGS, "--force")
    assert forced.returncode == 0 and len(account.server.messages) == 1


def test_a_dry_run_checks_and_shows_the_time(make_account):
    account = make_account("starttls")
    bad = account.run(*WITHDRAW_ARGS, "--at", "next week", "--dry-run")
    assert bad.returncode == 2 and "cannot understand the time" in bad.stderr
    good = account.run(*WITHDRAW_ARGS, "--at", "tomorrow 09:00", "--tz", "Europe/Paris", "--dry-run")
    assert good.returncode == 0, good.stderr
    assert "Send at:" in good.stdout and "09:00" in good.stdout and "dry run" in good.stdout
    assert account.records() == []


def test_a_scheduled_message_is_dated_when_it_is_due(make_account, password):
    from email.utils import parsedate_to_datetime

    account = make_account("starttls")
    account.store_password(password)
    queued = account.run(*WITHDRAW_ARGS, "--at", "2099-01-05T09:00:00+00:00", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    record = account.records()[-1]
    stored = (account.log_dir / "messages" / f"{record['id']}.eml").read_bytes()
    date = email.message_from_bytes(stored, policy=email.policy.default)["Date"]
    assert parsedate_to_datetime(str(date)) == datetime(2099, 1, 5, 9, 0, tzinfo=UTC)


def test_a_held_outbox_lock_ends_a_cancel_with_one_line_naming_its_holder(make_account, password):
    from jobmail.store.locks import hold_outbox_lock

    account = make_account("starttls", SMTP_TIMEOUT="0.1", SEND_RETRY_WITHIN="1")
    account.store_password(password)
    queued = account.run(*WITHDRAW_ARGS, "--at", "+1h", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    short = account.records()[-1]["id"][:8]
    with hold_outbox_lock(str(account.log_dir), timeout=5):  # a hung `outbox run`, as far as the lock knows
        result = account.run("outbox", "cancel", short)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: process ") and f"kill {os.getpid()}" in line, line
    assert "outbox.lock" in line and "wait for it to finish" in line
    assert account.records()[-1]["status"] == "scheduled"
    cancelled = account.run("outbox", "cancel", short)  # the holder is gone: the lock is free again
    assert cancelled.returncode == 0, cancelled.stderr
