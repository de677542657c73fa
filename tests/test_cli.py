"""How a stage process ends: its exit code, its last words kept, its atexit handlers run (so
`coverage run` saves its data), the interpreter's teardown of its modules skipped (in a process
that loaded TensorFlow it takes most of a second), unless a profiler is watching.

The tests run on the Python of the venv; `make pythons` runs them on 3.11, 3.12 and 3.13,
where profilers attach in different ways."""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
from pathlib import Path

import coverage
import pytest

ROOT = Path(__file__).resolve().parents[1]

# A stage whose main() prints without a newline (so the words are still buffered when it
# returns), with an atexit handler that prints "atexit", and an object that prints "teardown"
# when the interpreter's teardown of its modules destroys it.
STAGE = """
import atexit, sys
from pipeline import cli
class Kept:
    def __del__(self):
        print("teardown", end="")
kept = Kept()
atexit.register(lambda: print("atexit", end=""))
def main():
    print("done", end="")
    {body}
cli.run(main)
"""
# Without PYTHONUNBUFFERED (set on some machines), as in a user's shell: a stage's printing to
# a pipe is buffered until the process ends.
BUFFERED = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}


def run_stage(body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", STAGE.format(body=body)],
        cwd=ROOT,
        env=BUFFERED,
        capture_output=True,
        text=True,
    )


def test_a_finished_stage_exits_0_with_its_output_and_atexit_but_without_the_teardown():
    result = run_stage("pass")
    assert (result.returncode, result.stdout, result.stderr) == (0, "doneatexit", "")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("raise cli.StageError('params.yaml: train.epochs = 0 is not allowed')", 1,
         "error: params.yaml: train.epochs = 0 is not allowed\n"),
        ("raise KeyboardInterrupt", 130, "interrupted: nothing half-written was left behind\n"),
        ("raise cli.Interrupted(15)", 143, "interrupted: nothing half-written was left behind\n"),
    ],
)  # fmt: skip
def test_a_stopped_stage_exits_with_its_code_and_one_line(body, code, message):
    result = run_stage(body)
    assert (result.returncode, result.stdout, result.stderr) == (code, "doneatexit", message)


def test_a_stage_whose_output_cannot_be_written_exits_120():
    # The stage's words stay buffered until its exit (long after this closes the pipe, as
    # Python's start alone takes longer), where the closed pipe refuses them.
    stage = subprocess.Popen(
        [sys.executable, "-c", STAGE.format(body="pass")],
        cwd=ROOT,
        env=BUFFERED,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stage.stdout.close()
    assert stage.wait() == 120


def test_the_stage_probe_sees_the_teardown_when_a_process_ends_normally():
    """The probe above has teeth: with Python's own exit, the teardown prints."""
    result = subprocess.run(
        [sys.executable, "-c", STAGE.format(body="pass").replace("cli.run(main)", "main()")],
        cwd=ROOT,
        env=BUFFERED,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (0, "doneatexitteardown")


def test_under_a_profiler_a_stage_exits_normally_so_the_profile_is_written(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(STAGE.format(body="pass"))
    profile = tmp_path / "stage.prof"
    result = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)],
        cwd=ROOT,
        env=BUFFERED | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("doneatexit")
    stats = pstats.Stats(str(profile))
    assert any(name == "main" for _, _, name in stats.stats), "the stage's main() was profiled"


@pytest.mark.parametrize("core", ["ctrace", "sysmon"])
def test_under_coverage_a_stage_saves_its_coverage_data(tmp_path, core):
    if core == "sysmon" and sys.version_info < (3, 12):
        core = "pytrace"  # sys.monitoring, which coverage's sysmon core uses, came in 3.12.
    script = tmp_path / "stage.py"
    script.write_text(STAGE.format(body="pass"))
    data = tmp_path / ".coverage"
    result = subprocess.run(
        [sys.executable, "-m", "coverage", "run", f"--data-file={data}", str(script)],
        cwd=ROOT,
        env=BUFFERED | {"PYTHONPATH": str(ROOT), "COVERAGE_CORE": core},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    measured = coverage.CoverageData(basename=str(data))
    measured.read()
    assert str(script) in measured.measured_files()
    assert measured.lines(str(script)), "the stage's lines were recorded"
