"""The states of a message in the sent log, and the named groups the rules are written in.

    scheduled -> sending -> sent | failed | unknown        (retrying: a pause between attempts)
    scheduled -> cancelled | overdue;  overdue -> sending | cancelled
    sent -> replied                                        (`track` found an answer in INBOX)

- `sending` is on disk before anything about the message goes on the wire; `sent` after the server's 250.
- `unknown`: the data went out and no final answer came (or the process died there). It may have been
  delivered, so it is never sent again on its own.
- `replied`: a message in INBOX answers it (its In-Reply-To or References holds our Message-ID), found
  by `track`; one record per reply. It was sent: it counts as `sent` everywhere else.
- A `sent` record may carry `sent_copy` (pending | saved | found): the Sent folder copy over IMAP, with
  a later `sent` record of the same message saying how it went. It never changes whether it was sent.
- `overdue`: a scheduled message that became due while nothing ran, later than OVERDUE_AFTER_HOURS; it
  is held until the user sends (`outbox send-now`) or cancels it. (Not "late": a message that is merely
  past its time but within that window is just due.)

A StrEnum: each member is its own text, so records hold plain strings and compare equal to them.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    OVERDUE = "overdue"
    REPLIED = "replied"


S = Status
ALL = tuple(Status)
# No later state follows on its own.
FINAL = frozenset({S.SENT, S.FAILED, S.UNKNOWN, S.CANCELLED, S.REPLIED})
# In the outbox, waiting for its time (scheduled) or for the user (overdue).
WAITING = frozenset({S.SCHEDULED, S.OVERDUE})
# The server may have it: never sent again on its own, and a later identical send is a duplicate.
MAY_HAVE_GONE = frozenset({S.SENDING, S.SENT, S.UNKNOWN, S.REPLIED})
# Delivered for sure: what `track` looks for replies to, and what may have a Sent copy to append.
DELIVERED = frozenset({S.SENT, S.REPLIED})
# What the duplicate guard compares a new message with.
DUPLICATE_OF = WAITING | MAY_HAVE_GONE
# The outbox may claim it, under the outbox lock (`retrying` there means interrupted before DATA).
CLAIMABLE = frozenset({S.SCHEDULED, S.OVERDUE, S.RETRYING})
# What a waiting process sets a timer for.
TIMED = frozenset({S.SCHEDULED, S.RETRYING})
# What `outbox` lists.
IN_OUTBOX = frozenset({S.SCHEDULED, S.OVERDUE, S.SENDING, S.RETRYING})
# Left by a process that may have died mid-send: settled by recovery once its sender lock is free.
IN_FLIGHT = frozenset({S.SENDING, S.RETRYING})
