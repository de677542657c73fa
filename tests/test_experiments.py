"""Variants of the lesson as DVC experiments, queued and run two at a time."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.helpers import ROOT, copy_build, run, venv_env

pytestmark = pytest.mark.slow


def test_two_queued_experiments_run_in_parallel_and_both_show_up(tmp_path, lesson_build):
    project = copy_build(lesson_build[0], tmp_path / "project")

    run(["dvc", "exp", "run", "--queue", "-n", "logistic", "-S", "model.hidden_units=[]"], project)
    run(
        ["dvc", "exp", "run", "--queue", "-n", "deeper", "-S", "model.hidden_units=[32,16]",
         "-S", "model.activation=leaky_relu", "-S", "train.optimizer=rmsprop",
         "-S", "train.augmentation.rotation=10"],
        project,
    )  # fmt: skip
    # The workers `dvc queue start` spawns outlive it and keep its output open: send that to a
    # file, or reading it would wait for the workers to end.
    with open(tmp_path / "queue.log", "w") as log:
        subprocess.run(
            ["dvc", "queue", "start", "-j", "2"],
            cwd=project,
            env=venv_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = run(["dvc", "queue", "status"], project).stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(1)
    finally:
        run(["dvc", "queue", "stop", "--kill"], project, check=False)
    assert status.count("Success") == 2, status

    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    experiments = {
        exp["name"]: exp
        for commit in shown
        for exp in (commit.get("experiments") or [])
        for exp in exp["revs"]
        if exp.get("name")
    }
    assert {"logistic", "deeper"} <= set(experiments)
    for name, hidden in (("logistic", []), ("deeper", [32, 16])):
        data = experiments[name]["data"]
        params = data["params"]["params.yaml"]["data"]
        assert params["model"]["hidden_units"] == hidden
        accuracy = data["metrics"]["reports/metrics.json"]["data"]["test"]["accuracy"]
        assert 0.5 < accuracy <= 1.0


def readme_restore_command() -> str:
    """The line the README gives for going back to the committed settings and build."""
    lines = (ROOT / "README.md").read_text().splitlines()
    found = [line.split("#")[0].strip() for line in lines if line.startswith("git checkout ")]
    assert found, "the README gives no restore command"
    assert len(set(found)) == 1, found
    return found[0]


def test_the_readmes_restore_after_an_experiment_brings_back_the_committed_build(
    tmp_path, lesson_build
):
    project = copy_build(lesson_build[0], tmp_path / "project")
    committed = (project / "reports/metrics.json").read_bytes()
    run(["dvc", "exp", "run", "-n", "epochs2", "-S", "train.epochs=2"], project)
    assert (project / "reports/metrics.json").read_bytes() != committed
    assert run(["git", "status", "--porcelain"], project).stdout.strip()

    run(["bash", "-c", readme_restore_command()], project)
    assert (project / "reports/metrics.json").read_bytes() == committed
    assert run(["git", "status", "--porcelain"], project).stdout == ""
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}
