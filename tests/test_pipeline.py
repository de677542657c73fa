"""The pipeline under DVC, in a copy of the project: what reruns when a setting changes.

Uses a copy of the session's small build (tests/conftest.py: the real MNIST cut down through
params to 2,000 training and 500 test images, one epoch), so only what a test changes builds.
What a change reruns is read from `dvc status` and DVC's graph (tests.helpers.would_rerun)
rather than by retraining (issue 32); one test retrains for real and restores from the
run-cache. A forced rebuild giving the bytes of the first build moved to
tests/test_schedule.py (two builds from nothing, in two folders: one dvc.lock, byte for byte)
and, at full size, to `make bench` (bench/checks.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stages import download
from tests.helpers import (
    COURSE_STAGES,
    LESSON_STAGES,
    VALUES_ON,
    changed_stages,
    copy_build,
    run,
    set_params,
    stages_run,
    would_rerun,
)

pytestmark = pytest.mark.slow

ALL_STAGES = LESSON_STAGES
MODEL_STAGES = ["train", "evaluate", "render", *COURSE_STAGES]


def repro(project, *args):
    return stages_run(run(["dvc", "repro", *args], project).stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory, lesson_build):
    built, ran = lesson_build
    assert ran == ALL_STAGES
    return copy_build(built, tmp_path_factory.mktemp("pipeline") / "project")


def test_a_build_verifies_the_data_and_leaves_dvc_status_clean(project):
    with np.load(project / "data/raw/mnist.npz") as raw:
        for name, expected in download.ARRAY_SHA256.items():
            assert download.sha256(raw[name].tobytes()) == expected
    assert "up to date" in run(["dvc", "status"], project).stdout
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test"]["images"] == 500
    assert (project / "reports/figures/prediction_grid.png").exists()


def restore(project) -> None:
    """Back to the committed build: its params, its dvc.lock and the outputs they name."""
    run(["git", "checkout", "params.yaml", "dvc.lock"], project)
    run(["dvc", "checkout"], project)


def test_what_reruns_when_a_setting_changes(project):
    assert would_rerun(project) == []

    # A train.* and a model.* key: the model and what follows it. (A train.* key alone,
    # retrained for real: test_reverting_a_change_restores_the_results_from_the_run_cache.)
    set_params(project, train__epochs=2)
    diff = json.loads(run(["dvc", "params", "diff", "--json"], project).stdout)
    assert diff == {"params.yaml": {"train.epochs": {"old": 1, "new": 2, "diff": 1}}}
    set_params(project, model__hidden_units=[32])
    assert would_rerun(project) == MODEL_STAGES
    restore(project)

    set_params(project, render__grid_size=3)
    assert would_rerun(project) == ["render", *VALUES_ON]
    restore(project)

    # New test images: prepare runs (for real, so that DVC sees its outputs' bytes), and its
    # training images are the same bytes, so the model is not trained again.
    set_params(project, prepare__test_size=400)
    assert would_rerun(project)[:2] == ["prepare", "train"]  # before prepare has run
    assert stages_run(run(["dvc", "repro", "--single-item", "prepare"], project).stdout) == [
        "prepare"
    ]
    assert would_rerun(project) == ["evaluate", "render", *COURSE_STAGES]
    restore(project)
    assert would_rerun(project) == []
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


def test_adding_a_render_setting_reruns_render_and_the_values_that_quote_it(project):
    """The page reads render's files, not its code; the values stage quotes the render
    section, so the values and the page follow."""
    restore(project)
    render_code = project / "stages/render.py"
    original = render_code.read_text()
    render_code.write_text(
        original.replace(
            '    "render.confused_pairs": whole(1, 90),\n',
            '    "render.confused_pairs": whole(1, 90),\n    "render.dpi": whole(50, 300),\n',
        )
    )
    try:
        set_params(project, render__dpi=100)
        # Render for its code and params, values for the render section it quotes.
        assert changed_stages(project) == {"render", "values"}
        assert would_rerun(project) == ["render", *VALUES_ON]
    finally:
        render_code.write_text(original)
        run(["git", "checkout", "params.yaml"], project)
    assert would_rerun(project) == []


def test_a_new_pin_for_a_test_tool_reruns_nothing_and_one_for_the_stages_reruns_all(project):
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "repro"], project)
    tools_lock = project / "requirements-dev.lock"
    tools = tools_lock.read_text()
    assert "\npytest==9.2.0\n" in tools
    tools_lock.write_text(tools.replace("pytest==9.2.0", "pytest==9.2.1"))
    locks = ["git", "status", "--porcelain", "--", "requirements.lock", "requirements-dev.lock"]
    assert run(locks, project).stdout == " M requirements-dev.lock\n"
    assert changed_stages(project) == set()
    assert repro(project) == []
    run(["git", "checkout", "requirements-dev.lock"], project)

    stages_lock = project / "requirements.lock"
    pins = stages_lock.read_text()
    stages_lock.write_text(pins + "# a new pin\n")
    try:
        assert changed_stages(project) == set(ALL_STAGES)
    finally:
        stages_lock.write_text(pins)
    assert changed_stages(project) == set()


def test_dvc_exp_show_lists_settings_and_no_paths(project):
    run(["git", "checkout", "params.yaml"], project)
    header = run(["dvc", "exp", "show", "--csv"], project).stdout.splitlines()[0].split(",")
    assert not [column for column in header if column.startswith("paths.")]
    settings = {"train.epochs", "model.hidden_units", "render.grid_size"}
    assert settings <= set(header)
    # The lesson's accuracy; beside the scikit-learn model's metrics, DVC names its file.
    assert {"test.accuracy", "reports/metrics.json:test.accuracy"} & set(header), header


def test_a_missing_local_source_stops_the_download_only(tmp_path, lesson_build, real_mnist):
    """A build made from a local mnist.npz, on a machine that lacks the file (a colleague's,
    after `dvc pull`): a new setting retrains without it, predicting goes on, and only the
    download refuses."""
    usb = tmp_path / "usb" / "mnist.npz"
    usb.parent.mkdir()
    usb.write_bytes(real_mnist.read_bytes())
    project = copy_build(lesson_build[0], tmp_path / "project")
    set_params(project, data__source=str(usb))
    # The same verified arrays from another source: nothing after the download reruns.
    assert repro(project) == ["download"]
    run(["git", "commit", "-q", "-am", "MNIST from a USB stick"], project)
    usb.unlink()

    # A new setting reruns the model and what follows it, not the download, whose setting
    # (the path) is the same: DVC never looks for the file (tests.helpers.would_rerun; the
    # lesson's stages after the download read only the build's own files).
    set_params(project, train__epochs=2)
    assert would_rerun(project) == MODEL_STAGES
    run(["git", "checkout", "params.yaml"], project)
    with np.load(project / "data/raw/mnist.npz") as raw:
        digit = raw["x_test"][0]
    Image.fromarray(255 - digit).resize((112, 112)).save(project / "seven.png")
    answer = run(["digit-predict", "seven.png"], project)
    assert answer.stdout.startswith("seven.png: ") and answer.stderr == ""

    refused = run(["dvc", "repro", "--force", "download"], project, check=False)
    assert refused.returncode != 0
    assert (
        f"error: params.yaml: data.source = '{usb}' is not one of auto, canonical, mirror or "
        "the path of an existing mnist.npz\n" in refused.stderr
    )
