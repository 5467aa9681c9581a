"""jobmail.smtp.explain: one table from an exception at a stage to a Problem (what, fix, reply, exit code,
transient), the same for the send's one-line error and the check's step."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from jobmail import settings as config
from jobmail.errors import Command, SendError
from jobmail.smtp import explain as why
from jobmail.smtp.explain import Failed, Problem, explain


def remote(**values: str) -> config.Settings:
    return config.from_values({"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "587", **values})


def test_the_send_error_is_the_problem_then_the_fix():
    problem = explain(ConnectionRefusedError(111, "Connection refused"), remote(), "tcp")
    error = problem.error("tcp")
    assert isinstance(error, SendError) and isinstance(error, Failed)
    assert str(error) == f"{problem.problem}: {problem.hint}"
    assert error.problem is problem and error.stage == "tcp" and error.transient is problem.transient is True


def test_a_next_step_is_a_command_in_the_parts():
    problem = why.login_refused(535, "5.7.8 Bad credentials", remote(SMTP_USERNAME="alex@example.com"))
    assert problem.commands == (Command("password", "set"),)
    assert problem.hint.endswith("store the right one with `python send.py password set`")
    error = problem.error("login")
    assert error.commands == (Command("password", "set"),) and error.code == 535
    assert error.reply == "5.7.8 Bad credentials" and problem.server_reply == "535 5.7.8 Bad credentials"
    assert error.transient is False


def test_a_temporary_login_refusal_is_transient():
    problem = why.login_refused(454, "4.7.0 Try later", remote())
    assert problem.transient and "try again" in problem.hint


@pytest.mark.parametrize(
    ("code", "message", "expected", "setting"),
    [
        (62, "Hostname mismatch, certificate is not valid for 'smtp.example.com'.", "another host name", "SMTP_HOST"),
        (64, "IP address mismatch, certificate is not valid for '192.0.2.1'.", "another host name", "SMTP_HOST"),
        (10, "certificate has expired", "has expired", "date and time"),
        (9, "certificate is not yet valid", "is not valid yet", "date and time"),
        (20, "unable to get local issuer certificate", "is not trusted", "SMTP_CA_FILE"),
    ],
)
def test_certificate_errors_are_matched_by_their_verify_code(code, message, expected, setting):
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    exc.verify_code = code
    exc.verify_message = "something else entirely"  # the code decides, not the words
    problem = explain(exc, remote(), "tls")
    assert expected in problem.problem and setting in problem.hint
    assert not problem.transient and problem.exit_code == 1


def test_a_certificate_error_without_a_code_falls_back_to_its_text():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: Hostname mismatch")
    assert "another host name" in explain(exc, remote(), "tls").problem
    plain = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert "not trusted" in explain(plain, remote(), "tls").problem


def test_an_untrusted_certificate_with_a_ca_file_names_that_file(ca_file):
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = 20
    problem = explain(exc, remote(SMTP_CA_FILE=str(ca_file)), "tls")
    assert f"SMTP_CA_FILE={ca_file}" in problem.hint


@pytest.mark.parametrize(
    ("stage", "security", "expected", "fix"),
    [
        ("tcp", "starttls", "did not answer within 30s while connecting", "firewall"),
        (
            "greeting",
            "starttls",
            "did not answer within 30s while connecting (no SMTP greeting came)",
            "SMTP_TIMEOUT",  # the port was asked and speaks no TLS: a slow server
        ),
        ("greeting", "ssl", "no SMTP greeting came", "SMTP_TIMEOUT"),
        ("envelope", "starttls", "did not answer within 30s while giving the sender and recipients", "SMTP_TIMEOUT"),
    ],
)
def test_a_timeout_is_told_by_its_stage(stage, security, expected, fix):
    port = "465" if security == "ssl" else "587"
    problem = explain(TimeoutError("timed out"), remote(SMTP_SECURITY=security, SMTP_PORT=port), stage)
    assert expected in problem.problem and fix in problem.hint and problem.transient


def test_a_closed_connection_at_the_greeting_points_at_the_tls_mode():
    problem = explain(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), remote(), "greeting")
    assert "closed the connection while connecting" in problem.problem and "SMTP_SECURITY=ssl" in problem.hint


def test_ssl_against_a_plain_port_says_wrong_version_and_starttls():
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    problem = explain(exc, remote(SMTP_SECURITY="ssl", SMTP_PORT="587"), "tls")
    assert "wrong version number" in problem.problem and "SMTP_SECURITY=starttls" in problem.hint
    assert "SMTP_PORT=465" in problem.hint


def test_a_host_that_is_not_found_is_permanent():
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    problem = explain(exc, remote(), "tcp")
    assert problem.problem == "the host smtp.example.com was not found (Name or service not known)"
    assert "SMTP_HOST" in problem.hint and not problem.transient


@pytest.mark.parametrize(
    ("code", "what", "fix"),
    [
        (550, "the recipient a@b.example", "check the address"),
        (553, "the sender a@b.example", "FROM_ADDRESS must be"),
        (552, "the message", "too large"),
        (451, "the recipient a@b.example", "try again later"),
        (530, "the sender a@b.example", "SMTP_SECURITY=starttls"),
    ],
)
def test_a_refused_command_names_what_and_what_to_do(code, what, fix):
    text = "5.7.0 Must issue a STARTTLS command first" if code == 530 else "x"
    problem = why.refused(remote(), what, code, text)
    assert problem.problem == f"smtp.example.com:587 refused {what}: {code} {text}" and fix in problem.hint
    assert problem.code == code and problem.transient is (400 <= code < 500)


def test_a_redacted_problem_keeps_everything_but_the_password():
    secret = "s3cret-value"
    problem = Problem((f"refused {secret}: ",), ("store it with ", Command("password", "set")), 535, f"bad {secret}")
    clean = problem.redacted("alex@example.com", [secret])
    assert secret not in clean.problem + clean.hint + clean.reply and why.HIDDEN in clean.problem + clean.reply
    assert clean.commands == problem.commands and clean.code == 535
