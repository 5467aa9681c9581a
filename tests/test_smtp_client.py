"""jobmail.smtp.client: one connection path by stages, login, and errors that keep their parts redacted."""

from __future__ import annotations

import logging

import pytest
from conftest import USERNAME
from faultserver import FaultServer

from jobmail import settings as config
from jobmail.errors import Command, OutcomeUnknown, SendError
from jobmail.loopback import LOOPBACK
from jobmail.smtp import client
from jobmail.smtp.explain import HIDDEN, Failed

TO = "jordan.lee@acme.example.com"
MESSAGE = b"Subject: Hi\r\n\r\nHello\r\n"


def settings_for(port: int, mode: str, ca_file=None, **values: str) -> config.Settings:
    base = {
        "SMTP_HOST": LOOPBACK,
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": mode,
        "SMTP_USERNAME": USERNAME,
        "SMTP_TIMEOUT": "5",
        "FROM_ADDRESS": USERNAME,
        "SEND_ATTEMPTS": "1",
    }
    if ca_file is not None:
        base["SMTP_CA_FILE"] = str(ca_file)
    return config.from_values({**base, **values})


@pytest.mark.parametrize(
    ("mode", "stages"),
    [
        ("starttls", ["tcp", "greeting", "ehlo"]),
        ("ssl", ["tcp", "tls", "greeting", "ehlo"]),
        ("none", ["tcp", "greeting", "ehlo"]),
    ],
)
def test_connect_goes_through_its_stages(tls_context, ca_file, mode, stages):
    reached: list[str] = []
    with FaultServer(tls=None if mode == "none" else tls_context, implicit_tls=mode == "ssl") as server:
        session = client.connect(settings_for(server.port, mode, ca_file), reached=reached.append)
        try:
            assert reached == stages
            assert (session.tls is None) is (mode == "none")
            if mode != "none":
                assert session.certificate is not None and session.certificate.startswith(f"{session.tls}, ")
        finally:
            session.close()


def test_a_greeting_refusal_is_known_by_its_stage(tls_context, ca_file):
    with FaultServer(tls=tls_context, always={"connect": "554 5.7.1 No SMTP service here"}) as server:
        with pytest.raises(Failed) as caught:
            client.connect(settings_for(server.port, "starttls", ca_file))
    assert caught.value.stage == "greeting" and caught.value.code == 554
    assert "554 5.7.1 No SMTP service here" in str(caught.value)


def test_a_non_ascii_password_logs_in_over_tls(tls_context, ca_file):
    secret = "pässwörd-ünïcode"
    with FaultServer(tls=tls_context, credentials=(USERNAME, secret)) as server:
        done = client.send(settings_for(server.port, "starttls", ca_file), lambda: secret, USERNAME, [TO], MESSAGE)
        assert server.auth_attempts == [(USERNAME, True)] and len(server.messages) == 1
    assert done.code == 250 and done.tls is not None and done.attempts == 1


def test_a_lost_reply_after_the_data_is_outcome_unknown(tls_context, ca_file, password):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"eod": "close"}) as server:
        with pytest.raises(OutcomeUnknown, match="may have been delivered"):
            client.send(settings_for(server.port, "starttls", ca_file), lambda: password, USERNAME, [TO], MESSAGE)
        assert server.connections == 1  # never retried


def test_a_redacted_error_keeps_its_class_parts_and_numbers():
    secret = "hunter2-secret"
    error = client.classify(
        __import__("smtplib").SMTPAuthenticationError(535, f"bad {secret}".encode()),
        settings_for(1, "starttls"),
        stage="login",
    )
    error.attempts = 3
    clean = client._redacted(error, USERNAME, [secret], suffix=" (gave up)")
    assert type(clean) is type(error) and isinstance(clean, Failed) and clean.stage == "login"
    assert (clean.code, clean.transient, clean.attempts) == (535, False, 3)
    assert secret not in str(clean) + clean.reply and HIDDEN in clean.reply and str(clean).endswith(" (gave up)")
    assert clean.commands == (Command("password", "set"),)
    assert secret not in clean.problem.problem + clean.problem.reply
    plain = client._redacted(SendError("no ", secret, code=550, reply=secret), USERNAME, [secret])
    assert type(plain) is SendError and str(plain) == f"no {HIDDEN}" and plain.reply == HIDDEN and plain.code == 550


# -- round trips: PIPELINING for the envelope, QUIT not waited for -------------------------------------

CC = "hr@acme.example.com"


def send_through(server: FaultServer, ca_file, password: str, recipients=(TO, CC), **values: str) -> client.Delivered:
    settings = settings_for(server.port, "starttls", ca_file, **values)
    return client.send(settings, lambda: password, USERNAME, list(recipients), MESSAGE)


def test_with_pipelining_the_envelope_goes_in_one_round_trip(tls_context, ca_file, password):
    """A "strict" server answers MAIL only once the RCPT has arrived too: a client that waited for each
    reply would stall there until its timeout."""
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), pipelining="strict") as server:
        done = send_through(server, ca_file, password, SMTP_TIMEOUT="30")
        assert done.code == 250
        (received,) = server.messages
        assert received.rcpt_tos == [TO, CC] and received.data == MESSAGE
        assert server.wait_for(lambda s: "QUIT" in s.commands), "the QUIT was never sent"  # not waited for
        assert server.commands[-5:] == ["MAIL", "RCPT", "RCPT", "DATA", "QUIT"]


def test_with_pipelining_a_refused_recipient_still_sends_nothing(tls_context, ca_file, password):
    faults = {f"rcpt:{CC}": "550 5.1.1 <hr@acme.example.com>: Recipient address rejected"}
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), pipelining="on", always=faults) as server:
        with pytest.raises(SendError) as refused:
            send_through(server, ca_file, password)
        assert refused.value.code == 550 and CC in str(refused.value)
        assert "DATA" not in server.commands and server.messages == []


def test_with_pipelining_a_421_then_a_hang_up_is_told_by_the_421_and_retried(tls_context, ca_file, password):
    script = [{"mail": "421 4.3.2 Too busy, come back later\nclose"}]
    server = FaultServer(tls=tls_context, credentials=(USERNAME, password), pipelining="on", script=script)
    with server:
        done = send_through(server, ca_file, password, SEND_ATTEMPTS="2", SEND_RETRY_DELAY="0")
        assert done.code == 250 and done.attempts == 2
        assert len(server.messages) == 1 and server.connections == 2


def test_without_pipelining_each_command_waits_for_its_reply(tls_context, ca_file, password):
    faults = {"mail": "451 4.3.0 Try again later"}
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always=faults) as server:
        with pytest.raises(SendError) as refused:
            send_through(server, ca_file, password)
        assert refused.value.code == 451
        assert "RCPT" not in server.commands  # not sent after a refused MAIL


def test_the_reply_to_quit_is_not_waited_for(tls_context, ca_file, password):
    """The server has accepted the message: a QUIT that never gets an answer does not hold the send."""
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"quit": "stall"}) as server:
        done = send_through(server, ca_file, password, SMTP_TIMEOUT="60")
        assert done.code == 250 and len(server.messages) == 1
        assert server.wait_for(lambda s: "QUIT" in s.commands), "the QUIT was never sent"


def test_a_plaintext_connection_goes_to_the_address_localhost_resolved_to():
    with FaultServer() as server:
        session = client.connect(settings_for(server.port, "none", SMTP_HOST="localhost"))
        try:
            assert session.conn.sock.getpeername()[0] == LOOPBACK
        finally:
            session.close()


def test_a_plaintext_connection_is_refused_when_the_name_stops_being_loopback():
    settings = settings_for(1, "none").replace(smtp_host="jobmail-test.invalid")  # changed after the check
    with pytest.raises(Failed) as caught:
        client.connect(settings)
    assert "does not resolve to loopback addresses only" in str(caught.value)


# -- CHUNKING (RFC 3030): BDAT ... LAST instead of DATA, where the server offers it ---------------------

DOTTED = b"Subject: Hi\r\n\r\nHello\r\n.\r\n..two dots\r\n.one dot\r\n"


def chunking_server(tls_context, password, chunking="on", **kwargs) -> FaultServer:
    return FaultServer(tls=tls_context, credentials=(USERNAME, password), pipelining="on", chunking=chunking, **kwargs)


def test_with_chunking_the_message_goes_with_its_command_exactly_as_it_is(tls_context, ca_file, password):
    """No DATA round trip, no dot-stuffing: the server holds the very bytes, a line of one dot included."""
    with chunking_server(tls_context, password) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        done = client.send(settings, lambda: password, USERNAME, [TO, CC], DOTTED)
        assert done.code == 250
        (received,) = server.messages
        assert received.data == DOTTED and received.rcpt_tos == [TO, CC]
        assert server.wait_for(lambda s: "QUIT" in s.commands), "the QUIT was never sent"
        assert server.commands[-5:] == ["MAIL", "RCPT", "RCPT", "BDAT", "QUIT"]
        assert "DATA" not in server.commands


def test_with_chunking_a_message_without_a_last_line_end_gets_one(tls_context, ca_file, password):
    with chunking_server(tls_context, password) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        client.send(settings, lambda: password, USERNAME, [TO], b"Subject: Hi\n\nHello")
        assert server.messages[0].data == b"Subject: Hi\r\n\r\nHello\r\n"


@pytest.mark.parametrize("drop", ["close", "reset", "stall"])
def test_with_chunking_a_drop_after_the_message_is_unknown_and_not_retried(tls_context, ca_file, password, drop):
    with chunking_server(tls_context, password, always={"eod": drop}) as server:
        settings = settings_for(server.port, "starttls", ca_file, SMTP_TIMEOUT="2", SEND_ATTEMPTS="3")
        with pytest.raises(OutcomeUnknown) as lost:
            client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, sleep=lambda s: None)
        assert "may have been delivered" in str(lost.value)
        assert server.connections == 1 and len(server.messages) == 1  # the server has it: never sent twice


def test_with_chunking_a_refusal_of_the_message_is_a_failure_that_says_why(tls_context, ca_file, password):
    faults = {"eod": "554 5.7.1 Message rejected as spam"}
    with chunking_server(tls_context, password, always=faults) as server:
        with pytest.raises(SendError) as refused:
            send_through(server, ca_file, password, SEND_ATTEMPTS="3", SEND_RETRY_DELAY="0")
        assert not isinstance(refused.value, OutcomeUnknown)
        assert refused.value.code == 554 and "Message rejected as spam" in str(refused.value)
        assert server.connections == 1 and server.messages == []


def test_a_server_that_offers_chunking_and_refuses_bdat_has_nothing_sent(tls_context, ca_file, password):
    """It says CHUNKING, then answers 500 to BDAT (and reads the message as commands): a refusal, not a
    delivery and not an unknown outcome."""
    with chunking_server(tls_context, password, chunking="lie") as server:
        with pytest.raises(SendError) as refused:
            send_through(server, ca_file, password)
        assert not isinstance(refused.value, OutcomeUnknown)
        assert refused.value.code == 500 and server.messages == []


def test_with_chunking_a_refused_recipient_sends_no_chunk(tls_context, ca_file, password):
    faults = {f"rcpt:{CC}": "550 5.1.1 Recipient address rejected"}
    with chunking_server(tls_context, password, always=faults) as server:
        with pytest.raises(SendError) as refused:
            send_through(server, ca_file, password)
        assert refused.value.code == 550
        assert "BDAT" not in server.commands and server.messages == []


def test_a_pipelining_server_that_answers_part_of_the_group_and_stalls_sends_nothing(tls_context, ca_file, password):
    """MAIL answered, the RCPT never: the envelope times out, nothing of the message goes out, and the
    attempt is retried as any timeout before the message is."""
    script = [{f"rcpt:{CC}": "stall"}]
    with chunking_server(tls_context, password, script=script) as server:
        done = send_through(server, ca_file, password, SMTP_TIMEOUT="2", SEND_ATTEMPTS="2", SEND_RETRY_DELAY="0")
        assert done.attempts == 2 and server.connections == 2
        assert len(server.messages) == 1  # the second attempt's only


def test_the_loopback_server_with_chunking_takes_bdat(tls_context, ca_file, password):
    """jobmail.loopback's aiosmtpd server (the benchmark's) with CHUNKING: the message arrives as sent."""
    from jobmail.loopback import LoopbackServer

    with LoopbackServer(tls=tls_context, credentials=(USERNAME, password), chunking=True) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        done = client.send(settings, lambda: password, USERNAME, [TO, CC], DOTTED)
        assert done.code == 250
        (received,) = server.messages
        assert received.data == DOTTED and received.rcpt_tos == [TO, CC]


@pytest.mark.parametrize("mechanisms", ["PLAIN", "LOGIN", "CRAM-MD5", "CRAM-MD5 LOGIN PLAIN"])
def test_the_login_uses_one_mechanism_the_server_offers(tls_context, ca_file, password, mechanisms):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), mechanisms=mechanisms) as server:
        done = client.send(settings_for(server.port, "starttls", ca_file), lambda: password, USERNAME, [TO], MESSAGE)
        assert done.code == 250 and server.auth_attempts == [(USERNAME, True)]
        assert server.messages[0].data == MESSAGE


def test_a_server_that_asks_again_for_plains_initial_response_gets_it_once(tls_context, ca_file, password):
    """Not as RFC 4954 has it, but seen: a 334 to AUTH PLAIN <response> is answered with it again."""
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), plain_asks_again=True) as server:
        done = client.send(settings_for(server.port, "starttls", ca_file), lambda: password, USERNAME, [TO], MESSAGE)
        assert done.code == 250 and server.auth_attempts == [(USERNAME, True)]
        assert server.messages[0].data == MESSAGE


# -- the connection opened ahead (#19) ---------------------------------------------------------------


def ahead_for(settings):
    from jobmail.smtp.ahead import Ahead

    ahead = Ahead(settings)
    ahead.go(client.connect)
    ahead.give([])  # no password known ahead: the send's own is hidden as it logs in
    return ahead


def test_a_connection_opened_ahead_and_not_used_ends_with_quit_having_sent_nothing(tls_context, ca_file, password):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        ahead = ahead_for(settings_for(server.port, "starttls", ca_file))
        assert server.wait_for(lambda s: s.commands == ["EHLO", "STARTTLS", "EHLO"]), server.commands
        assert ahead.finished(10)
        ahead.close()
        assert server.wait_for(lambda s: "QUIT" in s.commands), server.commands
        assert server.commands == ["EHLO", "STARTTLS", "EHLO", "QUIT"] and server.auth_attempts == []


@pytest.mark.parametrize("told_by", ["give", "take"])
def test_a_connection_opened_ahead_reads_no_reply_before_it_knows_the_password(
    tls_context, ca_file, password, caplog, told_by
):
    """The thread may connect (and build its TLS context) before the keyring has answered, but it reads not
    one reply before give() (or, for a caller that never gave one, take()) says what to hide: a greeting
    that quotes the password is read with the password hidden."""
    from jobmail.smtp.ahead import Ahead

    greeting = f"220 hello, {password} ESMTP"
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"connect": greeting}) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        caplog.set_level(logging.DEBUG, logger="jobmail")
        ahead = Ahead(settings)
        ahead.go(client.connect)
        assert server.wait_for(lambda s: s.connections == 1)
        assert not ahead.finished(0.3) and server.commands == []  # the greeting is there, and not yet read
        if told_by == "give":
            ahead.give([password])
            assert ahead.finished(10) and ahead.password() == password
            done = client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead)
            assert done.attempts == 1 and server.connections == 1 and server.messages[0].data == MESSAGE
        else:
            ahead.take([password]).leave()
            assert server.commands[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert "S: 220 hello, [password hidden] ESMTP" in caplog.text and password not in caplog.text


def test_a_connection_opened_ahead_and_closed_before_the_password_came_sends_nothing(tls_context, ca_file, password):
    """The keyring failed, or Ctrl-C came at its prompt: close() ends the thread that waits for give()."""
    from jobmail.smtp.ahead import Ahead

    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        ahead = Ahead(settings_for(server.port, "starttls", ca_file, SMTP_TIMEOUT="60"))
        ahead.go(client.connect)
        assert server.wait_for(lambda s: s.connections == 1)
        ahead.close()
        assert ahead.finished(10), "the thread went on waiting for the password"
        assert server.wait_for(lambda s: s.ended == 1) and server.commands == []


def test_a_long_wait_for_the_keyring_does_not_use_up_the_attempt(tls_context, ca_file, password, monkeypatch):
    """The attempt's time limit (ATTEMPT_TIMEOUTS x SMTP_TIMEOUT) counts the server's time, not the
    keyring's: the thread that waited for the password longer than that still greets and sends."""
    from jobmail.smtp.ahead import Ahead

    monkeypatch.setattr(client, "ATTEMPT_TIMEOUTS", 1)  # an attempt of SMTP_TIMEOUT (2 s) in all
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        settings = settings_for(server.port, "starttls", ca_file, SMTP_TIMEOUT="2")
        ahead = Ahead(settings)
        ahead.go(client.connect)
        assert not ahead.finished(2.5)  # the keyring's prompt, longer than the attempt
        ahead.give([password])
        done = client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead)
        assert done.attempts == 1 and server.connections == 1 and server.messages[0].data == MESSAGE


def test_a_connection_that_waited_too_long_for_the_password_is_replaced(
    tls_context, ca_file, password, monkeypatch, caplog
):
    """Longer than PASSWORD_WAIT_LIMIT without an answer to its greeting (a keyring that asked to be unlocked), the
    connection may be closed by the server already: it is ended unused, and the same attempt connects anew."""
    from jobmail.smtp import ahead as early

    monkeypatch.setattr(early, "PASSWORD_WAIT_LIMIT", -1.0)  # every wait is too long
    greeting = f"220 hello, {password} ESMTP"  # the new connection hides the password given too
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"connect": greeting}) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        caplog.set_level(logging.DEBUG, logger="jobmail")
        ahead = early.Ahead(settings)
        ahead.go(client.connect)
        ahead.give([password])
        assert ahead.finished(10)
        assert server.wait_for(lambda s: s.ended == 1) and server.commands == []  # not a word on it
        done = client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead)
        assert done.attempts == 1 and server.connections == 2 and len(server.messages) == 1
    assert "S: 220 hello, [password hidden] ESMTP" in caplog.text and password not in caplog.text


def test_a_connection_opened_ahead_that_stalls_is_stopped_at_once_by_close(tls_context, ca_file, password):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"connect": "stall"}) as server:
        ahead = ahead_for(settings_for(server.port, "starttls", ca_file, SMTP_TIMEOUT="60"))
        assert server.wait_for(lambda s: s.connections == 1)
        assert not ahead.finished(0.2)  # waiting for a greeting that never comes
        ahead.close()
        assert ahead.finished(10), "the thread went on waiting for the greeting"
        assert server.commands == []


def test_a_send_on_a_connection_opened_ahead_is_the_same_send(tls_context, ca_file, password):
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), pipelining="on") as server:
        settings = settings_for(server.port, "starttls", ca_file)
        ahead = ahead_for(settings)
        done = client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead)
        assert done.code == 250 and done.attempts == 1 and server.connections == 1
        assert server.messages[0].data == MESSAGE


def test_a_connection_that_failed_ahead_is_the_first_attempt_and_the_retry_is_new(tls_context, ca_file, password):
    """It failed in the thread while the caller was still busy: the caller learns it when it takes the
    connection, as that attempt's failure (a 421: transient, retried on a new connection)."""
    script = [{"connect": "421 4.3.2 Too busy, come back later"}]
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), script=script) as server:
        settings = settings_for(server.port, "starttls", ca_file, SEND_ATTEMPTS="2", SEND_RETRY_DELAY="0")
        ahead = ahead_for(settings)
        assert ahead.finished(10)  # it has failed before anything takes it
        retried = []
        done = client.send(
            settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead, on_retry=lambda *a: retried.append(a[1])
        )
        assert done.attempts == 2 and server.connections == 2 and len(server.messages) == 1
        assert retried[0].code == 421 and "Too busy" in str(retried[0])


def test_a_connection_that_failed_ahead_for_good_is_told_as_the_send_tells_it(tls_context, ca_file):
    from faultserver import closed_port

    settings = settings_for(closed_port(), "starttls", ca_file, SEND_ATTEMPTS="1")
    ahead = ahead_for(settings)
    with pytest.raises(SendError) as without:
        client.send(settings, lambda: "pw", USERNAME, [TO], MESSAGE)
    with pytest.raises(SendError) as with_ahead:
        client.send(settings, lambda: "pw", USERNAME, [TO], MESSAGE, ahead=ahead)
    assert str(with_ahead.value) == str(without.value) and "refused" in str(without.value)


def test_a_connection_opened_ahead_and_left_idle_too_long_is_replaced(tls_context, ca_file, password, monkeypatch):
    """Ready, then unused for longer than IDLE_LIMIT (an IMAP search for --reply-to-latest, say): servers
    end idle sessions, so it is closed with QUIT and the same attempt connects anew."""
    from jobmail.smtp import ahead as early

    monkeypatch.setattr(early, "IDLE_LIMIT", 0.0)
    with FaultServer(tls=tls_context, credentials=(USERNAME, password)) as server:
        settings = settings_for(server.port, "starttls", ca_file)
        ahead = ahead_for(settings)
        assert ahead.finished(10)
        done = client.send(settings, lambda: password, USERNAME, [TO], MESSAGE, ahead=ahead)
        assert done.attempts == 1 and server.connections == 2 and len(server.messages) == 1
        # the idle one closed politely (its QUIT may come after the new one's first words: not awaited)
        assert server.wait_for(lambda s: s.commands.count("QUIT") == 2 and s.ended == 2), server.commands
        assert server.commands.count("EHLO") == 4 and server.commands.count("MAIL") == 1


def test_debug_never_shows_a_sasl_answer(tls_context, ca_file, caplog):
    """AUTH LOGIN sends the user name and the password as answers to the server's challenges: --debug
    shows them as [hidden], and nothing of the password (plain or base64) is in the log."""
    import base64
    import logging

    password = "Pässword-LOGIN-only-7"
    with FaultServer(tls=tls_context, credentials=(USERNAME, password), mechanisms="LOGIN") as server:
        settings = settings_for(server.port, "starttls", ca_file)
        with caplog.at_level(logging.DEBUG, logger="jobmail.smtp.client"):
            client.send(settings, lambda: password, USERNAME, [TO], MESSAGE)
        assert len(server.messages) == 1
    text = caplog.text
    forms = [password, base64.b64encode(password.encode()).decode().rstrip("=")]
    assert not [form for form in forms if form in text]
    assert "C: AUTH [hidden]" in text and "C: [hidden]" in text


class SilentTLSPeer:
    """A port that answers SMTP up to STARTTLS (with `starttls`), or nothing at all (implicit TLS), and
    then never answers the TLS handshake. `hello` is set once the client's first handshake bytes came."""

    def __init__(self, starttls: bool):
        import socket
        import threading

        self.hello = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._starttls = starttls
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn, conn.makefile("rb") as lines:
            if self._starttls:
                conn.sendall(b"220 silent ESMTP\r\n")
                lines.readline()  # EHLO
                conn.sendall(b"250-silent\r\n250 STARTTLS\r\n")
                lines.readline()  # STARTTLS
                conn.sendall(b"220 go ahead\r\n")
            if lines.read(1) == b"\x16":  # a TLS record: the ClientHello
                self.hello.set()
            self._stop.wait(60)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_close_stops_a_connection_opened_ahead_in_the_middle_of_its_tls_handshake(ca_file, mode):
    peer = SilentTLSPeer(starttls=mode == "starttls")
    try:
        ahead = ahead_for(settings_for(peer.port, mode, ca_file, SMTP_TIMEOUT="60"))
        assert peer.hello.wait(10), "the handshake never started"
        ahead.close()
        assert ahead.finished(10), "close() did not stop the handshake (it would wait for SMTP_TIMEOUT)"
    finally:
        peer.close()


def test_closing_a_connection_opened_ahead_does_not_wait_for_the_reply_to_quit(tls_context, ca_file, password):
    import threading

    with FaultServer(tls=tls_context, credentials=(USERNAME, password), always={"quit": "stall"}) as server:
        ahead = ahead_for(settings_for(server.port, "starttls", ca_file, SMTP_TIMEOUT="60"))
        assert ahead.finished(10)
        closing = threading.Thread(target=ahead.close, daemon=True)
        closing.start()
        closing.join(10)
        assert not closing.is_alive(), "close() waited for the reply to QUIT"
        assert server.wait_for(lambda s: "QUIT" in s.commands)
