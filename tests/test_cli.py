"""How a stage process ends: its exit code, its last words kept, the interpreter's teardown
skipped (in a process that loaded TensorFlow it takes more than a second)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A stage whose main() prints without a newline (so the words are still buffered when it
# returns) and whose process would print "teardown" if the interpreter's exit ran.
STAGE = """
import atexit, sys
from stages import cli
atexit.register(lambda: print("teardown"))
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


def test_a_finished_stage_exits_0_with_its_output_and_without_the_teardown():
    result = run_stage("pass")
    assert (result.returncode, result.stdout, result.stderr) == (0, "done", "")


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
    assert (result.returncode, result.stdout, result.stderr) == (code, "done", message)


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
    assert (result.returncode, result.stdout) == (0, "doneteardown\n")
    assert profile.stat().st_size > 0
