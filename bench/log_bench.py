"""Benchmark of the sent log at size: `python bench/log_bench.py [--quick] [--runs N]`.

Builds a 100,000-message log (2,000 with --quick) in a temporary folder, in the exact layout
SentLog.append writes (every message with its realistic history: sending then sent; some retrying,
failed, scheduled, cancelled), then measures:

- as whole processes, alternating run by run after warm-up runs: `python -c pass` and
  `python send.py log` (the default view, the latest 20) with LOG_DIR pointed at the big log;
- in-process: `send.py log --to TEXT --all` (the CLI's own code, output discarded) with a TEXT that
  matches a few dozen messages spread over the whole file, so every record is looked at.

It prints a Markdown section (`### Sent log`) to stdout: a table with median, min and max and the
ratio to `python -c pass`, then one line per target. The format is stable: a runner pastes it into
BENCHMARKS.md. Nothing is sent and no network is used; the temporary folder is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SEND_PY = PROJECT / "send.py"
if str(PROJECT) not in sys.path:  # `python bench/log_bench.py` puts bench/ first on the path
    sys.path.insert(1, str(PROJECT))

# Settings that might leak in from the user's shell and change what is measured.
SCRUB = ("SMTP_", "FROM_", "LOG_DIR", "TEMPLATES_DIR", "KEYRING_BACKEND", "PYTHON_KEYRING_BACKEND", "SEND_")
STARTUP_TARGET = 3.0  # `send.py log` at most this many times `python -c pass`
FILTER_TARGET_MS = 150.0  # `--to` over every record
DOMAINS = 1000  # recipients' companies; the --to needle names one of them
NEEDLE = "@company-0421.example"


def build_log(folder: Path, messages: int) -> tuple[int, int]:
    """Write `messages` messages' histories to folder/sent.jsonl; return (records, bytes)."""
    import random

    from jobmail.store.sentlog import LOG_NAME, encode_record

    rng = random.Random(20261101)
    start = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    records = 0
    with open(folder / LOG_NAME, "wb") as handle:
        for n in range(messages):
            at = start + timedelta(minutes=7 * n)
            to = f"recruiter{n % 5000}@company-{n % DOMAINS:04d}.example"
            company = f"Company {n % DOMAINS:04d}"
            base = {
                "id": f"{rng.getrandbits(48):012x}",
                "from": "alex@example.com",
                "to": [to],
                "cc": [],
                "subject": f"Withdrawing my application for the Data Analyst position at {company}",
                "message_id": f"<{rng.getrandbits(80):020x}@example.com>",
                "template": "withdraw",
                "recipients": [to],
                "body_sha256": f"{rng.getrandbits(256):064x}",
            }
            lines = []
            for status, extra in history(rng, at):
                lines.append(encode_record({**base, "status": status, **extra[1]}, extra[0])[1])
            handle.write(b"".join(lines))
            records += len(lines)
        size = handle.tell()
    return records, size


def history(rng, at: datetime) -> list[tuple[str, tuple[datetime, dict]]]:
    """One message's states: mostly sending -> sent; a few scheduled, retried, failed or cancelled."""
    server = "smtp.example.com:587"
    sent = {
        "server": server,
        "tls": "TLSv1.3",
        "reply": {"code": 250, "text": f"2.0.0 Ok: queued as {rng.getrandbits(40):010X}"},
        "attempts": 1,
    }
    roll = rng.random()
    steps: list[tuple[str, tuple[datetime, dict]]] = []
    if roll < 0.10:
        steps.append(("scheduled", (at, {"due": (at + timedelta(hours=15)).isoformat(), "zone": "Europe/Paris"})))
        if roll < 0.02:
            return [*steps, ("cancelled", (at + timedelta(hours=1), {}))]
        at += timedelta(hours=15)
    if 0.10 <= roll < 0.14:
        error = "connection refused by smtp.example.com:587: check SMTP_HOST and SMTP_PORT"
        steps.append(("retrying", (at, {"server": server, "attempt": 1, "error": error, "retry_in": 2.0})))
    steps.append(("sending", (at, {"server": server, "attempt": 1})))
    if 0.14 <= roll < 0.16:
        failure = {"server": server, "attempts": 1, "error": "the server refused the recipient (550)"}
        return [*steps, ("failed", (at, {**failure, "reply": {"code": 550, "text": "5.1.1 No such user"}}))]
    return [*steps, ("sent", (at + timedelta(seconds=1), sent))]


def child_environ(log_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(LOG_DIR=str(log_dir), PYTHONIOENCODING="utf-8", COLUMNS="120")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps its bytecode cache
    return env


def time_process(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise SystemExit(f"log_bench: {' '.join(argv[1:])} exited with {result.returncode}: {' '.join(tail)}")
    return seconds


def alternate(commands: dict[str, list[str]], env, cwd, runs: int, warmup: int) -> dict[str, list[float]]:
    """Warm-up rounds, then `runs` rounds of A B A B ..., so drift in the machine hits both alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(warmup + runs):
        for name, argv in commands.items():
            seconds = time_process(argv, env, cwd)
            if round_ >= warmup:
                samples[name].append(seconds)
    return samples


def time_filter(log_dir: Path, runs: int) -> tuple[list[float], int]:
    """`send.py log --to NEEDLE --all` in-process, output discarded; returns (seconds, rows shown)."""
    from jobmail.cli import main

    saved = os.environ.get("LOG_DIR")
    os.environ["LOG_DIR"] = str(log_dir)
    times, shown = [], 0
    try:
        for round_ in range(runs + 1):  # the first run is a warm-up
            sink = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                code = main(["log", "--to", NEEDLE, "--all"])
            seconds = time.perf_counter() - start
            if code != 0:
                raise SystemExit(f"log_bench: log --to exited with {code}")
            if round_:
                times.append(seconds)
            shown = max(0, len(sink.getvalue().splitlines()) - 3)  # header, blank line, summary
    finally:
        if saved is None:
            os.environ.pop("LOG_DIR", None)
        else:
            os.environ["LOG_DIR"] = saved
    return times, shown


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(messages: int, records: int, size: int, runs: int, warmup: int, samples, ratios, filter_times, shown) -> str:
    base, log = samples["pass"], samples["log"]
    ratio = statistics.median(ratios)
    filter_ms = statistics.median(filter_times) * 1000
    python = f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    lines = [
        "### Sent log",
        "",
        f"A log of {messages:,} messages ({records:,} records, {size / 1e6:.1f} MB), built by `bench/log_bench.py`"
        f" in a temporary folder. {python}. Whole processes: {runs} rounds after {warmup} warm-up rounds, the two"
        " commands alternating, bytecode cache on. Ratio: the median of each round's ratio.",
        "",
        "| what | median | min | max | vs `python -c pass` |",
        "| --- | --- | --- | --- | --- |",
        f"| `python -c pass` | {ms(statistics.median(base))} | {ms(min(base))} | {ms(max(base))} | 1.00x |",
        f"| `python send.py log` (latest 20) | {ms(statistics.median(log))} | {ms(min(log))} | {ms(max(log))}"
        f" | {ratio:.2f}x |",
        f"| `log --to {NEEDLE} --all`, in-process ({shown} of {messages:,} messages shown, every record read)"
        f" | {ms(statistics.median(filter_times))} | {ms(min(filter_times))} | {ms(max(filter_times))} | |",
        "",
        f"- `send.py log` (latest 20) at most {STARTUP_TARGET:g}x `python -c pass`: {ratio:.2f}x"
        f" ({'met' if ratio <= STARTUP_TARGET else 'NOT met'})",
        f"- `--to` filter over {messages:,} messages at most {FILTER_TARGET_MS:g} ms: {filter_ms:.1f} ms"
        f" ({'met' if filter_ms <= FILTER_TARGET_MS else 'NOT met'})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the sent log at 100,000 messages.")
    parser.add_argument("--quick", action="store_true", help="2,000 messages and fewer rounds (a smoke test)")
    parser.add_argument("--runs", type=int, default=None, help="measured rounds (default 21; 5 with --quick)")
    args = parser.parse_args(argv)
    messages = 2_000 if args.quick else 100_000
    runs = args.runs or (5 if args.quick else 21)
    warmup = 2 if args.quick else 3
    home = Path(tempfile.mkdtemp(prefix="jobmail-log-bench-"))
    try:
        log_dir = home / "log"
        print(f"building a log of {messages:,} messages in {home} ...", file=sys.stderr)
        records, size = build_log(log_dir, messages)
        env = child_environ(log_dir)
        commands = {
            "pass": [sys.executable, "-c", "pass"],
            "log": [sys.executable, str(SEND_PY), "log"],
        }
        print(f"timing {runs} rounds of `python -c pass` and `python send.py log` ...", file=sys.stderr)
        samples = alternate(commands, env, home, runs, warmup)
        ratios = [a / b for a, b in zip(samples["log"], samples["pass"], strict=True)]
        print("timing the --to filter in-process ...", file=sys.stderr)
        filter_times, shown = time_filter(log_dir, max(5, runs // 2))
        print(report(messages, records, size, runs, warmup, samples, ratios, filter_times, shown))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
