"""Settling messages whose sending process died: the rule that keeps "exactly once" true after a crash.

A message left `sending` may have reached the server: it becomes `unknown` and is never sent again on its
own. One left `retrying` by an immediate send had nothing accepted: it becomes `failed`. A process is known
to be dead when the message's sender lock (jobmail.store.locks) is free. Cheap to import: `send.py log`
runs it before showing the log, and must not load the SMTP or template machinery.
"""

from __future__ import annotations

from collections.abc import Iterable

from filelock import Timeout

from jobmail.status import Status
from jobmail.store.locks import sender_lock
from jobmail.store.sentlog import SentLog


def recover_interrupted(log: SentLog, records: Iterable[dict]) -> list[dict]:
    """Settle the messages whose sending process died (their sender lock is free):

    - left `sending`: it may have reached the server: `unknown`, never retried on its own;
    - left `retrying` by an immediate send (no `due`): nothing was accepted: `failed`.
      (A queued message left `retrying` stays for the outbox, which sends it again.)

    Returns the records written.
    """
    written = []
    for record in records:
        if not _needs_settling(record):
            continue
        try:
            with sender_lock(log.folder, record["id"]).acquire(timeout=0):
                with log.locked():
                    current = log.current(record["id"])
                    if current is None or current.get("status") != record.get("status"):
                        continue
                    fields = {k: v for k, v in current.items() if k not in ("time", "status", "attempt", "retry_in")}
                    written.append(log.append({**fields, **_settled(current["status"])}))
        except Timeout:
            continue  # another process is delivering it right now
    return written


def _needs_settling(record: dict) -> bool:
    state = record.get("status")
    return state == Status.SENDING or (state == Status.RETRYING and not record.get("due"))


def _settled(state: str) -> dict:
    if state == Status.SENDING:
        return {
            "status": Status.UNKNOWN,
            "error": "the sending process stopped after the message data may have gone out: "
            "check your Sent folder before sending it again",
        }
    return {
        "status": Status.FAILED,
        "error": "the sending process stopped between two attempts: nothing was accepted; send it again",
    }
