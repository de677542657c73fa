"""bench/dvc_share.py and the split of a forced run that `make bench` prints from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import dvc_share, run
from tests.helpers import ROOT
from tests.helpers import run as run_command

SLEEP = [sys.executable, "-c", "import time; time.sleep(0.3)"]


def test_each_process_started_is_timed_from_its_start_to_its_end():
    def two_commands() -> str:
        subprocess.run(SLEEP, check=True)
        subprocess.run(SLEEP, check=True)
        return "done"

    result, seconds, spans = dvc_share.timed_run(two_commands)
    assert result == "done"
    assert len(spans) == 2 and all(span >= 0.3 for span in spans)
    assert seconds >= sum(spans)
    # The timing is undone afterwards: a later process is not counted.
    subprocess.run(SLEEP, check=True)
    assert len(spans) == 2


def test_a_dvc_run_reports_its_stages_commands(tmp_path):
    run_command(["git", "init", "-q"], tmp_path)
    run_command(["dvc", "init", "-q"], tmp_path)
    run_command(["dvc", "config", "core.analytics", "false"], tmp_path)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  one:\n"
        "    cmd: python -c \"import time; time.sleep(0.3); open('one.txt', 'w').write('1')\"\n"
        "    outs: [one.txt]\n"
        "  two:\n"
        "    cmd: python -c \"open('two.txt', 'w').write(open('one.txt').read())\"\n"
        "    deps: [one.txt]\n"
        "    outs: [two.txt]\n"
    )
    done = run_command(
        [sys.executable, "-m", "bench.dvc_share", "repro"], tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    figures = dvc_share.parse(done.stdout)
    assert figures["returncode"] == 0
    assert len(figures["commands"]) == 2 and figures["commands"][0] >= 0.3
    assert figures["seconds"] > sum(figures["commands"])
    assert (tmp_path / "two.txt").read_text() == "1"


def test_parse_takes_the_last_line_and_names_a_missing_one():
    output = 'x\ndvc_share: {"seconds": 1}\ny\ndvc_share: {"seconds": 2}\n'
    assert dvc_share.parse(output) == {"seconds": 2}
    with pytest.raises(ValueError, match="no 'dvc_share: ' line in the output"):
        dvc_share.parse("Running stage 'train':\n")


def test_the_forced_runs_split_and_what_the_target_leaves():
    """Made-up rounds: the script takes 20 s; the five stages that do its work 15 s, the
    course's eight 4 s, DVC 5 s in its process, and its start 1 s."""
    commands = [1.0, 1.0, 10.0, 2.0, 1.0] + [0.5] * 8
    rounds = [(25.0, {"seconds": 24.0, "commands": commands})] * 3
    rows = run.forced_split([19.0, 20.0, 21.0], rounds)
    assert [row[1] for row in rows] == [
        "15.0 s = 0.75x", "4.0 s = 0.20x", "5.0 s = 0.25x", "1.0 s = 0.05x", "12.0 s = 0.60x"
    ]  # fmt: skip
    assert rows[0][0].startswith("the commands of download, prepare, train, evaluate, render")
    with pytest.raises(ValueError, match="12 commands timed, expected 13"):
        run.forced_split([20.0], [(25.0, {"seconds": 24.0, "commands": commands[1:]})])
