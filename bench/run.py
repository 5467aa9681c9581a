"""The cold-start benchmark: `python bench/run.py [--quick] [--runs N] [--out BENCHMARKS.md]`.

It sets everything up on 127.0.0.1 by itself (an SMTP server with STARTTLS and AUTH and a trustme
certificate, a .env, a temporary file keyring holding a fresh password, a temporary log folder),
then times whole processes, alternating the commands round by round (A B C A B C ...) after warm-up
rounds, and writes BENCHMARKS.md with the tables, the targets and whether each was met:

- `python send.py send withdraw ...` against the floor (bench/floor_send.py: smtplib with the same
  certificate checks, login and message bytes), against mailmerge 2.3.0, installed in the
  benchmark's own virtual environment (bench/.venv-peers) and sending to the same server, and against
  msmtp when it is on PATH; on loopback and over each `--rtt` link (bench/latency.py's proxy);
- `python send.py --help` and `python send.py log` against `python -c pass`;
- the peak memory (max RSS) of each process;
- the sections printed by bench/log_bench.py and bench/schedule_bench.py, when they exist.

Nothing leaves the machine except pip's download of mailmerge (skip it with --no-peers).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import common
from common import (
    BENCH_DIR,
    LOOPBACK,
    PROJECT,
    RECIPIENT,
    USERNAME,
    Account,
    BenchError,
    Command,
    alternate,
    expect_delivery,
    markdown_table,
    mib,
    ms,
    paired_ratio,
    rss_of,
    seconds_of,
)
from latency import LatencyProxy

MAILMERGE = "mailmerge==2.3.0"
PEERS_DIR = BENCH_DIR / ".venv-peers"
PIP_OPTIONS = ("--quiet", "--disable-pip-version-check", "--timeout", "20")
SECTIONS = (("log_bench.py", "The sent log"), ("schedule_bench.py", "Scheduling"))
# What a send cannot do without under the design card: Jinja2 renders, the keyring holds the password
# (and the keyring backend the benchmark names). Imported on top of the floor, they give a lower bound.
MANDATED = ("jinja2", "keyring", "keyrings.alt.file")
BOUND = "floor + imports"
OVERLAPPED = "floor + imports, overlapped"
TARGETS = {"floor": 2.3, "help": 2.5, "log": 3.0, "memory_mib": 40.0}
LINK_RTT = 50.0  # the round trip, ms, of the link targets
LINK_TARGETS = {"floor": 0.9, "mailmerge": 0.85, "msmtp": 1.1}
REPRODUCE = "python bench/run.py"
SECTION_TIMEOUT, SECTION_TIMEOUT_QUICK = 120.0, 90.0  # seconds per sibling script: the whole run stays under ~5 min


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Time jobmail from a cold start against the floor and the peers; write BENCHMARKS.md.",
    )
    p.add_argument("--quick", action="store_true", help="few rounds, for a smoke test (figures are rough)")
    p.add_argument("--runs", type=int, metavar="N", help="measured rounds per group (default 30; 3 with --quick)")
    p.add_argument("--warmup", type=int, metavar="N", help="warm-up rounds, not recorded (default 3; 1 with --quick)")
    p.add_argument("--out", default=str(PROJECT / "BENCHMARKS.md"), metavar="PATH", help="report (BENCHMARKS.md)")
    p.add_argument("--no-peers", action="store_true", help="skip mailmerge and msmtp (no peers' venv, no download)")
    p.add_argument(
        "--no-sections",
        action="store_true",
        help="skip bench/log_bench.py and bench/schedule_bench.py (their sections say so)",
    )
    p.add_argument(
        "--rtt",
        type=float,
        action="append",
        metavar="MS",
        help="measure the sends over a link with this round trip (a proxy on 127.0.0.1; 0: direct); "
        "repeat it for several (default: 0 and 50)",
    )
    p.add_argument(
        "--send-py",
        default=str(common.SEND_PY),
        metavar="PATH",
        help="the send.py to measure (default: this checkout's; another one compares a change)",
    )
    args = p.parse_args(argv)
    args.runs = args.runs if args.runs is not None else (3 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be at least 1 and --warmup at least 0")
    args.rtt = sorted(set(args.rtt if args.rtt else [0.0, 50.0]))
    if 0.0 not in args.rtt or any(rtt < 0 or rtt > 1000 for rtt in args.rtt):
        p.error("--rtt: from 0 to 1000 ms, and 0 (loopback, the base of every target) among them")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- mailmerge in its own virtual environment ------------------------------------------------------


def ensure_mailmerge(venv: Path = PEERS_DIR) -> tuple[Path | None, str]:
    """The mailmerge command, installed in `venv` (created once, reused), or None and the reason."""
    if os.name != "posix":
        return None, "not available on this platform: mailmerge asks for the password through the console"
    python, script = venv / "bin" / "python", venv / "bin" / "mailmerge"
    try:
        if not python.exists():
            say(f"creating {venv} for the peers ...")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        (venv / ".gitignore").write_text("# created by bench/run.py: not part of the project\n*\n")
        if installed_version(python) != MAILMERGE.split("==")[1] or not script.exists():
            say(f"installing {MAILMERGE} into {venv} ...")
            result = subprocess.run(
                [str(python), "-m", "pip", "install", *PIP_OPTIONS, MAILMERGE],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                return None, f"not available: pip could not install {MAILMERGE} ({last})"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"not available: could not set up {venv} ({exc})"
    return script, f"{MAILMERGE}, in {venv.relative_to(PROJECT) if venv.is_relative_to(PROJECT) else venv}"


def installed_version(python: Path) -> str | None:
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mailmerge'))"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def mailmerge_files(account: Account, eml: Path, port: int) -> list[str]:
    """A template and a one-row database for the same message, and a server config for the same server.

    Returns the arguments of a real send (`--no-dry-run`; mailmerge is a dry run by default).
    """
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    body = message.get_body(("plain",)).get_content()
    folder = account.home / f"mailmerge-{port}"
    folder.mkdir(exist_ok=True)
    template = folder / "mailmerge_template.txt"
    template.write_text(
        f"TO: {{{{email}}}}\nFROM: {message['From']}\nSUBJECT: {message['Subject']}\n\n{body}", encoding="utf-8"
    )
    database = folder / "mailmerge_database.csv"
    database.write_text(f"email,name\n{RECIPIENT},Jordan Lee\n", encoding="utf-8")
    config = folder / "mailmerge_server.conf"
    config.write_text(
        f"[smtp_server]\nhost = {LOOPBACK}\nport = {port}\nsecurity = STARTTLS\nusername = {USERNAME}\nratelimit = 0\n",
        encoding="utf-8",
    )
    return ["--no-dry-run", "--template", str(template), "--database", str(database), "--config", str(config)]


# -- msmtp, where it is installed ----------------------------------------------------------------

MSMTP = "msmtp"  # the row's label; its version is in the notes


def find_msmtp() -> tuple[str | None, str]:
    """The msmtp program on PATH and its version line, or None and why it is not measured."""
    if os.name != "posix":
        return None, "not measured on this platform"
    path = shutil.which("msmtp")
    if path is None:
        return None, "not measured: msmtp is not installed (`apt-get install msmtp`, `brew install msmtp`)"
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"not measured: `msmtp --version` failed ({exc})"
    first = (result.stdout.strip().splitlines() or ["msmtp"])[0]
    return path, first.replace("msmtp version", "msmtp").strip()


def msmtp_argv(account: Account, msmtp: str, port: int, mode: str) -> list[str]:
    """`msmtp -C CONFIG -a bench RECIPIENT` for the same server and account: TLS with the same CA file
    (certificate and host name checked), STARTTLS or TLS from the first byte, AUTH, no log file. The
    password comes through `passwordeval` from a pipe the process inherits (common.run_timed's secret)."""
    config = account.home / f"msmtprc-{mode}-{port}"
    config.write_text(
        "defaults\ntls on\n"
        f"tls_trust_file {account.ca_file}\n"
        "logfile\naccount bench\n"
        f"host {LOOPBACK}\nport {port}\ntls_starttls {'on' if mode == 'starttls' else 'off'}\n"
        f"auth on\nuser {USERNAME}\nfrom {USERNAME}\n"
        f'passwordeval "cat /dev/fd/${common.SECRET_FD}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)  # msmtp refuses a configuration others can read
    return [msmtp, "-C", str(config), "-a", "bench", RECIPIENT]


# -- the measurements ----------------------------------------------------------------------------


def delivering(server, run_argv, argv_for, what: str, stdin: bytes | None = None, secret: bytes | None = None):
    """A Command.run that checks `server` received the message (exit 0 alone could be a dry run)."""

    def run(i: int):
        before = len(server.messages)
        return expect_delivery(server, run_argv(argv_for(i), stdin=stdin, secret=secret), before, what)

    return run


def link_name(rtt: float) -> str:
    return "loopback" if not rtt else f"a {rtt:g} ms link"


def send_group(account: Account, send_py: str, args, rtt: float = 0.0) -> tuple[list[Command], dict]:
    """send vs the floor vs mailmerge, alternated, each straight to the loopback server (rtt 0) or through
    a LatencyProxy with that round trip (ms); returns the commands and facts for the notes."""
    with contextlib.ExitStack() as stack:
        ports = {"starttls": account.server.port, "ssl": account.ssl_server.port}
        if rtt:
            for mode, port in ports.items():
                ports[mode] = stack.enter_context(LatencyProxy(port, rtt / 1000)).port
        return _send_group(account, send_py, args, rtt, ports)


def _send_group(account: Account, send_py: str, args, rtt: float, ports: dict[str, int]) -> tuple[list[Command], dict]:
    facts: dict = {"rtt": rtt}
    tag = f" at {rtt:g} ms" if rtt else ""
    run = account.run
    starttls_env = account.env_for("starttls", ports["starttls"])
    ssl_env = account.env_for("ssl", ports["ssl"])

    def send_argv(env_file: Path):
        def argv(i: int) -> list[str]:  # the company varies per send: no duplicate refused
            argv = account.send_argv(f"Acme {env_file.name} {i}", env_file=env_file)
            argv[1] = send_py
            return argv

        return argv

    say(f"priming{tag}: one send to get the message bytes for the floor and mailmerge ...")
    delivering(account.server, run, send_argv(starttls_env), "send.py send")(-1)
    eml = account.sent_messages()[-1]
    facts["message_bytes"] = len(eml.read_bytes())
    password = (account.password + "\n").encode()
    floor = [sys.executable, str(BENCH_DIR / "floor_send.py"), LOOPBACK, str(ports["starttls"]), USERNAME]
    floor += [str(account.ca_file), str(eml), USERNAME, RECIPIENT]
    shown_send = "python send.py send withdraw --to ... --interviewer ... --position ... --company 'Acme N'"
    commands = [
        Command("send (jobmail)", shown_send, delivering(account.server, run, send_argv(starttls_env), "send.py send")),
        Command(
            "send (jobmail, implicit TLS)",
            shown_send + " (SMTP_SECURITY=ssl)",
            delivering(account.ssl_server, run, send_argv(ssl_env), "send.py send, implicit TLS"),
        ),
        Command(
            "floor (smtplib)",
            "python bench/floor_send.py ... < password",
            delivering(account.server, run, lambda i: floor, "floor_send.py", stdin=password),
        ),
    ]
    if not rtt:  # the bounds of #8: what the floor measures with the imports a send cannot do without
        commands += [
            Command(
                BOUND,
                f"python bench/floor_send.py --import {','.join(MANDATED)} ... < password",
                delivering(
                    account.server,
                    run,
                    lambda i: [*floor[:2], "--import", ",".join(MANDATED), *floor[2:]],
                    "floor_send.py --import",
                    stdin=password,
                ),
            ),
            Command(
                OVERLAPPED,
                f"python bench/floor_send.py --import {','.join(MANDATED)} --overlap ... < password",
                delivering(
                    account.server,
                    run,
                    lambda i: [*floor[:2], "--import", ",".join(MANDATED), "--overlap", *floor[2:]],
                    "floor_send.py --overlap",
                    stdin=password,
                ),
            ),
        ]
    if args.no_peers:
        facts["mailmerge"] = "not run (--no-peers)"
    else:
        script, facts["mailmerge"] = ensure_mailmerge()
        if script is not None:
            mm_argv = [str(script), *mailmerge_files(account, eml, ports["starttls"])]
            try:  # one real send first: a mailmerge that cannot send is reported, not fatal
                delivering(account.server, run, lambda i: mm_argv, "mailmerge", stdin=password)(-1)
            except BenchError as exc:
                facts["mailmerge"] = f"not available: {exc}"
            else:
                commands.append(
                    Command(
                        "mailmerge 2.3.0",
                        "mailmerge --no-dry-run --template ... --database ... --config ... < password",
                        delivering(account.server, run, lambda i: mm_argv, "mailmerge", stdin=password),
                    )
                )
    if args.no_peers:
        facts["msmtp"] = "not run (--no-peers)"
    else:
        msmtp, facts["msmtp"] = find_msmtp()
        if msmtp is not None:
            ms_run = delivering(
                account.server,
                run,
                lambda i: msmtp_argv(account, msmtp, ports["starttls"], "starttls"),
                "msmtp",
                stdin=eml.read_bytes(),
                secret=password,
            )
            try:  # one real send first: an msmtp that cannot send is reported, not fatal
                ms_run(-1)
            except BenchError as exc:
                facts["msmtp"] = f"not available: {exc}"
            else:
                commands.append(Command(MSMTP, "msmtp -C ... -a bench ... < message (password: passwordeval)", ms_run))
    if rtt:
        facts["trips"] = round_trips(account, send_py, starttls_env)
    servers = (account.server, account.ssl_server)
    before = sum(len(server.messages) for server in servers)
    say(f"measuring the send{tag}: {args.warmup} warm-up + {args.runs} rounds of {len(commands)} commands ...")
    alternate(commands, args.runs, args.warmup)
    facts["received"] = sum(len(server.messages) for server in servers) - before
    facts["expected"] = sum(c.calls for c in commands)
    return commands, facts


TRIPS = re.compile(r"round trips: (\d+) \(([^)]*)\)")


def round_trips(account: Account, send_py: str, env_file: Path) -> dict:
    """One more send with --debug (not measured): the round trips the client counted and whether MAIL and
    RCPT went out in one write (its `C: MAIL FROM:<...> | RCPT TO:<...>` line)."""
    argv = account.send_argv("Acme round trips", "--debug", env_file=env_file)
    argv[1] = send_py
    result = subprocess.run(argv, capture_output=True, text=True, env=account.env, cwd=account.home, timeout=60)
    found = TRIPS.search(result.stderr)
    if result.returncode != 0 or found is None:
        return {"count": None, "said": f"not known (the --debug send: exit {result.returncode})"}
    lines = result.stderr.splitlines()
    group = next((line.split(": ", 2)[-1] for line in lines if ": C: MAIL FROM:" in line), "")
    return {"count": int(found[1]), "said": found[2], "grouped": " | RCPT TO:" in group, "group": group}


def startup_group(account: Account, send_py: str, args) -> list[Command]:
    py = sys.executable
    commands = [
        Command("--help", "python send.py --help", lambda i: account.run([py, send_py, "--help"])),
        Command(
            "log",
            "python send.py log",
            lambda i: account.run([py, send_py, "log", "--env-file", str(account.env_file)]),
        ),
        Command("python -c pass", "python -c pass", lambda i: account.run([py, "-c", "pass"])),
    ]
    say(f"measuring start-up: {args.warmup} warm-up + {args.runs} rounds of {len(commands)} commands ...")
    alternate(commands, args.runs, args.warmup)
    return commands


def section(path: Path, title: str, quick: bool, timeout: float) -> str:
    """The Markdown section a sibling bench script prints, or a note saying why there is none."""
    name = f"bench/{path.name}"
    heading = f"## {title} ({name})"
    if not path.exists():
        return f"{heading}\n\nNot available yet: {name} does not exist."
    say(f"running {name} ...")
    argv = [sys.executable, str(path), *(["--quick"] if quick else [])]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=PROJECT, encoding="utf-8", errors="replace"
        )
    except subprocess.TimeoutExpired:
        return f"{heading}\n\nNot available yet: {name} did not finish within {timeout:g}s."
    if result.returncode != 0 or not result.stdout.strip():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{heading}\n\nNot available yet: {name} failed (exit {result.returncode}: {last})."
    lines = result.stdout.strip().splitlines()
    if lines[0].startswith("#"):  # their own heading: ours replaces it, so every section sits at one level
        lines = lines[1:]
    return heading + "\n\n" + "\n".join(lines).strip()


def import_profile(account: Account, send_py: str) -> tuple[float, list[tuple[str, float]]]:
    """One more send under `python -X importtime`: total import time and the top-level imports by cost."""
    argv = account.send_argv("Acme profile")
    argv[1:2] = ["-X", "importtime", send_py]
    result = subprocess.run(argv, capture_output=True, text=True, env=account.env, cwd=account.home, timeout=60)
    if result.returncode != 0:
        raise BenchError(f"the send under -X importtime failed: {result.stderr.strip()[-300:]}")
    top: list[tuple[str, float]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if cumulative.strip().isdigit() and not name[1:].startswith(" "):  # a top-level import
            top.append((name.strip(), int(cumulative) / 1e6))
    top.sort(key=lambda item: item[1], reverse=True)
    return sum(seconds for _, seconds in top), top


# -- the report ----------------------------------------------------------------------------------


def report(args, send_cmds: list[Command], facts: dict, start_cmds: list[Command], sections: list[str]) -> str:
    by = {c.label: c for c in send_cmds + start_cmds}
    lines = [
        *header_lines(args, facts),
        "## Targets",
        "",
        targets_table(by, facts),
        "",
        *bound_lines(by),
        *send_lines(send_cmds, by, facts),
        *[line for rtt, (cmds, link) in facts["links"].items() for line in link_lines(cmds, link)],
        *startup_lines(start_cmds, by, facts),
        *profile_lines(by, facts),
        *"\n\n".join(sections).splitlines(),
        "",
        *reproduce_lines(),
    ]
    return "\n".join(lines)


def header_lines(args, facts: dict) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    quick = " (**--quick**: too few rounds for the figures to mean much)" if args.quick else ""
    load = f"; load average {facts['load'][0]} at the start, {facts['load'][1]} at the end" if facts["load"] else ""
    return [
        "# Benchmarks",
        "",
        f"Generated by `{REPRODUCE}` on {now:%Y-%m-%d %H:%M} UTC{quick}; do not edit by hand, re-run it.",
        "",
        f"- Machine: {platform.platform()} ({platform.machine() or 'unknown'}), {os.cpu_count()} CPUs{load}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), `{sys.executable}`",
        f"- {args.runs} measured rounds per group after {args.warmup} warm-up round(s); the commands of a group "
        "run in turn (A B C A B C ...), each a new process: a cold start of the interpreter (the OS file cache "
        "and the .pyc files are warm, as for a user's second command of the day)",
        "- Time: wall clock from spawning the process to its exit. Ratio: the median, over rounds, of the "
        "command's time divided by the base's time in the same round (robust to the machine's load drifting).",
        "- Max RSS: the process's peak resident memory (os.wait4), measured under a small launcher whose own "
        "~8 MiB is the least that can be seen; n/a where the platform does not report it.",
        "",
    ]


def targets_table(by: dict[str, Command], facts: dict) -> str:
    send, floor, mm, help_, bare = (
        by["send (jobmail)"],
        by["floor (smtplib)"],
        by.get("mailmerge 2.3.0"),
        by["--help"],
        by["python -c pass"],
    )
    send_floor, help_bare = paired_ratio(send, floor), paired_ratio(help_, bare)
    log_bare = paired_ratio(by["log"], bare)
    rss = rss_of(send)
    rows = [
        *link_target_rows(facts),
        ["`send` on loopback <= 2.3x the floor", f"{send_floor:.2f}x", verdict(send_floor <= TARGETS["floor"])],
        [
            "`send` on loopback, for comparison: against mailmerge (no target)",
            f"{paired_ratio(send, mm):.2f}x" if mm else facts["mailmerge"],
            "-",
        ],
        ["`--help` <= 2.5x `python -c pass`", f"{help_bare:.2f}x", verdict(help_bare <= TARGETS["help"])],
        ["`log` <= 3x `python -c pass`", f"{log_bare:.2f}x", verdict(log_bare <= TARGETS["log"])],
        [
            "peak memory of a send < 40 MiB",
            f"{mib(rss.high)} MiB (largest of {rss.n} sends)" if rss else "n/a",
            verdict(None if rss is None else rss.high / (1 << 20) < TARGETS["memory_mib"]),
        ],
    ]
    return markdown_table(["target", "this run", "met"], rows)


def link_target_rows(facts: dict) -> list[list[str]]:
    """The targets of a send over a link of LINK_RTT ms, when this run measured one."""
    name = f"at {LINK_RTT:g} ms RTT over STARTTLS: `send`"
    if LINK_RTT not in facts["links"]:
        return [[f"{name} <= {LINK_TARGETS['floor']}x the floor", f"not run (--rtt {LINK_RTT:g} not given)", "-"]]
    cmds, link = facts["links"][LINK_RTT]
    by = {c.label: c for c in cmds}
    send, floor, mm = by["send (jobmail)"], by["floor (smtplib)"], by.get("mailmerge 2.3.0")
    ratio = paired_ratio(send, floor)
    rows = [[f"{name} <= {LINK_TARGETS['floor']}x the floor", f"{ratio:.2f}x", verdict(ratio <= LINK_TARGETS["floor"])]]
    mm_ratio = paired_ratio(send, mm) if mm else None
    rows.append(
        [
            f"{name} <= {LINK_TARGETS['mailmerge']}x mailmerge",
            f"{mm_ratio:.2f}x" if mm_ratio is not None else link["mailmerge"],
            verdict(None if mm_ratio is None else mm_ratio <= LINK_TARGETS["mailmerge"]),
        ]
    )
    ms = by.get(MSMTP)
    ms_ratio = paired_ratio(send, ms) if ms else None
    rows.append(
        [
            f"{name} within {LINK_TARGETS['msmtp']}x of msmtp",
            f"{ms_ratio:.2f}x" if ms_ratio is not None else link["msmtp"],
            verdict(None if ms_ratio is None else ms_ratio <= LINK_TARGETS["msmtp"]),
        ]
    )
    implicit = paired_ratio(by["send (jobmail, implicit TLS)"], floor)
    rows.append([f"at {LINK_RTT:g} ms RTT, implicit TLS (465): `send` / STARTTLS floor", f"{implicit:.2f}x", "-"])
    return rows


def link_lines(cmds: list[Command], facts: dict) -> list[str]:
    """The table of the sends over a link with a round trip (through bench/latency.py's proxy)."""
    table = peers_table(cmds, facts)
    delivered = "all delivered" if facts["received"] == facts["expected"] else "SOME MISSING"
    rtt = facts["rtt"]
    return [
        f"## Send over {link_name(rtt)} (RTT {rtt:g} ms), cold start",
        "",
        table,
        "",
        f"- Every connection goes through bench/latency.py's proxy on 127.0.0.1: each chunk is passed on "
        f"{rtt / 2:g} ms after it was read, both ways, and the server's first bytes {rtt:g} ms later still "
        "(the TCP handshake). The same servers as on loopback; the implicit-TLS row sends to a second one "
        f"that speaks TLS from the first byte. The servers received {facts['received']} of the "
        f"{facts['expected']} messages sent in these rounds and warm-ups ({delivered}).",
        *trips_lines(facts),
        "",
    ]


def trips_lines(facts: dict) -> list[str]:
    """What one more send with --debug through the same proxy said of its round trips."""
    trips = facts.get("trips")
    if not trips:
        return []
    if trips["count"] is None:
        return [f"- Round trips of `send (jobmail)`: {trips['said']}."]
    grouped = "in one write" if trips["grouped"] else "**not** in one write"
    return [
        f"- Round trips of `send (jobmail)`, as one more send with `--debug` through the same proxy counted "
        f"them: **{trips['count']}** ({trips['said']}); MAIL and RCPT went {grouped} (`{trips['group']}`); "
        "the reply to QUIT is not waited for. The floor, by construction: 11 (greeting, EHLO, STARTTLS, TLS "
        "handshake, EHLO, AUTH, MAIL, RCPT, DATA, message, QUIT).",
    ]


PEERS = ("mailmerge 2.3.0", MSMTP)


def peers_table(cmds: list[Command], facts: dict) -> str:
    """A send group's table: ratios to the floor and to each peer measured; a row saying why for the others."""
    by = {c.label: c for c in cmds}
    measured = [by[label] for label in PEERS if label in by]
    header = [*TIMES, "ratio to the floor", *(f"ratio to {c.label.split()[0]}" for c in measured), MEMORY]
    rows = command_rows(cmds, [by["floor (smtplib)"], *measured])
    for label, why in (("mailmerge 2.3.0", facts["mailmerge"]), (MSMTP, facts.get("msmtp", "not run"))):
        if label not in by:
            rows.append([label, *["-"] * (len(header) - 2), why])
    return markdown_table(header, rows)


def bound_lines(by: dict[str, Command]) -> list[str]:
    """What the floor plus the mandated imports alone measures, and which send targets it rules out."""
    floor, mm = by["floor (smtplib)"], by.get("mailmerge 2.3.0")
    rows = (by[BOUND], by[OVERLAPPED])

    def ratios(row: Command) -> str:
        text = f"**{paired_ratio(row, floor):.2f}x the floor**"
        return text + (f" and {paired_ratio(row, mm):.2f}x mailmerge" if mm else "")

    # each target against the better of the two rows for it
    judged = [("2.3x the floor", min(paired_ratio(row, floor) for row in rows), TARGETS["floor"])]
    verdicts = [
        f"`send` <= {name}: "
        + ("**out of reach**" if best > target else "not ruled out")
        + f" (best bound {best:.2f}x)"
        for name, best, target in judged
    ]
    return [
        f"Lower bound: the floor that also imports {', '.join(f'`{m}`' for m in MANDATED)} and uses none of "
        f"them measures {ratios(by[BOUND])} in this run (row `{BOUND}`); with the connection and STARTTLS done "
        f"in a thread while it imports, {ratios(by[OVERLAPPED])} (row `{OVERLAPPED}`). Jinja2 and keyring are "
        "the design card's template engine and password store, and a send does all this and more (parse its "
        "arguments, read `.env`, render, check, log), so it can at best come near the better row, not far "
        "below it. On that bound, in this run: " + "; ".join(verdicts) + ". These are medians: a bound within "
        "a few percent of its target is for the noise of the run to decide.",
        "",
    ]


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**yes**" if ok else "**no**")


def command_rows(commands: list[Command], bases: list[Command]) -> list[list[str]]:
    rows = []
    for c in commands:
        t, r = seconds_of(c), rss_of(c)
        ratios = ["1 (base)" if c is base else f"{paired_ratio(c, base):.2f}x" for base in bases]
        memory = f"{mib(r.median)} / {mib(r.high)}" if r else "n/a"
        rows.append([c.label, f"`{c.shown}`", ms(t.median), ms(t.low), ms(t.high), *ratios, memory])
    return rows


TIMES = ["command", "what runs", "median ms", "min ms", "max ms"]
MEMORY = "max RSS MiB (median / max)"


def send_lines(send_cmds: list[Command], by: dict[str, Command], facts: dict) -> list[str]:
    table = peers_table(send_cmds, facts)
    delivered = "all delivered" if facts["received"] == facts["expected"] else "SOME MISSING"
    return [
        "## Send: one withdrawal over STARTTLS with login, cold start",
        "",
        table,
        "",
        "- The server (aiosmtpd on 127.0.0.1, STARTTLS required before AUTH, PIPELINING and CHUNKING offered, "
        "trustme certificate) received "
        f"{facts['received']} of the {facts['expected']} messages sent in these rounds and warm-ups "
        f"({delivered}); each message is {facts['message_bytes']} bytes.",
        "- `send (jobmail)`: the real CLI with a `.env` (SMTP_CA_FILE = the trustme CA, "
        "KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring), the password read from a file keyring in a "
        "temporary folder, a temporary log folder (each record fsynced there), the duplicate guard on "
        "(the company varies per run). It renders the template, checks it against the guide, builds the "
        "message, stores it, logs `sending` and `sent`.",
        "- `floor (smtplib)`: bench/floor_send.py: STARTTLS with `ssl.create_default_context()` plus the same "
        "CA file (certificate and host name checked, as jobmail does), login, and the bytes of the message "
        "jobmail built; no template, no checks, no keyring, no log. The password comes on standard input.",
        f"- `{BOUND}`: the same script, which first imports {', '.join(f'`{m}`' for m in MANDATED)} and then "
        f"uses none of them; `{OVERLAPPED}`: the same, with `--overlap`: a thread loads the CAs, connects and "
        "does STARTTLS while the main thread imports.",
        f"- mailmerge: {facts['mailmerge']}. One-row database, a template with the same headers and body, "
        "`security = STARTTLS`; it reads the password with getpass (from standard input here). It calls "
        "`starttls()` without a context, so it checks **neither the certificate nor the host name** (it "
        "would give the password to an impostor), loads no CA bundle, keeps no log, and asks for the "
        "password on every run.",
        f"- msmtp: {facts['msmtp']}. The same server, CA file (certificate and host name checked) and account, "
        "STARTTLS, and the message jobmail built on standard input; the password through `passwordeval` from "
        "a pipe it inherits. A C program: no interpreter to start; it builds no message and pipelines but "
        "does not use CHUNKING.",
        "",
    ]


def startup_lines(start_cmds: list[Command], by: dict[str, Command], facts: dict) -> list[str]:
    bare = by["python -c pass"]
    return [
        "## Start-up: `--help` and `log`",
        "",
        markdown_table([*TIMES, "ratio to `python -c pass`", MEMORY], command_rows(start_cmds, [bare])),
        "",
        f"- `log` reads the benchmark's own sent log ({facts['log_records']} records: `sending` and `sent` "
        "for each jobmail send above) and prints its newest messages.",
        "",
    ]


def profile_lines(by: dict[str, Command], facts: dict) -> list[str]:
    total, top = facts["imports"]
    send, floor = seconds_of(by["send (jobmail)"]), seconds_of(by["floor (smtplib)"])
    return [
        "## Where a send's time goes",
        "",
        "One more send under `python -X importtime` (which slows imports down a little): "
        f"{ms(total)} ms of imports, against a median send of {ms(send.median)} ms and a floor of "
        f"{ms(floor.median)} ms. The costliest top-level imports (cumulative: each with what it imports "
        "first); bench/README.md explains them and what each change bought.",
        "",
        markdown_table(["import", "ms"], [[f"`{name}`", ms(seconds)] for name, seconds in top[:12]]),
        "",
    ]


def reproduce_lines() -> list[str]:
    return [
        "## How to reproduce",
        "",
        'From a clone, with the project\'s virtual environment (README, "Run the tests"):',
        "",
        "```sh",
        ".venv/bin/python bench/run.py     # --quick for a smoke test",
        "```",
        "",
        "It starts its own SMTP server on 127.0.0.1 and uses a temporary keyring, .env and log folder; the "
        f"first run creates `bench/.venv-peers/` and installs {MAILMERGE} there with pip (`--no-peers` skips "
        "it). Options: `--runs N`, `--warmup N`, `--out PATH`, `--no-sections`, `--send-py PATH` (measure "
        "another checkout's send.py). bench/README.md has the method and the profile.",
        "",
    ]


def load_average() -> str | None:
    """The 1-minute load average (other work on the machine skews the figures), where the OS has one."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        common.require_modules("aiosmtpd", "trustme", "keyrings.alt", "jinja2", "keyring")
        send_py = str(Path(args.send_py).resolve())
        say(f"setting up a loopback server, .env, keyring and log in a temporary folder (measuring {send_py}) ...")
        load_before = load_average()
        with Account() as account:
            send_cmds, facts = send_group(account, send_py, args)
            facts["links"] = {rtt: send_group(account, send_py, args, rtt) for rtt in args.rtt if rtt}
            facts["log_records"] = sum(1 for _ in (account.log_dir / "sent.jsonl").open("rb"))
            start_cmds = startup_group(account, send_py, args)
            facts["imports"] = import_profile(account, send_py)
        facts["load"] = (load_before, load_average()) if load_before else None
        if args.no_sections:
            sections = [f"## {title} (bench/{script})\n\nNot run (--no-sections)." for script, title in SECTIONS]
        else:
            timeout = SECTION_TIMEOUT_QUICK if args.quick else SECTION_TIMEOUT
            sections = [section(BENCH_DIR / script, title, args.quick, timeout) for script, title in SECTIONS]
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = report(args, send_cmds, facts, start_cmds, sections)
    out = Path(args.out)
    out.write_text(text, encoding="utf-8")
    targets = text.split("## Targets", 1)[1].split("\n## ", 1)[0].strip()
    print(targets)
    say(f"wrote {out} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
