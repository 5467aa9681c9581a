"""jobmail.smtp.diagnose: the check, on the client's own stages. One cause, both paths: the same server
fault gives the same problem and fix through `send` and through `check`, on the right stage."""

from __future__ import annotations

import base64

import pytest
from conftest import USERNAME, account_values, server_context
from faultserver import FaultServer, closed_port

from jobmail import settings as config
from jobmail.auth import credentials
from jobmail.errors import EXIT_BAD_INPUT, Command, SendError
from jobmail.loopback import LOOPBACK
from jobmail.smtp import client
from jobmail.smtp.diagnose import Step, backend_step, check, keyring_guidance
from jobmail.smtp.explain import Failed

TO = "jordan.lee@acme.example.com"
MESSAGE = b"From: alex@example.com\r\nTo: jordan.lee@acme.example.com\r\nSubject: Hi\r\n\r\nHello\r\n"


def account(port: int, mode: str, home, ca_file=None, **values: str) -> config.Settings:
    base = {**account_values(port, mode, home), "SEND_ATTEMPTS": "1"}
    if ca_file is not None:
        base["SMTP_CA_FILE"] = str(ca_file)
    return config.from_values({**base, **values})


def both_ways(settings: config.Settings, password: str) -> tuple[Failed, Step, list[Step]]:
    """The send's error and the check's failed step (and all its steps) for the same settings."""
    with pytest.raises(SendError) as caught:
        client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, sleep=lambda seconds: None)
    steps: list[Step] = []
    result = check(settings, on_step=steps.append)
    assert result.steps == steps and result.failed is not None and not result.ok
    assert isinstance(caught.value, Failed)
    return caught.value, result.failed, steps


def same_cause(error: Failed, step: Step) -> None:
    assert str(error) == f"{step.problem}: {step.hint}"
    assert error.problem.problem == step.problem and error.problem.hint == step.hint
    assert step.commands == error.commands and step.exit_code == error.exit_code == 1


@pytest.fixture
def stored(keyring_home, password):
    credentials.set_password("127.0.0.1", USERNAME, password)
    return keyring_home


def test_ssl_against_a_starttls_port(stored, password, tls_context, ca_file):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        settings = account(server.port, "ssl", stored, ca_file)
        error, step, steps = both_ways(settings, password)
        assert server.auth_attempts == []
    same_cause(error, step)
    assert error.stage == "tls" and step.name == "tls" and [s.name for s in steps] == ["connect", "tls"]
    assert "wrong version number" in step.problem and "SMTP_SECURITY=starttls" in step.hint


def test_starttls_against_an_implicit_tls_port(stored, password, tls_context, ca_file):
    server = FaultServer(tls=tls_context, implicit_tls=True, credentials=(USERNAME, password))
    with server:
        # SMTP_TIMEOUT=30: waiting it out (twice: the send and the check) would hit pytest's timeout
        settings = account(server.port, "starttls", stored, ca_file, SMTP_TIMEOUT="30")
        error, step, steps = both_ways(settings, password)
        assert server.connections == 4  # each way: the connection that waited for a greeting, and the probe
    same_cause(error, step)
    assert error.stage == "greeting" and step.name == "connect" and len(steps) == 1
    assert "no SMTP greeting" in step.problem and "answered a TLS handshake" in step.problem
    assert step.hint == "this port speaks TLS from the first byte: set SMTP_SECURITY=ssl (port 465)"
    assert not error.transient


def test_a_silent_port_that_does_not_speak_tls_is_waited_for(stored, password, tls_context, ca_file):
    server = FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"connect": "stall"})
    with server:
        settings = account(server.port, "starttls", stored, ca_file, SMTP_TIMEOUT="1")
        error, step, steps = both_ways(settings, password)
        assert server.connections == 4 and server.commands == []  # the probes' handshakes never got an answer
    same_cause(error, step)
    assert "did not answer within 1s while connecting (no SMTP greeting came)" in step.problem
    assert "SMTP_TIMEOUT" in step.hint and "SMTP_SECURITY=ssl" not in step.hint and error.transient


@pytest.mark.parametrize("mode", ["starttls", "ssl", "none"])
def test_each_step_that_waits_is_told_before_it_waits(stored, password, tls_context, ca_file, mode):
    tls = None if mode == "none" else tls_context
    login = None if mode == "none" else (USERNAME, password)  # `none`: a server on this machine asks for none
    with FaultServer(tls=tls, implicit_tls=mode == "ssl", credentials=login) as server:
        events: list[str] = []

        def started(title: str) -> None:
            events.append(f"start {title}")
            if title.startswith("connect"):
                assert server.connections == 0  # told before it connects
            assert server.auth_attempts == []  # and each before any login

        settings = account(server.port, mode, stored, ca_file)
        result = check(settings, on_step=lambda step: events.append(step.title), on_start=started)
    assert result.ok, result.failed
    name = f"connect {LOOPBACK}:{server.port}"
    login_steps = ["login"] if mode == "none" else ["keyring", f"start login as {USERNAME}", f"login as {USERNAME}"]
    assert events == [f"start {name}", name, "start TLS", "TLS", *login_steps]


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate(stored, password, tls_context, mode):
    with FaultServer(tls=tls_context, implicit_tls=mode == "ssl", credentials=(USERNAME, password)) as server:
        error, step, steps = both_ways(account(server.port, mode, stored), password)
        assert server.auth_attempts == []
    same_cause(error, step)
    assert error.stage == "tls" and step.name == "tls" and steps[0].name == "connect" and steps[0].ok
    assert "is not trusted" in step.problem and "SMTP_CA_FILE" in step.hint and not error.transient


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_a_certificate_for_another_host(stored, password, ca, ca_file, mode):
    wrong = server_context(ca, "mail.other.example")
    with FaultServer(tls=wrong, implicit_tls=mode == "ssl", credentials=(USERNAME, password)) as server:
        error, step, _ = both_ways(account(server.port, mode, stored, ca_file), password)
    same_cause(error, step)
    assert error.stage == "tls" and step.name == "tls"
    assert "another host name" in step.problem and "SMTP_HOST" in step.hint


def test_a_refused_connection(stored, password, ca_file):
    error, step, steps = both_ways(account(closed_port(), "starttls", stored, ca_file), password)
    same_cause(error, step)
    assert error.stage == "tcp" and step.name == "connect" and len(steps) == 1
    assert "refused the connection" in step.problem and "SMTP_PORT" in step.hint and error.transient


def test_a_refused_login(stored, password, tls_context, ca_file):
    server = FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"auth": "535 5.7.8 No"})
    with server:
        error, step, steps = both_ways(account(server.port, "starttls", stored, ca_file), password)
    same_cause(error, step)
    assert error.stage == "login" and step.name == "login" and step.reply == "535 5.7.8 No" and error.code == 535
    assert [s.name for s in steps] == ["connect", "tls", "keyring", "login"]
    assert "app password" in step.hint and step.commands == (Command("password", "set"),)


def test_a_password_quoted_back_never_appears(stored, password, tls_context, ca_file):
    forms = [password, base64.b64encode(f"\0{USERNAME}\0{password}".encode()).decode().rstrip("=")]
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), echo_auth=True) as server:
        error, step, _ = both_ways(account(server.port, "starttls", stored, ca_file), password)
    shown = [str(error), error.reply, step.problem, step.hint, step.reply]
    assert not any(form in text for form in forms for text in shown)
    assert "[password hidden]" in step.reply and "[password hidden]" in error.reply
    same_cause(error, step)


def test_a_working_account_passes_every_step_with_the_certificate_line(stored, password, tls_context, ca_file):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        result = check(account(server.port, "starttls", stored, ca_file))
        assert server.messages == [] and len(server.auth_attempts) == 1
    assert result.ok and [s.name for s in result.steps] == ["connect", "tls", "keyring", "login"]
    detail = result.steps[1].detail
    assert detail.startswith("TLS") and ", certificate: " in detail and ", valid until " in detail


def test_no_stored_password_names_the_command(keyring_home, password, tls_context, ca_file):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        result = check(account(server.port, "starttls", keyring_home, ca_file))
        assert server.auth_attempts == []
    failed = result.failed
    assert failed is not None and failed.name == "keyring" and failed.exit_code == EXIT_BAD_INPUT
    assert failed.hint == "store it with `python send.py password set` (or run `python send.py setup` again)"
    assert failed.commands == (Command("password", "set"), Command("setup"))


def test_no_keyring_backend_gives_the_numbered_choices():
    step = backend_step("keyring.backends.fail.Keyring", {})
    assert step is not None and step.exit_code == EXIT_BAD_INPUT and "no usable keyring backend" in step.problem
    assert step.guidance == tuple(keyring_guidance(environ={}))
    assert any(line.startswith("  1. ") for line in step.guidance)
    assert any(line.startswith("  2. ") and "keyrings.alt" in line for line in step.guidance)
    assert Command("password", "set") in step.commands


def test_the_keyring_advice_is_one_text():
    lines = keyring_guidance("linux", {})
    one_line = credentials.no_backend_help("linux")
    assert "\n" not in one_line
    for line in lines[1:]:
        assert line.strip().removeprefix("1. ").removeprefix("2. ") in one_line
