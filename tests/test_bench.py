"""The benchmark runs end to end with the smallest settings, so that it cannot rot.

It asserts only that the run completes and writes its tables: no timing assertion (figures depend on
the machine and on what else runs). --no-peers: no virtual environment, no download; --no-sections:
the sibling scripts (bench/log_bench.py, bench/schedule_bench.py) wait in real time and are tested on
their own, so here the pasting of a section is tested with small stand-in scripts.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
RUN_PY = PROJECT / "bench" / "run.py"

TARGET_ROWS = (
    "| at 50 ms RTT over STARTTLS: `send` <= 0.9x the floor | not run (--rtt 50 not given) |",
    "| `send` on loopback <= 2.3x the floor |",
    "| `--help` <= 2.5x `python -c pass` |",
    "| `log` <= 3x `python -c pass` |",
    "| peak memory of a send < 40 MiB |",
)
COMMAND_ROWS = (
    "| send (jobmail) |",
    "| send (jobmail, implicit TLS) |",
    "| floor (smtplib) |",
    "| floor + imports |",
    "| floor + imports, overlapped |",
    "| --help |",
    "| log |",
    "| python -c pass |",
)
SECTIONS = (
    "## Targets",
    "## Send: one withdrawal over STARTTLS with login, cold start",
    "## Send over a 20 ms link (RTT 20 ms), cold start",
    "## Start-up: `--help` and `log`",
    "## Where a send's time goes",
    "## The sent log (bench/log_bench.py)\n\nNot run (--no-sections).",
    "## Scheduling (bench/schedule_bench.py)\n\nNot run (--no-sections).",
    "## How to reproduce",
)


def run_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_PY), *args], capture_output=True, text=True, timeout=600, cwd=cwd, encoding="utf-8"
    )


def test_quick_run_writes_every_table(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    result = run_bench(
        *("--quick", "--runs", "1", "--no-peers", "--no-sections", "--rtt", "0", "--rtt", "20"),
        *("--out", str(out)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    for expected in (*SECTIONS, *TARGET_ROWS, *COMMAND_ROWS):
        assert expected in text, f"{expected!r} missing from the report"
    # every measured send reached the server: a send that only exited 0 would not count
    assert "(all delivered)" in text
    # each target row ends with a verdict
    for row in TARGET_ROWS[1:]:
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert line.endswith(("| **yes** |", "| **no** |")), line
    # the targets are also printed, for a terminal
    assert "| `send` on loopback <= 2.3x the floor |" in result.stdout
    assert "python bench/run.py" in text
    # the lower bound is stated with its figure and its verdict
    bound = next(line for line in text.splitlines() if line.startswith("Lower bound:"))
    assert "x the floor**" in bound and ("not ruled out" in bound or "out of reach" in bound), bound
    assert "`send` <= 2.3x the floor: " in bound


def test_bad_option_is_a_one_line_error(tmp_path):
    result = run_bench("--runs", "0", "--out", str(tmp_path / "x.md"), cwd=tmp_path)
    assert result.returncode == 2
    assert "--runs must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.md").exists()


@pytest.fixture(scope="module")
def runner():
    """bench/run.py as a module (it imports its sibling bench/common.py)."""
    sys.path.insert(0, str(RUN_PY.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(RUN_PY.parent))


def test_a_sibling_section_is_pasted_under_one_heading(runner, tmp_path):
    script = tmp_path / "x_bench.py"
    script.write_text(
        "import sys\nprint('### Their title\\n\\n| a | b |\\n| --- | --- |\\n| 1 | ' + str(sys.argv[1:]) + ' |')\n"
    )
    text = runner.section(script, "Things", quick=True, timeout=60)
    assert text.splitlines()[:3] == ["## Things (bench/x_bench.py)", "", "| a | b |"]
    assert "['--quick']" in text
    assert "Their title" not in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, "Not available yet: bench/x_bench.py does not exist."),
        ("import sys\nsys.exit('boom')\n", "Not available yet: bench/x_bench.py failed (exit 1: boom)."),
        ("pass\n", "Not available yet: bench/x_bench.py failed (exit 0: no output)."),
    ],
)
def test_a_missing_or_failing_sibling_is_noted_not_fatal(runner, tmp_path, body, expected):
    script = tmp_path / "x_bench.py"
    if body is not None:
        script.write_text(body)
    assert runner.section(script, "Things", quick=False, timeout=60) == f"## Things (bench/x_bench.py)\n\n{expected}"
