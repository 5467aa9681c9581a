"""Settings: .env under the environment, validated once; passwords refused; errors name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobmail.errors import ConfigError
from jobmail.settings import PROJECT_DIR, load

BASE = "SMTP_HOST=smtp.example.com\nFROM_ADDRESS=alex@example.com\nFROM_NAME=Alex Example\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_file_values(tmp_path):
    settings = load(write(tmp_path, BASE), environ={})
    assert settings.smtp_host == "smtp.example.com"
    assert (settings.smtp_port, settings.smtp_security) == (587, "starttls")
    assert settings.smtp_username == "alex@example.com"  # defaults to FROM_ADDRESS
    assert settings.log_dir == PROJECT_DIR / "log"
    assert settings.templates_dir == PROJECT_DIR / "templates"
    assert settings.smtp_ca_file is None


def test_ssl_defaults_to_465_and_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, BASE + "SMTP_SECURITY=ssl\n")
    assert load(path, environ={}).smtp_port == 465
    settings = load(path, environ={"SMTP_HOST": "mail.other.example", "SMTP_PORT": "2465"})
    assert (settings.smtp_host, settings.smtp_port) == ("mail.other.example", 2465)


def test_relative_paths_are_relative_to_the_env_file(tmp_path):
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    settings = load(write(tmp_path, BASE + "LOG_DIR=mylog\nSMTP_CA_FILE=ca.pem\n"), environ={})
    assert settings.log_dir == tmp_path / "mylog"
    assert settings.smtp_ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("SMTP_PORT=abc\n", "SMTP_PORT='abc' is not a whole number"),
        ("SMTP_PORT=70000\n", "SMTP_PORT=70000 is out of range"),
        ("SMTP_SECURITY=tls\n", "SMTP_SECURITY='tls' is not one of starttls, ssl, none"),
        ("SMTP_SECURITY=none\n", "SMTP_SECURITY=none is allowed only for a server on this machine"),
        ("SMTP_CA_FILE=/nonexistent/ca.pem\n", "SMTP_CA_FILE=/nonexistent/ca.pem: no such file"),
        ("SMTP_TIMEOUT=soon\n", "SMTP_TIMEOUT='soon' is not a number"),
        ("SMTP_HOSTNAME=x\n", "line 4: unknown key SMTP_HOSTNAME"),
        ("SMTP_PASSWORD=hunter2-secret\n", "line 4: SMTP_PASSWORD looks like a password"),
        ("this is not a setting\n", "line 4: cannot parse this line"),
        ("FROM_ADDRESS=alex@\n", "FROM_ADDRESS: 'alex@' is not a valid email address"),
        ("BUSINESS_HOURS=9-5\n", "BUSINESS_HOURS='9-5' is not a range of the day"),
        ("BUSINESS_HOURS=17:00-09:00\n", "BUSINESS_HOURS='17:00-09:00' is not a range of the day"),
        ("IMAP_SECURITY=tls\n", "IMAP_SECURITY='tls' is not one of starttls, ssl, none"),
        ("IMAP_SECURITY=none\nIMAP_HOST=imap.example.com\n", "IMAP_SECURITY=none is allowed only for a server"),
        ("IMAP_PORT=0\n", "IMAP_PORT=0 is out of range"),
        ("SENT_COPY=sometimes\n", "SENT_COPY='sometimes' is not one of auto, always, never"),
        ('SENT_FOLDER=\'a"b\'\n', "cannot be a folder name"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, expected):
    path = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert expected in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)
    assert f"{path}, line 4" in str(caught.value)  # where to fix it


def test_a_bad_value_from_the_environment_says_so(tmp_path):
    with pytest.raises(ConfigError, match="^the environment: SMTP_PORT='x' is not a whole number"):
        load(write(tmp_path, BASE), environ={"SMTP_PORT": "x"})


def test_no_env_file_names_the_folder_it_looked_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load(None, environ={})
    with pytest.raises(ConfigError, match=f"no .env in {re.escape(str(tmp_path))}.*--env-file"):
        settings.require_account()


def test_password_in_the_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="SMTP_PASSWORD is set in the environment.*keyring"):
        load(write(tmp_path, BASE), environ={"SMTP_PASSWORD": "hunter2-secret"})


def test_none_security_is_allowed_to_loopback(tmp_path):
    settings = load(write(tmp_path, BASE.replace("smtp.example.com", "127.0.0.1") + "SMTP_SECURITY=none\n"), {})
    assert (settings.smtp_security, settings.smtp_port) == ("none", 25)


def test_non_utf8_env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_bytes(BASE.encode() + "FROM_NAME=Zo\xeb\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path, environ={})


def test_missing_explicit_env_file(tmp_path):
    with pytest.raises(ConfigError, match="not found: run `python send.py setup"):
        load(tmp_path / "nope.env", environ={})


def test_require_account_says_what_to_do(tmp_path):
    settings = load(write(tmp_path, "FROM_NAME=Alex\n"), environ={})
    with pytest.raises(ConfigError, match="SMTP_HOST is not set.*setup"):
        settings.require_account()


def test_every_key_is_documented_in_the_example():
    from jobmail.settings import KEYS

    example = (PROJECT_DIR / "config.example.env").read_text(encoding="utf-8")
    for key in KEYS:
        assert f"{key}=" in example, key
    assert "PASSWORD=" not in example
    load(PROJECT_DIR / "config.example.env", environ={})  # the example itself is valid


_VALUE = st.text(alphabet="aZ09 .@-_:/$#'\"\\=\t", max_size=12)
_LINE = st.one_of(
    st.builds(
        lambda pre, key, sp1, sp2, value, post: f"{pre}{key}{sp1}={sp2}{value}{post}",
        st.sampled_from(["", " ", "export ", "\t"]),
        st.sampled_from(["SMTP_HOST", "FROM_NAME", "LOG_DIR", "SMTP_PORT"]),
        st.sampled_from(["", " "]),
        st.sampled_from(["", " ", "\t"]),
        st.one_of(_VALUE, st.builds(lambda quote, value: quote + value + quote, st.sampled_from("\"'"), _VALUE)),
        st.sampled_from(["", " ", " # note", "\t", "# note"]),
    ),
    st.sampled_from(["", "# a comment", "   ", "  # indented comment"]),
)


@settings(max_examples=600, deadline=None)
@given(lines=st.lists(_LINE, max_size=6), crlf=st.booleans())
def test_the_fast_env_reader_agrees_with_python_dotenv(lines, crlf):
    """Simple files are read without importing python-dotenv: the values must be python-dotenv's."""
    import io

    from dotenv import dotenv_values

    from jobmail.settings import _simple_bindings

    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    fast = _simple_bindings(text)
    if fast is None:
        return  # python-dotenv reads this one itself
    expected = {k: v or "" for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}
    assert {key: value for _, key, value in fast} == expected


def test_settings_replace_gives_back_equal_settings(tmp_path):
    env = tmp_path / "a.env"
    env.write_text(f"LOG_DIR={tmp_path}/./log//\nFROM_NAME=Alex\n", encoding="utf-8")
    settings = load(env, environ={})
    assert settings.replace() == settings and hash(settings.replace()) == hash(settings)
    assert settings.log_dir == Path(f"{tmp_path}/log") and isinstance(settings.log_dir, Path)


@pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="needs symlinks")
def test_an_env_file_path_through_a_link_is_resolved_by_the_os(tmp_path, monkeypatch):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "x.env").write_text("FROM_NAME=Real\n", encoding="utf-8")
    (tmp_path / "x.env").write_text("FROM_NAME=Here\n", encoding="utf-8")
    try:
        (tmp_path / "link").symlink_to(tmp_path / "real" / "sub", target_is_directory=True)
    except OSError:
        pytest.skip("cannot make a symlink here")
    monkeypatch.chdir(tmp_path)
    assert load("link/../x.env", environ={}).from_name == "Real"  # as `cat link/../x.env` reads it


BAD_VALUES = {
    "SMTP_SECURITY": "tls",
    "SMTP_HOST": "smtp example.com",
    "SMTP_PORT": "70000",
    "SMTP_CA_FILE": "no-such.pem",
    "SMTP_TIMEOUT": "soon",
    "FROM_ADDRESS": "alex@",
    "FROM_NAME": "A" * 80,
    "SEND_ATTEMPTS": "0",
    "SEND_RETRY_DELAY": "-1",
    "MAX_MESSAGE_KB": "x",
    "BUSINESS_HOURS": "17:00-09:00",
    "OVERDUE_AFTER_HOURS": "never",
}


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_a_bad_value_is_located_in_the_file_or_the_environment(tmp_path, monkeypatch, key):
    monkeypatch.chdir(tmp_path)  # no .env here but ours
    env = tmp_path / "a.env"
    env.write_text(f"# line 1\n{key}={BAD_VALUES[key]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as in_file:
        load(env, environ={})
    assert str(in_file.value).startswith(f"{env.resolve()}, line 2: {key}"), str(in_file.value)
    with pytest.raises(ConfigError) as in_environment:
        load(None, environ={key: BAD_VALUES[key]})
    assert str(in_environment.value).startswith(f"the environment: {key}"), str(in_environment.value)


def test_a_retry_budget_shorter_than_the_first_wait_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"the environment: SEND_RETRY_WITHIN=5 is shorter than SEND_RETRY_DELAY=10"):
        load(None, environ={"SEND_RETRY_DELAY": "10", "SEND_RETRY_WITHIN": "5"})


def test_an_everyday_env_with_quoted_values_is_read_without_importing_python_dotenv(tmp_path):
    """FROM_NAME="Alex Example", as many people write it, must not cost every command dotenv's import;
    a value only python-dotenv can read (an escape inside quotes) still loads it, and reads the same."""
    import subprocess
    import sys

    from conftest import SEND_PY, clean_environ

    def imported(env_text: str) -> set[str]:
        (tmp_path / "my.env").write_text(env_text, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-X", "importtime", str(SEND_PY), "log", "--env-file", "my.env"],
            capture_output=True,
            text=True,
            env=clean_environ(tmp_path),
            cwd=tmp_path,
            encoding="utf-8",
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line}

    log_line = f"LOG_DIR='{tmp_path / 'log'}'\n"
    assert "dotenv" not in imported(f'FROM_NAME="Alex Example"\n{log_line}FROM_ADDRESS="alex@example.com" # me\n')
    assert "dotenv" in imported(f'FROM_NAME="Alex \\"Al\\" Example"\n{log_line}')
    settings = load(tmp_path / "my.env", environ={})
    assert settings.from_name == 'Alex "Al" Example' and settings.log_folder == str(tmp_path / "log")


# -- SMTP_SECURITY=none: loopback by what a name resolves to, not by what it says (#17) -------------------


@pytest.mark.parametrize(
    ("host", "answers", "expected"),
    [
        ("localhost.localdomain", ["203.0.113.7"], False),  # a resolver that answers another machine
        ("localhost", ["127.0.0.1", "198.51.100.2"], False),  # one address elsewhere is enough to refuse
        ("localhost", [], False),  # not found
        ("localhost", ["127.0.0.1", "::1"], True),
        ("mail.internal", ["127.0.0.53"], True),
        ("127.0.0.1", ["203.0.113.7"], True),  # an address is not looked up
        ("[::1]", [], True),
        ("10.0.0.1", [], False),
    ],
)
def test_loopback_is_what_the_name_resolves_to(host, answers, expected):
    from jobmail.settings import is_loopback, loopback_addresses

    asked: list[str] = []

    def resolver(name: str) -> list[str]:
        asked.append(name)
        return answers

    assert is_loopback(host, resolve=resolver) is expected
    assert bool(loopback_addresses(host, resolve=resolver)) is expected


def test_none_is_refused_for_a_name_that_does_not_resolve_to_loopback(tmp_path):
    text = BASE.replace("smtp.example.com", "jobmail-test.invalid") + "SMTP_SECURITY=none\n"  # .invalid: never
    with pytest.raises(ConfigError, match="does not resolve to loopback addresses only") as caught:
        load(write(tmp_path, text), {})
    assert caught.value.key == "SMTP_SECURITY"


@pytest.mark.parametrize(
    ("host", "fine"),
    [
        ("smtp.example.com", True),
        ("smtp.example.com.", True),  # a fully qualified name's final dot
        ("bücher.example", True),  # internationalised: xn--bcher-kva.example on the wire
        ("127.0.0.1", True),
        ("::1", True),
        ("smtp..example.com", False),  # an empty part
        ("bü..example.com", False),
        (".example.com", False),
        ("x" * 64 + ".example.com", False),  # a part longer than 63
    ],
)
def test_a_host_is_a_name_the_resolver_can_be_given(tmp_path, host, fine):
    """A name no resolver takes fails every attempt alike: it is refused with the settings, for either host."""
    for key in ("SMTP_HOST", "IMAP_HOST"):
        text = BASE + f"{key}={host}\n"
        if fine:
            assert getattr(load(write(tmp_path, text), environ={}), key.lower()) == host
        else:
            with pytest.raises(ConfigError, match=f"{key}=.* is not a host name"):
                load(write(tmp_path, text), environ={})


def test_imap_is_off_until_imap_host_is_set(tmp_path):
    settings = load(write(tmp_path, BASE), environ={})
    assert not settings.uses_imap and not settings.copies_to_sent
    settings = load(write(tmp_path, BASE + "IMAP_HOST=imap.example.com\n"), environ={})
    assert (settings.imap_host, settings.imap_port, settings.imap_security) == ("imap.example.com", 993, "ssl")
    assert settings.imap_username == "alex@example.com"  # SMTP_USERNAME, itself FROM_ADDRESS here
    assert settings.copies_to_sent  # auto, and an unknown provider files nothing by itself
    settings = load(write(tmp_path, BASE + "IMAP_HOST=imap.example.com\nIMAP_SECURITY=starttls\n"), environ={})
    assert settings.imap_port == 143


@pytest.mark.parametrize(
    ("smtp_host", "sent_copy", "copies"),
    [
        ("smtp.gmail.com", "auto", False),  # Gmail files SMTP-sent mail in Sent itself
        ("smtp.office365.com", "auto", False),
        ("smtp.mail.yahoo.com", "auto", True),  # Yahoo does not
        ("smtp.fastmail.com", "auto", True),
        ("smtp.gmail.com", "always", True),
        ("smtp.mail.yahoo.com", "never", False),
    ],
)
def test_sent_copy_auto_follows_the_provider(tmp_path, smtp_host, sent_copy, copies):
    text = f"SMTP_HOST={smtp_host}\nFROM_ADDRESS=alex@example.com\nFROM_NAME=Alex\nIMAP_HOST=imap.example.com\n"
    settings = load(write(tmp_path, text + f"SENT_COPY={sent_copy}\n"), environ={})
    assert settings.copies_to_sent is copies


def test_the_microsoft_scope_names_imap_only_when_imap_is_used(tmp_path):
    text = BASE.replace("smtp.example.com", "smtp.office365.com") + "SMTP_AUTH=oauth2\nOAUTH_CLIENT_ID=abc\n"
    assert "IMAP.AccessAsUser.All" not in load(write(tmp_path, text), environ={}).oauth_scope
    scope = load(write(tmp_path, text + "IMAP_HOST=outlook.office365.com\n"), environ={}).oauth_scope
    assert scope.split() == [
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
    ]


@pytest.mark.parametrize("command", [("log",), ("send", "withdraw", "--to", "jordan.lee@acme.example.com")])
def test_a_password_pasted_alone_on_a_line_is_never_shown(make_account, command):
    """A bare word in .env (a password pasted without `KEY=`) is named by its line, not its text."""
    account = make_account("starttls")
    with account.env_file.open("a", encoding="utf-8") as f:
        f.write("hunter2\n")
    line = len(account.env_file.read_text(encoding="utf-8").splitlines())
    result = account.run(*command)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {account.env_file}, line {line} is not KEY=value: "
        "write it as KEY=value, or start it with # to make it a comment"
    ]
    assert "hunter2" not in result.stdout + result.stderr
