"""TEMPORARY stand-in until the store split lands (same lock files as before)."""

from __future__ import annotations

import os

from filelock import FileLock


def _folder(folder: str) -> str:
    os.makedirs(os.path.join(folder, "messages"), mode=0o700, exist_ok=True)
    return folder


def send_guard(folder: str) -> FileLock:
    return FileLock(os.path.join(_folder(folder), "send.lock"), mode=0o600)


def sender_lock(folder: str, message_id: str) -> FileLock:
    return FileLock(os.path.join(_folder(folder), "messages", f"{message_id}.lock"), mode=0o600)


def outbox_lock(folder: str) -> FileLock:
    return FileLock(os.path.join(_folder(folder), "outbox.lock"), mode=0o600)


def wake_lock(path: str) -> FileLock:
    return FileLock(path, mode=0o600)
