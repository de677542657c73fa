"""bench/dvc_share.py and the split of a forced run that `make bench` prints from it; the first
build's floor it prints beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types

import pytest

from bench import dvc_share, run
from tests.helpers import ROOT
from tests.helpers import run as run_command


def test_each_command_is_timed_and_the_timing_undone_afterwards():
    module = types.SimpleNamespace(_run=lambda executable, cmd, **kwargs: time.sleep(0.2))

    def two_commands() -> str:
        module._run("/bin/sh", "first", cwd=".")
        module._run("/bin/sh", "second")
        return "done"

    result, seconds, commands = dvc_share.timed_run(two_commands, module)
    assert result == "done"
    assert [command["cmd"] for command in commands] == ["first", "second"]
    assert all(command["seconds"] >= 0.2 for command in commands)
    assert seconds >= sum(command["seconds"] for command in commands)
    module._run("/bin/sh", "after")
    assert len(commands) == 2


def test_the_timing_is_undone_when_the_run_fails():
    def fail(executable, cmd, **kwargs):
        raise subprocess.CalledProcessError(1, cmd)

    module = types.SimpleNamespace(_run=fail)
    with pytest.raises(subprocess.CalledProcessError):
        dvc_share.timed_run(lambda: module._run("/bin/sh", "broken"), module)
    assert module._run is fail


def test_a_dvc_run_reports_its_stages_commands_and_no_other_process(tmp_path):
    """Two stages, in a repository set as this project's is (autostage on, so DVC also stages
    dvc.lock in git): two commands are timed, in order."""
    run_command(["git", "init", "-q"], tmp_path)
    run_command(["dvc", "init", "-q"], tmp_path)
    run_command(["dvc", "config", "core.analytics", "false"], tmp_path)
    run_command(["dvc", "config", "core.autostage", "true"], tmp_path)
    first = "python -c \"import time; time.sleep(0.3); open('one.txt', 'w').write('1')\""
    second = "python -c \"open('two.txt', 'w').write(open('one.txt').read())\""
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        f"  one:\n    cmd: {json.dumps(first)}\n    outs: [one.txt]\n"
        f"  two:\n    cmd: {json.dumps(second)}\n    deps: [one.txt]\n    outs: [two.txt]\n"
    )
    done = run_command(
        [sys.executable, "-m", "bench.dvc_share", "repro"], tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    figures = dvc_share.parse(done.stdout)
    assert figures["returncode"] == 0
    assert [command["cmd"] for command in figures["commands"]] == [first, second]
    assert figures["commands"][0]["seconds"] >= 0.3
    assert figures["seconds"] > sum(command["seconds"] for command in figures["commands"])
    assert (tmp_path / "two.txt").read_text() == "1"
    assert "dvc.lock" in run_command(["git", "diff", "--cached", "--name-only"], tmp_path).stdout


def test_parse_takes_the_last_line_and_names_a_missing_one():
    output = 'x\ndvc_share: {"seconds": 1}\ny\ndvc_share: {"seconds": 2}\n'
    assert dvc_share.parse(output) == {"seconds": 2}
    with pytest.raises(ValueError, match="no 'dvc_share: ' line in the output"):
        dvc_share.parse("Running stage 'train':\n")


def figures_line(seconds: float, commands: list[float]) -> str:
    timed = [{"cmd": f"python -m stages.s{i}", "seconds": s} for i, s in enumerate(commands)]
    return "Running stage 'download':\ndvc_share: " + json.dumps(
        {"returncode": 0, "seconds": seconds, "commands": timed}
    )


def test_the_forced_runs_split_and_what_the_target_leaves():
    """Made-up rounds: the script takes 20 s; the five stages that do its work 15 s, the
    course's eight 4 s, DVC 5 s in its process, and its start 1 s."""
    commands = [1.0, 1.0, 10.0, 2.0, 1.0] + [0.5] * 8
    parts = run.forced_parts(25.0, figures_line(24.0, commands))
    assert parts == {"script": 15.0, "course": 4.0, "dvc": 5.0, "start": 1.0}
    rows = run.forced_split([19.0, 20.0, 21.0], [parts, parts, parts])
    assert [row[1] for row in rows] == [
        "15.0 s = 0.75x", "4.0 s = 0.20x", "5.0 s = 0.25x", "1.0 s = 0.05x", "12.0 s = 0.60x"
    ]  # fmt: skip
    assert rows[0][0].startswith("the commands of download, prepare, train, evaluate, render")


def test_a_forced_run_that_cannot_be_split_ends_the_benchmark_in_one_line():
    commands = [1.0] * 12
    with pytest.raises(SystemExit, match="^bench: .* timed 12 commands, expected 13$"):
        run.forced_parts(25.0, figures_line(24.0, commands))
    with pytest.raises(SystemExit, match="^bench: .*: no 'dvc_share: ' line in the output$"):
        run.forced_parts(25.0, "Running stage 'download':\n")


def test_the_first_builds_floor_is_its_cpu_time_over_the_cores():
    """Made-up rounds: builds of 300, 280 and 320 s of CPU on 2 cores cannot end before 150,
    140 and 160 s; against a 30 s script, the median floor is 5x, at the target."""
    builds = [run.Run(200.0, 0, "", 0, cpu) for cpu in (300.0, 280.0, 320.0)]
    row = run.build_floor([29.0, 30.0, 31.0], builds, 2)
    assert row[1:] == (
        "150.0, 140.0, 160.0 s",
        "150.0 s = 5.00x",
        "<= 5x",
        "at or below the target",
    )
    row = run.build_floor([29.0, 30.0, 31.0], builds, 1)
    assert row[2:] == ("300.0 s = 10.00x", "<= 5x", "**above the target**")
