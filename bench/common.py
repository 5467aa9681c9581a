"""Shared helpers for the benchmark scripts (bench/*.py).

- `Account`: a whole user set-up on loopback, made fresh in a temporary folder: an aiosmtpd server on
  127.0.0.1 with STARTTLS and AUTH and a trustme certificate, a `.env` pointing at it (with SMTP_CA_FILE),
  a file keyring (keyrings.alt) holding a fresh random password, and a log folder.
- `run_timed`: run one whole process and return its wall time and peak memory (max RSS).
- `alternate`: run several commands in turn, A B C A B C ..., after warm-up rounds.
- `Summary` and `paired_ratio`: median, min and max, and the median of the per-round ratios.

Only 127.0.0.1 is ever contacted. The password lives in memory and in the temporary file keyring only;
the floor script and mailmerge get it on standard input, never in an argument, a file or the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SEND_PY = PROJECT / "send.py"
BENCH_DIR = PROJECT / "bench"
LOOPBACK = "127.0.0.1"
USERNAME = "alex@example.com"
FROM_NAME = "Alex Example"
RECIPIENT = "jordan.lee@acme.example.com"
KEYRING_BACKEND = "keyrings.alt.file.PlaintextKeyring"
# Settings that might leak in from the user's own shell and change what is measured.
SCRUB = ("SMTP_", "FROM_", "LOG_DIR", "TEMPLATES_DIR", "KEYRING_BACKEND", "PYTHON_KEYRING_BACKEND", "SEND_")
RUN_TIMEOUT = 60.0  # seconds for one process; a hang fails the benchmark instead of stalling it

if str(PROJECT) not in sys.path:  # `python bench/X.py` puts bench/ first on the path, not the project
    sys.path.insert(1, str(PROJECT))


class BenchError(RuntimeError):
    """A benchmark step failed; the text says which and why (one line)."""


def require_modules(*names: str) -> None:
    """Fail early, with the fix, when the benchmark runs outside the project's virtual environment."""
    import importlib.util

    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: run the benchmark with the project's virtual environment "
            "(`.venv/bin/python bench/run.py`, after `.venv/bin/pip install -r requirements-dev.txt`)"
        )


# -- timing one process ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float
    max_rss: int | None  # bytes; None where the platform cannot tell (Windows)


# A tiny launcher (python -I -S: no site, no imports beyond builtins) that spawns the measured process,
# times it from spawn to exit, and reports its peak memory from os.wait4. It exists because a process's
# max RSS includes the memory of whatever forked it, up to the exec: spawned from the benchmark (tens of
# MiB with the SMTP server and trustme) every child would look that big. From this launcher the floor
# is the launcher's own ~8 MiB, well under anything a send needs.
LAUNCHER = """
import os, sys, time
argv = sys.argv[1:]
actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
start = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(repr(seconds), usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""
CAN_LAUNCH = hasattr(os, "posix_spawn") and hasattr(os, "wait4")


def run_timed(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stdin: bytes | None = None,
    secret: bytes | None = None,
    timeout: float = RUN_TIMEOUT,
) -> Sample:
    """Run one whole process to the end; return its wall time and, where supported, its peak memory.

    On POSIX the process runs under LAUNCHER, in a new session (no controlling terminal, so a program
    that asks for a password reads it from the pipe); its output goes to /dev/null and stderr is kept
    for the error message. Elsewhere (Windows) it runs directly, timed here, and memory is not known.

    `secret` (a password for a program that reads it neither from standard input nor from the keyring:
    msmtp) goes through a pipe the process inherits; SECRET_FD names the pipe's descriptor in its
    environment (the number, never the secret: nothing of it in a file, an argument or the environment).
    """
    fds: tuple[int, ...] = ()
    if secret is not None:
        read_end, write_end = os.pipe()  # a pipe holds far more than a password: the write never blocks
        os.write(write_end, secret)
        os.close(write_end)
        fds, env = (read_end,), {**env, SECRET_FD: str(read_end)}
    try:
        return _run_timed(argv, env=env, cwd=cwd, stdin=stdin, timeout=timeout, fds=fds)
    finally:
        for fd in fds:
            os.close(fd)


SECRET_FD = "BENCH_SECRET_FD"


def _run_timed(
    argv: list[str], *, env: dict[str, str], cwd: Path, stdin: bytes | None, timeout: float, fds: tuple[int, ...]
) -> Sample:
    with tempfile.TemporaryFile() as errors:
        launch = [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv] if CAN_LAUNCH else argv
        start = time.perf_counter()
        proc = subprocess.Popen(
            launch,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if CAN_LAUNCH else subprocess.DEVNULL,
            stderr=errors,
            env=env,
            cwd=cwd,
            start_new_session=CAN_LAUNCH,
            pass_fds=fds,
        )
        try:
            out, _ = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise BenchError(f"{_show(argv)} did not finish within {timeout:g}s") from None
        seconds, max_rss, code = time.perf_counter() - start, None, proc.returncode
        if CAN_LAUNCH and code == 0:
            text_seconds, text_rss, text_code = out.split()
            seconds, code = float(text_seconds), int(text_code)
            max_rss = int(text_rss) * (1 if sys.platform == "darwin" else 1024)  # ru_maxrss: bytes on macOS
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            raise BenchError(f"{_show(argv)} exited with {code}: {' | '.join(tail) or 'no output'}")
    return Sample(seconds, max_rss)


def _kill(proc: subprocess.Popen) -> None:
    if CAN_LAUNCH:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the process it runs
        except OSError:
            pass
    proc.kill()
    proc.wait()


def _show(argv: list[str]) -> str:
    shown = [Path(a).name if os.sep in a else a for a in argv[:3]]
    return " ".join(shown) + (" ..." if len(argv) > 3 else "")


# -- alternating runs and statistics -----------------------------------------------------------


@dataclass
class Command:
    """A labelled command: `run(i)` runs it once (i counts every call, warm-up included)."""

    label: str
    shown: str  # the command line as the report shows it
    run: Callable[[int], Sample]
    samples: list[Sample] = field(default_factory=list)
    calls: int = 0

    def once(self) -> Sample:
        sample = self.run(self.calls)
        self.calls += 1
        return sample


def alternate(commands: list[Command], runs: int, warmup: int) -> None:
    """Warm-up rounds (not recorded), then `runs` rounds of A B C ..., in the same order each round."""
    for _ in range(warmup):
        for command in commands:
            command.once()
    for _ in range(runs):
        for command in commands:
            command.samples.append(command.once())


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values), len(values))


def seconds_of(command: Command) -> Summary:
    return Summary.of([s.seconds for s in command.samples])


def rss_of(command: Command) -> Summary | None:
    values = [s.max_rss for s in command.samples if s.max_rss is not None]
    return Summary.of(values) if values else None


def paired_ratio(a: Command, b: Command) -> float:
    """The median, over rounds, of a's time divided by b's time in the same round."""
    return statistics.median(x.seconds / y.seconds for x, y in zip(a.samples, b.samples, strict=True))


# -- the loopback account ----------------------------------------------------------------------


def child_environ(home: Path) -> dict[str, str]:
    """The environment of every measured process: the user's, minus jobmail settings, plus a temp keyring."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(
        PYTHON_KEYRING_BACKEND=KEYRING_BACKEND,  # never the user's real keyring, even without the .env line
        XDG_DATA_HOME=str(home / "data"),  # keyrings.alt's file lives under it (Linux)
        LOCALAPPDATA=str(home / "data"),  # and there on Windows
        PYTHONIOENCODING="utf-8",
        COLUMNS="120",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cold start means a new process, not a missing .pyc cache
    return env


class Account:
    """A server, a .env pointing at it, a file keyring with the password, and a log folder, in a temp dir.

    Use as `with Account() as account:`; `account.server.messages` holds what the server received.
    A second server, `ssl_server`, speaks TLS from the first byte (port-465 style), with the same account.
    """

    def __init__(self, root: Path | None = None):
        self._own_root = root is None
        self.home = Path(tempfile.mkdtemp(prefix="jobmail-bench-")) if root is None else Path(root)
        self.log_dir = self.home / "log"
        self.env_file = self.home / ".env"
        self.ca_file = self.home / "ca.pem"
        self.env = child_environ(self.home)
        self.password = "pw-" + secrets.token_urlsafe(18)  # fresh per run; never written outside the keyring
        self.server = None
        self.ssl_server = None
        self.values: dict[str, str] = {}

    def __enter__(self) -> Account:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        import ssl

        import trustme

        from jobmail.loopback import LoopbackServer

        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns about its own deprecations
        # the implicit-TLS server requires no STARTTLS (it is all TLS), which aiosmtpd warns about
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(LOOPBACK, "localhost").configure_cert(context)
        # PIPELINING and CHUNKING offered, as Postfix, Gmail and Microsoft 365 offer them
        account = (USERNAME, self.password)
        self.server = LoopbackServer(tls=context, credentials=account, chunking=True).start()
        self.ssl_server = LoopbackServer(tls=context, implicit_tls=True, credentials=account, chunking=True).start()
        self.values = values = {
            "SMTP_HOST": LOOPBACK,
            "SMTP_PORT": str(self.server.port),
            "SMTP_SECURITY": "starttls",
            "SMTP_USERNAME": USERNAME,
            "SMTP_CA_FILE": str(self.ca_file),
            "SMTP_TIMEOUT": "10",
            "FROM_ADDRESS": USERNAME,
            "FROM_NAME": FROM_NAME,
            "LOG_DIR": str(self.log_dir),
            "SEND_ATTEMPTS": "1",
            "KEYRING_BACKEND": KEYRING_BACKEND,
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(SEND_PY), "password", "set", "--stdin", "--env-file", str(self.env_file)],
            input=self.password + "\n",
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=RUN_TIMEOUT,
        )
        if result.returncode != 0:
            raise BenchError(f"storing the password in the temp keyring failed: {result.stderr.strip()}")

    def env_for(self, security: str, port: int) -> Path:
        """A .env like the main one, for SMTP_SECURITY=`security` on `port` (a server, or a proxy to it)."""
        path = self.home / f".env-{security}-{port}"
        values = {**self.values, "SMTP_SECURITY": security, "SMTP_PORT": str(port)}
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        return path

    def close(self) -> None:
        for server in (self.server, self.ssl_server):
            if server is not None:
                server.stop()
        self.server = self.ssl_server = None
        if self._own_root:
            shutil.rmtree(self.home, ignore_errors=True)

    def send_argv(self, company: str, *extra: str, env_file: Path | None = None) -> list[str]:
        """`python send.py send withdraw ...`, as a user types it (the company varies, so no duplicate)."""
        return [
            sys.executable,
            str(SEND_PY),
            "send",
            "withdraw",
            "--to",
            RECIPIENT,
            "--interviewer",
            "Jordan Lee",
            "--position",
            "Data Analyst",
            "--company",
            company,
            "--env-file",
            str(env_file or self.env_file),
            *extra,
        ]

    def run(self, argv: list[str], **kwargs) -> Sample:
        return run_timed(argv, env=self.env, cwd=self.home, **kwargs)

    def sent_messages(self) -> list[Path]:
        return sorted((self.log_dir / "messages").glob("*.eml"), key=lambda p: p.stat().st_mtime)


def expect_delivery(server, sample: Sample, before: int, what: str) -> Sample:
    """Check that `server` received exactly one more message: a process that exits 0 sent for real."""
    count = len(server.messages)
    if count != before + 1:
        raise BenchError(f"{what}: the server received {count - before} message(s), expected 1")
    return sample


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mib(nbytes: float) -> str:
    return f"{nbytes / (1 << 20):.1f}"
