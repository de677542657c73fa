"""Variants of the lesson as DVC experiments, queued and run two at a time; the README's way
back to the committed build after an experiment.

The queued experiments change render's settings, which retrain nothing: each runs render and
the course after it in DVC's own workspace, and takes the trained model from the cache
(issue 32: two retrainings took 74 s of the suite, and the README's experiment 26 s more).
That an experiment ran with its settings shows in its outputs, as `dvc exp show` lists them:
its figures are its own, and its model the committed one. Each experiment's accuracy, which
the queue test once held above 0.5, is no figure a unit test should assert: `make bench`
reports the variations' accuracies at full size (docs/benchmarks.md). A retraining restored
from the run-cache: tests/test_pipeline.py
(test_reverting_a_change_restores_the_results_from_the_run_cache).
"""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from tests.helpers import ROOT, copy_build, run, venv_env

pytestmark = pytest.mark.slow

# Each queued experiment's settings, two of them set at once in the second.
EXPERIMENTS = {
    "grid3": {"render.grid_size": 3},
    "grid4": {"render.grid_size": 4, "render.misclassified": 9},
}
PAGE = "reports/lessons/digit-predictor/index.html"


@pytest.fixture(scope="module")
def queued(tmp_path_factory, lesson_build) -> SimpleNamespace:
    """A copy of the small build with the two experiments queued and run, two at a time, and
    what `dvc exp show --json` says of the committed build (`committed`) and of each
    experiment (`experiments`, by name)."""
    folder = tmp_path_factory.mktemp("experiments")
    project = copy_build(lesson_build[0], folder / "project")
    for name, settings in EXPERIMENTS.items():
        sets = [part for key, value in settings.items() for part in ("-S", f"{key}={value}")]
        run(["dvc", "exp", "run", "--queue", "-n", name, *sets], project)
    # `dvc exp run --run-all -j 2` is `dvc queue start -j 2` followed to the queue's end in
    # one process, without a `dvc queue status` process a second to poll it, which took a
    # core's worth of DVC start-ups from the two experiments. The workers it spawns outlive
    # it and keep its output open: that goes to a file, or reading it would wait for them.
    log = folder / "queue.log"
    with open(log, "w") as output:
        try:
            subprocess.run(
                ["dvc", "exp", "run", "--run-all", "-j", "2"],
                cwd=project,
                env=venv_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=600,
            )
        finally:
            run(["dvc", "queue", "stop", "--kill"], project, check=False)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    return SimpleNamespace(
        project=project,
        log=log,
        status=run(["dvc", "queue", "status"], project).stdout,
        committed=shown[0]["data"],
        experiments={
            exp["name"]: exp["data"]
            for commit in shown
            for exp in (commit.get("experiments") or [])
            for exp in exp["revs"]
            if exp.get("name")
        },
    )


def test_two_queued_experiments_run_two_at_a_time_and_both_show_up(queued):
    assert queued.status.count("Success") == 2, queued.status + queued.log.read_text()
    assert set(EXPERIMENTS) <= set(queued.experiments)
    committed = queued.committed
    figures = {"committed": committed["outs"]["reports/figures"]["hash"]}
    for name, settings in EXPERIMENTS.items():
        data = queued.experiments[name]
        render = data["params"]["params.yaml"]["data"]["render"]
        for key, value in settings.items():
            assert render[key.removeprefix("render.")] == value, name
        # Its own figures and page, drawn with its settings; the committed model, not a new
        # one, and the committed scores.
        figures[name] = data["outs"]["reports/figures"]["hash"]
        assert data["outs"][PAGE]["hash"] != committed["outs"][PAGE]["hash"], name
        model = data["outs"]["models/model.keras"]["hash"]
        assert model == committed["outs"]["models/model.keras"]["hash"], name
        assert data["metrics"]["reports/metrics.json"]["data"]["test"]["images"] == 500
        assert data["metrics"] == committed["metrics"], name
    assert len(set(figures.values())) == 3, figures


def readme_restore_command() -> str:
    """The line the README gives for going back to the committed settings and build."""
    lines = (ROOT / "README.md").read_text().splitlines()
    found = [line.split("#")[0].strip() for line in lines if line.startswith("git checkout ")]
    assert found, "the README gives no restore command"
    assert len(set(found)) == 1, found
    return found[0]


def test_the_readmes_restore_after_an_experiment_brings_back_the_committed_build(queued):
    """An experiment in the workspace, as `dvc exp run` leaves it there: `dvc exp apply` of a
    queued one, which changes params.yaml, dvc.lock and the outputs as running it here would,
    taking them from the cache instead of running the stages again (issue 32: the test ran
    its own experiment, 26 s of the suite). The experiment changes figures and the page, not
    the model (the README's example sets train.epochs): the restore is the same two files
    and `dvc checkout` whatever the experiment changed."""
    project = queued.project
    outputs = ["reports/figures/prediction_grid.png", PAGE]
    committed = {name: (project / name).read_bytes() for name in outputs}
    run(["dvc", "exp", "apply", "grid3"], project)
    for name in outputs:
        assert (project / name).read_bytes() != committed[name], name
    assert run(["git", "status", "--porcelain"], project).stdout.strip()
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}

    run(["bash", "-c", readme_restore_command()], project)
    assert {name: (project / name).read_bytes() for name in outputs} == committed
    assert run(["git", "status", "--porcelain"], project).stdout == ""
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}
