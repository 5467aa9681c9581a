"""app/account.py: the settings file setup writes, read back by settings.load; never a password."""

from __future__ import annotations

import pytest

from jobmail import settings as config
from jobmail.app.account import render_env, write_env
from jobmail.errors import InputError

VALUES = {
    "SMTP_HOST": "smtp.example.com",
    "SMTP_SECURITY": "starttls",
    "SMTP_PORT": "587",
    "SMTP_USERNAME": "alex@example.com",
    "FROM_ADDRESS": "alex@example.com",
    "FROM_NAME": 'Alex "Al" O\'Brien #1',
}


def test_write_env_round_trips_through_settings_load(tmp_path):
    path = tmp_path / ".env"
    write_env(path, VALUES, replace=False)
    loaded = config.load(str(path), environ={})
    assert loaded.smtp_host == "smtp.example.com"
    assert loaded.smtp_port == 587
    assert loaded.smtp_username == "alex@example.com"
    assert loaded.from_name == VALUES["FROM_NAME"]


def test_no_password_is_ever_written(tmp_path):
    text = render_env(VALUES)
    assert "PASSWORD=" not in text.upper().replace("# ", "")
    path = tmp_path / ".env"
    write_env(path, {**VALUES, "KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}, replace=False)
    assert "hunter2" not in path.read_text(encoding="utf-8")
    assert not any(line.split("=")[0].endswith("PASSWORD") for line in path.read_text(encoding="utf-8").splitlines())


def test_an_existing_file_is_not_replaced_without_replace(tmp_path):
    path = tmp_path / ".env"
    path.write_text("FROM_NAME=Kept\n", encoding="utf-8")
    with pytest.raises(InputError):
        write_env(path, VALUES, replace=False)
    assert path.read_text(encoding="utf-8") == "FROM_NAME=Kept\n"
    write_env(path, VALUES, replace=True)
    assert config.load(str(path), environ={}).from_name == VALUES["FROM_NAME"]
