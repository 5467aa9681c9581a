"""Real parts for every test: an SMTP server on 127.0.0.1 (aiosmtpd) with STARTTLS, implicit TLS and
AUTH and trustme certificates; a real keyring backend (keyrings.alt's file backend) in a temp dir;
the CLI run in-process and as a subprocess, the way a user runs it.

The test password is made fresh for each run: no secret is committed with the tests.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from jobmail.loopback import LOOPBACK, LoopbackServer

PROJECT = Path(__file__).resolve().parent.parent
SEND_PY = PROJECT / "send.py"
USERNAME = "alex@example.com"
KEYRING_BACKEND = "keyrings.alt.file.PlaintextKeyring"
# Settings that might leak in from the developer's own shell.
SCRUB = ("SMTP_", "FROM_", "LOG_DIR", "TEMPLATES_DIR", "KEYRING_BACKEND", "PYTHON_KEYRING_BACKEND", "SEND_")


def _project_log_state() -> dict[str, tuple[int, int]]:
    folder = PROJECT / "log"
    paths = [folder / "sent.jsonl", *sorted((folder / "messages").glob("*"))]
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths if p.exists()}


@pytest.fixture(scope="session", autouse=True)
def project_log_untouched():
    """No test may write to the project's own sent log (a user's real records): a command run without
    LOG_DIR would, so this fails the run if any did."""
    before = _project_log_state()
    yield
    assert _project_log_state() == before, "a test wrote to the project's own log/: give it LOG_DIR"


@pytest.fixture(scope="session")
def password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_context(ca) -> ssl.SSLContext:
    return server_context(ca, LOOPBACK, "localhost")


@dataclass
class Account:
    """A server, a .env pointing at it, and a keyring directory: one user's whole set-up."""

    server: LoopbackServer
    env_file: Path
    home: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, args: tuple[str, ...], env_file: bool = True) -> list[str]:
        """`python send.py ARGS`, with this account's --env-file added (`password` takes it after its action)."""
        argv = [sys.executable, str(SEND_PY), *args]
        if env_file and "--env-file" not in args and args and args[0] not in ("password",):
            argv += ["--env-file", str(self.env_file)]
        return argv

    def run(self, *args: str, input: str | None = None, env_file: bool = True, timeout: float = 60):
        return subprocess.run(
            self.argv(args, env_file),
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=timeout,
            encoding="utf-8",
        )

    def start(self, *args: str) -> subprocess.Popen:
        """Start `python send.py ARGS` without waiting for it (to interrupt or kill it)."""
        return subprocess.Popen(
            self.argv(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=self.env,
            cwd=self.home,
        )

    def records(self) -> list[dict]:
        path = self.log_dir / "sent.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def write_env(self, **values: str) -> None:
        lines = [f"{key}={value}" for key, value in values.items()]
        self.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def store_password(self, password: str) -> None:
        result = self.run("password", "set", "--stdin", "--env-file", str(self.env_file), input=password + "\n")
        assert result.returncode == 0, result.stderr


def imports_package(account: Account, args: tuple[str, ...], package: str) -> tuple[bool, object, str]:
    """Run `python send.py ARGS` in a fresh interpreter, as the user would; returns whether any module of
    `package` was imported, the exit code, and stderr (for a failure's message)."""
    argv = list(account.argv(tuple(args)))[2:]
    code = (
        "import sys\nfrom jobmail.cli import main\n"
        f"try:\n    code = main({argv!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print('IMPORTED', any(m.split('.')[0] == {package!r} for m in sys.modules), code, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=account.env, cwd=account.home, timeout=60
    )
    _, imported, exit_code = result.stderr.strip().splitlines()[-1].split(" ")
    return imported == "True", int(exit_code) if exit_code.lstrip("-").isdigit() else exit_code, result.stderr


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    """Poll `condition` (for a subprocess to reach a state) until it holds, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def clean_environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(
        PYTHON_KEYRING_BACKEND=KEYRING_BACKEND,
        XDG_DATA_HOME=str(home / "data"),  # keyrings.alt's file lives under it (Linux)
        LOCALAPPDATA=str(home / "data"),  # and there on Windows
        PYTHONIOENCODING="utf-8",
        COLUMNS="120",
    )
    env["PYTHONPATH"] = str(PROJECT)
    return env


@pytest.fixture
def keyring_home(tmp_path, monkeypatch):
    """A real keyring backend for in-process code: keyrings.alt's file backend under tmp_path."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", KEYRING_BACKEND)  # chosen on purpose, as a user would name it
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield home
    keyring.set_keyring(previous)


def account_values(port: int, mode: str, home: Path) -> dict[str, str]:
    """The .env of a test account on the loopback server at `port` (without SMTP_CA_FILE)."""
    return {
        "SMTP_HOST": LOOPBACK,
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": mode,
        "SMTP_USERNAME": USERNAME,
        "SMTP_TIMEOUT": "5",
        "FROM_ADDRESS": USERNAME,
        "FROM_NAME": "Alex Example",
        "LOG_DIR": str(home / "log"),
        "SEND_RETRY_DELAY": "0",
        "KEYRING_BACKEND": KEYRING_BACKEND,
    }


@pytest.fixture
def make_account(tmp_path, tls_context, ca_file, password):
    """make_account(mode, ...) -> Account, its server running. mode: "starttls" | "ssl" | "none" (the
    account's SMTP_SECURITY and the server's TLS); auth: the server asks for a login; handler: aiosmtpd's
    handler (default: a recorder); ca: write SMTP_CA_FILE; tls: the server's own SSL context;
    plain_server: a server that offers no TLS at all, whatever the mode; without: settings to leave out
    of the .env; settings: each further KEY=value of the .env (they override the defaults)."""
    started: list[LoopbackServer] = []

    def make(
        mode: str = "starttls",
        *,
        auth: bool = True,
        handler=None,
        ca: bool = True,
        tls: ssl.SSLContext | None = None,
        plain_server: bool = False,
        without: tuple[str, ...] = (),
        **settings: object,
    ) -> Account:
        home = tmp_path / f"user{len(started)}"
        home.mkdir()
        credentials = (USERNAME, password) if auth else None
        if plain_server:
            server = LoopbackServer(handler, credentials=credentials)
        else:
            server = LoopbackServer(
                handler,
                tls=None if mode == "none" else (tls or tls_context),
                implicit_tls=mode == "ssl",
                credentials=credentials,
            )
        server.start()
        started.append(server)
        values = account_values(server.port, mode, home)
        if ca and mode != "none":
            values["SMTP_CA_FILE"] = str(ca_file)
        values.update({key: str(value) for key, value in settings.items()})
        account = Account(server, home / ".env", home, home / "log", clean_environ(home))
        account.write_env(**{key: value for key, value in values.items() if key not in without})
        return account

    yield make
    for server in started:
        server.stop()


WITHDRAW_ARGS = (
    "send",
    "withdraw",
    "--to",
    "jordan.lee@acme.example.com",
    "--interviewer",
    "Jordan Lee",
    "--position",
    "Data Analyst",
    "--company",
    "Acme",
)
