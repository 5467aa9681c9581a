"""app/sending.py: a message sent now, from a plain request (no argparse), against a real SMTP server on
127.0.0.1 and a real file keyring: what the server received, what the log holds, what the errors carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobmail.app.recovery import recover_interrupted
from jobmail.app.requests import SendRequest
from jobmail.app.sending import admit, prepare, send_now
from jobmail.errors import Command, DuplicateError, InputError, SendError
from jobmail.loopback import Recorder
from jobmail.settings import load
from jobmail.status import Status
from jobmail.store.sentlog import SentLog

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
REQUEST = SendRequest(
    "withdraw",
    to=("jordan.lee@acme.example.com",),
    interviewer="Jordan Lee",
    position="Data Analyst",
    company="Acme",
)


@pytest.fixture
def account(make_account, password, monkeypatch):
    """An account whose password is stored in its own file keyring, which this process reads too."""
    account = make_account("starttls")
    account.store_password(password)
    monkeypatch.setenv("XDG_DATA_HOME", str(account.home / "data"))
    monkeypatch.setenv("LOCALAPPDATA", str(account.home / "data"))
    return account


def settings_of(account):
    return load(account.env_file, environ={})


def test_a_request_is_prepared_without_argparse_and_sent_once(account):
    settings = settings_of(account)
    prepared = prepare(settings, REQUEST, NOW)
    assert prepared.record["to"] == ["jordan.lee@acme.example.com"]
    assert "Data Analyst" in prepared.record["subject"]

    done = send_now(settings, prepared, force=False)

    (received,) = account.server.messages
    assert received.data.replace(b"\r\n", b"\n") == prepared.data.replace(b"\r\n", b"\n")
    assert received.rcpt_tos == ["jordan.lee@acme.example.com"]
    log = SentLog(settings.log_folder)
    assert [r["status"] for r in log.history(prepared.id)] == [Status.SENDING, Status.SENT]
    assert log.read_message(prepared.id) == prepared.data  # the exact bytes, stored before they went out
    assert done.code == 250 and log.current(prepared.id)["reply"]["code"] == 250


def test_a_second_identical_send_is_refused_with_its_next_steps_as_data(account):
    settings = settings_of(account)
    first = prepare(settings, REQUEST, NOW)
    send_now(settings, first, force=False)
    again = prepare(settings, REQUEST, NOW)
    with pytest.raises(DuplicateError) as refused:
        send_now(settings, again, force=False)
    short = first.id[:8]
    assert refused.value.commands == (Command("log", "show", short),)
    assert f"`python send.py log show {short}`" in str(refused.value)  # the plain form the log would store
    assert len(account.server.messages) == 1
    assert SentLog(settings.log_folder).current(again.id) is None  # nothing of it was admitted

    send_now(settings, again, force=True)
    assert len(account.server.messages) == 2


@pytest.mark.parametrize("carried", [True, False], ids=["new-log", "log-of-an-earlier-version"])
def test_a_send_whose_latest_record_is_a_later_state_is_still_a_duplicate(account, carried):
    """After `sent`, a message gets more records (its Sent copy, a reply): the guard still knows its body,
    also in a log whose later records were written before they carried the body's digest."""
    settings = settings_of(account)
    first = prepare(settings, REQUEST, NOW)
    send_now(settings, first, force=False)
    log = SentLog(settings.log_folder)
    sent = log.current(first.id)
    later = {key: sent[key] for key in ("from", "to", "cc", "subject", "message_id")}
    if carried:
        later["body_sha256"] = sent["body_sha256"]
    log.append({"id": first.id, "status": Status.REPLIED, **later, "reply_from": "jordan.lee@acme.example.com"})
    with pytest.raises(DuplicateError):
        send_now(settings, prepare(settings, REQUEST, NOW), force=False)
    assert len(account.server.messages) == 1
    other = REQUEST._replace(highlight="I especially enjoyed meeting the analytics team.")
    send_now(settings, prepare(settings, other, NOW), force=False)  # another body: not a duplicate
    assert len(account.server.messages) == 2


def test_a_refused_recipient_is_failed_and_never_reached_data(make_account, password, monkeypatch):
    class RefuseRecipients(Recorder):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 no such user here"

    account = make_account("starttls", handler=RefuseRecipients())
    account.store_password(password)
    monkeypatch.setenv("XDG_DATA_HOME", str(account.home / "data"))
    settings = settings_of(account)
    prepared = prepare(settings, REQUEST, NOW)
    with pytest.raises(SendError, match="550 5.1.1 no such user here"):
        send_now(settings, prepared, force=False)
    history = SentLog(settings.log_folder).history(prepared.id)
    assert [r["status"] for r in history] == [Status.FAILED]  # no `sending`: the data never went out
    assert history[-1]["reply"] == {"code": 550, "text": "5.1.1 no such user here"}
    assert account.server.messages == []


def test_a_bad_address_in_the_request_stops_before_anything_is_stored(account):
    settings = settings_of(account)
    with pytest.raises(InputError, match="--to"):
        prepare(settings, REQUEST._replace(to=("jordan.lee@",)), NOW)
    with pytest.raises(InputError, match="--var"):
        prepare(settings, REQUEST._replace(pairs=("no-equals-sign",)), NOW)
    assert SentLog(settings.log_folder).current("x") is None and account.server.messages == []


def test_a_send_whose_process_died_after_sending_becomes_unknown_and_is_never_resent(account):
    settings = settings_of(account)
    log = SentLog(settings.log_folder)
    prepared = prepare(settings, REQUEST, NOW)
    admit(log, prepared, force=False)
    log.append({"id": prepared.id, **prepared.record, "status": Status.SENDING})  # then the process died

    (settled,) = recover_interrupted(log, log.latest())
    assert settled["status"] == Status.UNKNOWN and "Sent folder" in settled["error"]
    with pytest.raises(DuplicateError, match="may already have been sent"):
        send_now(settings, prepare(settings, REQUEST, NOW), force=False)
    assert account.server.messages == []
