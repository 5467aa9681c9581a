"""The scheduling benchmark: `python bench/schedule_bench.py [--quick]`.

Everything happens in a temporary folder and on 127.0.0.1 (bench/common.py's Account: an SMTP server with
STARTTLS, AUTH and a trustme certificate, a .env, a file keyring holding a fresh password):

1. start the waiting process, `python send.py outbox run`, with an empty outbox;
2. queue a few messages with `python send.py send withdraw ... --at <time> --no-wait`, due a second or two
   after the last is queued, a few hundred milliseconds apart (each queueing wakes the waiter);
3. while nothing is due, measure the waiter's CPU time (Linux: /proc/<pid>/stat);
4. when every message has reached the server, read the waiter's peak resident memory (/proc/<pid>/status,
   VmHWM) and stop it.

Lateness is the time the server finished receiving a message minus its due time: it includes the
connection, STARTTLS and login. It prints a Markdown section (`### Scheduling`) for BENCHMARKS.md;
bench/run.py pastes it in. CPU and memory are "n/a" where /proc does not exist (macOS, Windows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import common
from common import SEND_PY, Account, BenchError, markdown_table

TARGET_LATENESS_MS = 50.0
TARGET_RSS_MIB = 35.0
SPACING = 0.4  # seconds between due times
MARGIN = 1.0  # seconds between the last queueing and the idle window


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/schedule_bench.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer messages and a shorter idle window")
    return p.parse_args(argv)


# -- reading another process's CPU time and memory (Linux) ------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid`, from /proc/<pid>/stat; None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0], utime fields[11]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clock_tick() -> float | None:
    try:
        return 1 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return None


def peak_rss(pid: int) -> int | None:
    """Peak resident memory in bytes (VmHWM), from /proc/<pid>/status; None where there is no /proc."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


# -- the run ------------------------------------------------------------------------------------


def record_arrivals(account: Account) -> list[float]:
    """Make the server note when each message has been received (time.time())."""
    recorder = account.server.handler
    arrivals: list[float] = []
    received = recorder.handle_DATA

    async def handle_data(server, session, envelope):
        arrivals.append(time.time())
        return await received(server, session, envelope)

    recorder.handle_DATA = handle_data  # read by each new connection's SMTP session
    return arrivals


def wait_until(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.02)


def queue(account: Account, company: str, due: float) -> None:
    at = datetime.fromtimestamp(due, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    argv = account.send_argv(company, "--at", at, "--no-wait")
    result = subprocess.run(argv, capture_output=True, text=True, env=account.env, cwd=account.home, timeout=60)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"queueing a message failed (exit {result.returncode}): {last}")


def measure(count: int, idle: float) -> dict:
    with Account() as account, tempfile.TemporaryFile() as errors:
        arrivals = record_arrivals(account)
        waiter = subprocess.Popen(
            [sys.executable, str(SEND_PY), "outbox", "run", "--env-file", str(account.env_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=account.env,
            cwd=account.home,
        )
        try:
            wake_dir = account.log_dir / "outbox-wake"
            wait_until(lambda: wake_dir.is_dir() and any(wake_dir.glob("*.lock")), "the waiting process", 30)
            first_due = time.time() + count * 1.0 + MARGIN + idle  # queueing one takes well under a second
            dues = [first_due + i * SPACING for i in range(count)]
            for number, due in enumerate(dues):
                queue(account, f"Bench Company {number}", due)
            window_start = time.time() + 0.3  # let the last wake-up be handled
            window_end = first_due - 0.05
            if window_end - window_start < 0.5:
                raise BenchError("queueing took too long to leave an idle window: is the machine busy?")
            time.sleep(window_start - time.time())
            cpu_before = cpu_seconds(waiter.pid)
            time.sleep(max(0.0, window_end - time.time()))
            cpu_after = cpu_seconds(waiter.pid)
            wait_until(lambda: len(arrivals) >= count, f"{count} messages at the server", dues[-1] - time.time() + 30)
            rss = peak_rss(waiter.pid)
            if waiter.poll() is not None:
                raise BenchError(f"the waiting process exited early with {waiter.returncode}")
        except BaseException:
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-2:]
            if tail:
                print(f"waiting process: {' | '.join(tail)}", file=sys.stderr)
            raise
        finally:
            waiter.terminate()
            try:
                waiter.wait(10)
            except subprocess.TimeoutExpired:
                waiter.kill()
                waiter.wait()
        if len(account.server.messages) != count:
            raise BenchError(f"the server received {len(account.server.messages)} messages, expected {count}")
    lateness = [arrival - due for arrival, due in zip(sorted(arrivals), dues, strict=True)]
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "count": count,
        "lateness": lateness,
        "idle": window_end - window_start,
        "cpu": cpu,
        "rss": rss,
    }


# -- the report ---------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**yes**" if ok else "**no**")


def report(result: dict, quick: bool) -> str:
    lateness = result["lateness"]
    median_ms, max_ms = statistics.median(lateness) * 1000, max(lateness) * 1000
    cpu, rss, tick = result["cpu"], result["rss"], clock_tick()
    idle = f"{result['idle']:.1f} s idle"
    if cpu is None:
        cpu_text, cpu_ok = f"n/a ({idle}; no /proc here)", None
    else:
        resolution = f"; resolution {tick * 1000:.0f} ms" if tick else ""
        cpu_text, cpu_ok = f"{cpu * 1000:.0f} ms in {idle}{resolution}", cpu == 0
    if rss is None:
        rss_text, rss_ok = "n/a (no /proc here)", None
    else:
        rss_text, rss_ok = f"{rss / (1 << 20):.1f} MiB peak (VmHWM)", rss / (1 << 20) < TARGET_RSS_MIB
    rows = [
        [
            f"lateness median < {TARGET_LATENESS_MS:.0f} ms",
            f"{median_ms:.1f} ms median, {max_ms:.1f} ms max ({result['count']} messages)",
            verdict(median_ms < TARGET_LATENESS_MS),
        ],
        ["no measurable CPU while waiting", cpu_text, verdict(cpu_ok)],
        [f"< {TARGET_RSS_MIB:.0f} MiB resident", rss_text, verdict(rss_ok)],
    ]
    quick_note = " (--quick: few messages)" if quick else ""
    return "\n".join(
        [
            "### Scheduling",
            "",
            f"One waiting process (`python send.py outbox run`) and {result['count']} messages queued with "
            "`send ... --at TIME --no-wait`, due a second or two ahead; STARTTLS and login on 127.0.0.1"
            f"{quick_note}. Lateness: when the server had the message, minus its due time.",
            "",
            markdown_table(["target", "measured", "met"], rows),
            "",
            "Reproduce: `python bench/schedule_bench.py` (CPU and memory read from /proc: Linux only).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.require_modules("aiosmtpd", "trustme", "keyrings.alt", "schedule")
    try:
        result = measure(count=3 if args.quick else 5, idle=1.5 if args.quick else 4.0)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(result, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
